"""The fixed cast tries every URL: who sees what, and outsiders get 404 wherever patient data is."""

import pytest
from django.urls import reverse

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case
from teleexpertise.cases.workflow import TRANSITIONS

CAST = ("requester", "expert", "colleague", "dispatcher", "outsider", "admin")

# Who may read a case, by where it stands: a pooled case is visible to its network; once taken, to its expert.
READERS = {
    "draft": {"requester", "admin"},
    "submitted": {"requester", "expert", "colleague", "dispatcher", "admin"},
    "taken": {"requester", "expert", "admin"},
    "answered": {"requester", "expert", "admin"},
}


def _user(cast, who):
    return cast.admin if who == "admin" else getattr(cast, who).user


def _case_urls(case):
    urls = [reverse("cases:detail", args=[case.pk]), reverse("reports:edit", args=[case.pk]),
            reverse("cases:edit", args=[case.pk]),
            reverse("cases:patient", args=[case.patient_id]), reverse("cases:follow_up", args=[case.pk])]
    urls += [reverse("cases:action", args=[case.pk, t.action]) for t in TRANSITIONS]
    return urls


@pytest.mark.parametrize("state", sorted(READERS))
@pytest.mark.parametrize("who", CAST)
def test_case_urls_answer_404_to_those_who_may_not_read(cast, client_for, state, who):
    case = cast.case_in(state)
    client = client_for(_user(cast, who))
    for url in _case_urls(case):
        response = client.get(url)
        if who in READERS[state]:
            assert response.status_code in (200, 302, 403), url
        else:
            assert response.status_code == 404, f"{who} reached {url}"
    post = client.post(reverse("cases:message", args=[case.pk]), {"body": "Bonjour"})
    assert (post.status_code == 404) == (who not in READERS[state])


def test_forbidden_action_by_url_is_refused_with_its_message(cast, client_for):
    case = cast.case_in("taken")
    client = client_for(cast.requester.user)
    response = client.post(reverse("cases:action", args=[case.pk, "accept"]), {"delay_days": "2",
                                                                              "patient_informed": "on"})
    assert response.status_code == 403
    assert "rôle requis" in response.content.decode()
    case.refresh_from_db()
    assert case.state == Case.State.TAKEN


def test_inbox_lists_only_visible_cases(cast, client_for):
    taken = cast.case_in("taken")
    pooled = cast.case_in("submitted")
    for who, box, expected in (("outsider", "requests", set()), ("colleague", "pool", {pooled.reference}),
                               ("expert", "todo", {taken.reference}), ("requester", "requests",
                                                                       {taken.reference, pooled.reference})):
        content = client_for(_user(cast, who)).get(reverse("cases:inbox"), {"box": box}).content.decode()
        for case in (taken, pooled):
            assert (case.reference in content) == (case.reference in expected), (who, box, case.reference)


def test_search_does_not_leak_other_patients(cast, client_for):
    case = cast.case_in("submitted")
    content = client_for(cast.outsider.user).get(reverse("cases:inbox"), {"box": "search", "q": "DURAND"})
    assert case.reference not in content.content.decode()
    found = client_for(cast.requester.user).get(reverse("cases:inbox"), {"box": "search", "q": case.reference})
    assert case.reference in found.content.decode()


def test_anonymous_is_sent_to_login(cast, client):
    case = cast.case_in("submitted")
    for url in [reverse("cases:inbox"), reverse("cases:new"), *_case_urls(case)]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_every_read_of_a_case_or_patient_is_audited(cast, client_for):
    case = cast.case_in("submitted")
    client = client_for(cast.colleague.user)
    client.get(reverse("cases:detail", args=[case.pk]))
    client.get(reverse("cases:patient", args=[case.patient_id]))
    reads = AuditEvent.objects.filter(kind="R", actor_id=cast.colleague.user.pk)
    assert reads.filter(action="case.view", case_id=case.pk, ip="127.0.0.1").exists()
    assert reads.filter(action="patient.view", patient_id=case.patient_id).exists()


def test_admin_pages_are_for_staff_only(cast, client_for):
    for who in CAST:
        response = client_for(_user(cast, who)).get("/admin/audit/auditevent/")
        assert (response.status_code == 200) == (who == "admin"), who


def test_audit_trail_cannot_be_rewritten(cast):
    cast.case_in("submitted")
    event = AuditEvent.objects.first()
    event.summary = "effacé"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
