"""The whole journey through HTTP, as the pages post it: draft, consent, pool, claim, information, deadline,
report, signature, close; then the timeline and the audit rows it leaves."""

from django.urls import reverse
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case
from teleexpertise.messaging.models import Notification
from tests.factories import nir


def _request_form(cast, **overrides):
    data = {
        "submit_token": "7b8f5f3e-1a7e-4c3b-9d1e-2f6a4b1c9e01", "ins_nir": nir(sex="2", yymm="6203", place="2A004"),
        "birth_name": "Santoni", "first_names": "Maria Antonia", "sex": "F", "birth_date": "1962-03-14",
        "birth_place_code": "2A004", "identity_status": "qualified", "treating_doctor": str(cast.requester.pk),
        "consent_status": "given", "given_by": "patient",
        "informed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "explained_interest": "on", "explained_practicalities": "on", "explained_right_to_refuse": "on",
        "recipient_kind": "network", "network": str(cast.network.pk),
        "question": "Lésion pigmentée du dos apparue il y a 3 mois, asymétrique : exérèse rapide ?",
        "context": "Antécédent familial de mélanome.\nPhototype II.", "priority": "urgent", "mode": "asynchronous",
    }
    data.update(overrides)
    return data


def _act(client, case, action, data=None):
    response = client.post(reverse("cases:action", args=[case.pk, action]), data or {})
    assert response.status_code == 302, response.content.decode()[:2000]
    case.refresh_from_db()
    return case


def test_whole_journey_over_http(cast, client_for):
    requester, colleague = client_for(cast.requester.user), client_for(cast.colleague.user)

    draft = requester.post(reverse("cases:new"), {**_request_form(cast), "save": "1"})
    assert draft.status_code == 302
    case = Case.objects.get()
    assert case.state == Case.State.DRAFT and case.consent.status == "given"
    assert case.patient.ins_nir.startswith("262032A004")

    case = _act(requester, case, "submit")
    assert case.state == Case.State.SUBMITTED and case.is_pooled
    assert Notification.objects.filter(recipient=cast.colleague.user, case=case).exists()

    pool = colleague.get(reverse("cases:inbox"), {"box": "pool"}).content.decode()
    assert case.reference in pool
    case = _act(colleague, case, "claim")
    assert case.state == Case.State.TAKEN and case.expert == cast.colleague

    case = _act(colleague, case, "request_information", {"question": "Pouvez-vous joindre une dermoscopie ?"})
    assert case.state == Case.State.AWAITING_INFORMATION
    case = _act(requester, case, "provide_information", {"answer": "Dermoscopie : réseau atypique."})
    assert case.state == Case.State.TAKEN

    case = _act(colleague, case, "accept", {"delay_days": "2", "patient_informed": "on"})
    assert case.state == Case.State.ACCEPTED and case.patient_informed_of_deadline
    assert timezone.timedelta(days=1, hours=23) < case.due_at - timezone.now() <= timezone.timedelta(days=2)

    report_url = reverse("reports:edit", args=[case.pk])
    report = {"act_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "answer": "Aspect suspect de mélanome.",
              "conclusion": "Exérèse à visée diagnostique sous 15 jours.", "exams": "Histologie",
              "orientation": "consultation", "consultation_at": (timezone.localtime() + timezone.timedelta(days=10))
              .strftime("%Y-%m-%dT%H:%M"), "orientation_detail": "Consultation de dermatologie, CHU",
              "hospitalisation": "avoided", "technical_incidents": ""}
    assert colleague.post(report_url, {**report, "save": "1"}).status_code == 302
    unconfirmed = colleague.post(report_url, {**report, "sign": "1"})
    assert unconfirmed.status_code == 400 and "confirmation" in unconfirmed.content.decode()
    assert colleague.post(report_url, {**report, "sign": "1", "confirm_sign": "on"}).status_code == 302
    case.refresh_from_db()
    assert case.state == Case.State.ANSWERED

    page = requester.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Exérèse à visée diagnostique" in page and "Version 1" in page
    case = _act(requester, case, "close", {"usefulness": "partly", "avoided": ["visit", "emergency"]})
    assert case.state == Case.State.CLOSED
    survey = case.closing_survey
    assert (survey.usefulness, survey.avoided_visit, survey.avoided_emergency) == ("partly", True, True)

    changes = list(AuditEvent.objects.filter(case_id=case.pk).exclude(kind="R").values_list("action", flat=True)
                   .order_by("at", "id"))
    assert [a for a in changes if a.startswith("case.")] == [
        "case.create", "case.submit", "case.claim", "case.request_information", "case.provide_information",
        "case.accept", "case.answer", "case.close"]
    assert {"report.save_draft", "report.sign", "message.create", "consent.record"} <= set(changes)
    assert AuditEvent.objects.filter(case_id=case.pk, action="case.view").count() >= 1
    timeline = requester.get(reverse("cases:detail", args=[case.pk])).content.decode()
    for action in ("case.submit", "case.claim", "case.accept", "report.sign", "case.close"):
        assert action in timeline


def test_bad_input_keeps_everything_typed(cast, client_for):
    client = client_for(cast.requester.user)
    form = _request_form(cast, ins_nir="262032A00400199", explained_right_to_refuse="")
    response = client.post(reverse("cases:new"), {**form, "send": "1"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "clé du matricule INS" in page and "droit de refuser" not in page.split("errorsummary")[0]
    assert "exérèse rapide" in page and "Santoni" in page and 'value="262032A00400199"' in page
    assert not Case.objects.exists()


def test_double_click_on_send_creates_one_case(cast, client_for):
    client = client_for(cast.requester.user)
    form = {**_request_form(cast), "send": "1"}
    first, second = client.post(reverse("cases:new"), form), client.post(reverse("cases:new"), form)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Case.objects.count() == 1


def test_thread_escapes_html_and_keeps_line_breaks(cast, client_for):
    case = cast.case_in("taken")
    client = client_for(cast.requester.user)
    client.post(reverse("cases:message", args=[case.pk]), {"body": "<script>alert(1)</script>\nligne 2"})
    page = client_for(cast.expert.user).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>ligne 2" in page


def test_unread_counts_in_the_inbox(cast, client_for):
    case = cast.case_in("taken")
    requester = client_for(cast.requester.user)
    for text in ("Premier", "Second"):
        requester.post(reverse("cases:message", args=[case.pk]), {"body": text})
    expert = client_for(cast.expert.user)
    inbox = expert.get(reverse("cases:inbox"), {"box": "todo"})
    assert [c.unread for c in inbox.context["page"].object_list] == [2]
    expert.get(reverse("cases:detail", args=[case.pk]))
    inbox = expert.get(reverse("cases:inbox"), {"box": "todo"})
    assert [c.unread for c in inbox.context["page"].object_list] == [0]


def test_notifications_list_and_clear_when_the_case_is_opened(cast, client_for):
    case = cast.case_in("submitted")
    colleague = client_for(cast.colleague.user)
    page = colleague.get(reverse("messaging:notifications")).content.decode()
    assert case.reference in page and "file partagée" in page
    assert "(1" in colleague.get(reverse("cases:inbox")).content.decode()
    colleague.get(reverse("cases:detail", args=[case.pk]))
    assert not Notification.objects.filter(recipient=cast.colleague.user, read_at__isnull=True).exists()


def test_a_draft_is_edited_with_the_same_form_then_sent(cast, client_for):
    client = client_for(cast.requester.user)
    form = _request_form(cast)
    client.post(reverse("cases:new"), {**form, "save": "1"})
    case = Case.objects.get()
    page = client.get(reverse("cases:edit", args=[case.pk]))
    assert page.status_code == 200 and "exérèse rapide" in page.content.decode()
    edited = {**form, "question": "Lésion du dos : exérèse ou surveillance ?", "send": "1"}
    assert client.post(reverse("cases:edit", args=[case.pk]), edited).status_code == 302
    case.refresh_from_db()
    assert case.state == Case.State.SUBMITTED and case.question.startswith("Lésion du dos")
    assert case.consent.status == "given" and case.patient.birth_name == "Santoni"
    assert client.get(reverse("cases:edit", args=[case.pk])).status_code == 403  # no longer a draft


def test_notification_emails_carry_no_clinical_content_and_can_be_muted(cast, django_capture_on_commit_callbacks):
    from django.core import mail

    from teleexpertise.messaging.services import notification_emails_muted
    from teleexpertise.webhooks.events import case_events_muted

    with django_capture_on_commit_callbacks(execute=True):
        case = cast.case_in("submitted")
    sent = [m for m in mail.outbox if case.reference in m.body]
    assert sent and all("DURAND" not in m.body and "Lésion" not in m.body for m in sent)
    mail.outbox.clear()
    with (notification_emails_muted(), case_events_muted(),
          django_capture_on_commit_callbacks(execute=True) as callbacks):
        cast.case_in("submitted")
    assert callbacks == []
    assert mail.outbox == []
    assert Notification.objects.count() >= 2
