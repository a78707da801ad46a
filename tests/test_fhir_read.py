"""The FHIR facade's read side beyond the case: Consent, QuestionnaireResponse, PractitionerRole, AuditEvent, the
`_lastUpdated` date filter and `_include` of a request's participants.

Each resource is read and searched by the fixed cast through its own tokens: what the web shows a member is what
the facade serves them; the outsider gets 404 and never finds another's case in a search. Every answer parses with
fhir.resources' R4B models (`parsed`), and the CapabilityStatement lists exactly what the handlers accept.
"""

import copy
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import services
from teleexpertise.cases.models import Case, RequestForm
from teleexpertise.fhir import resources
from teleexpertise.fhir.dates import DateValueError, parse_date_range
from teleexpertise.fhir.table import BY_NAME
from teleexpertise.patients.models import Consent
from teleexpertise.reports.models import ReportVersion
from tests.factories import consent, identity, nir
from tests.test_fhir import ids, ok, outsiders_case, parsed

S = Case.State
FORM = {
    "resourceType": "Questionnaire", "url": "https://test.example/Questionnaire/derm", "version": "3",
    "status": "active", "title": "Dermatologie (test)",
    "item": [
        {"linkId": "site", "text": "Siège de la lésion", "type": "string", "required": True},
        {"linkId": "duration", "text": "Ancienneté (mois)", "type": "integer"},
    ],
}
ANSWERS = {"site": "Dos", "duration": 3}


pytestmark = pytest.mark.usefixtures("local_documents")


@pytest.fixture
def form(cast):
    """The network's structured form; not blocking, so requests answered in part can still be sent."""
    row = RequestForm.objects.create(title="Dermatologie (test)", questionnaire=copy.deepcopy(FORM),
                                     blocks_incomplete=False)
    row.networks.add(cast.network)
    return row


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))


def references(bundle, mode="match") -> set[str]:
    return {f"{e.resource.get_resource_type()}/{e.resource.id}" for e in bundle.entry or () if e.search.mode == mode}


def extension(resource, url):
    return next(ext for ext in resource.extension if ext.url == url)


# --- Consent ----------------------------------------------------------------------------------------------

def test_consent_is_read_by_the_case_participants_and_says_what_was_recorded(cast, fhir_for):
    case = cast.case_in(S.TAKEN)
    record = case.consent
    for who in (cast.requester, cast.expert, cast.admin):
        resource = ok(fhir_for(who), f"/fhir/Consent/{record.pk}")
        assert resource.id == str(record.pk)
    assert (resource.status, resource.provision.type) == ("active", "permit")
    assert resource.scope.coding[0].code == "treatment" and resource.category[0].coding[0].code == "59284-0"
    assert resource.patient.reference == f"Patient/{case.patient_id}"
    assert [p.reference for p in resource.performer] == [f"Patient/{case.patient_id}"]
    assert [d.reference.reference for d in resource.provision.data] == [f"ServiceRequest/{case.pk}"]
    assert resource.policyRule.text
    assert extension(resource, resources.CONSENT_INFORMED_BY).valueReference.reference == \
        f"Practitioner/{cast.requester.pk}"
    information = extension(resource, resources.CONSENT_INFORMATION).extension
    assert {(e.url, e.valueBoolean) for e in information} == {
        ("interest", True), ("practicalities", True), ("right-to-refuse", True)}
    assert AuditEvent.objects.filter(action="consent.view", object_id=str(record.pk), case_id=case.pk,
                                     actor_id=cast.requester.user.pk, summary="FHIR Consent").exists()


def test_consent_statuses_representative_and_impossible_reason(cast, fhir_for):
    refused = services.case_create(actor=cast.actor(cast.requester), ins_nir=nir(), identity=identity(),
                                   consent=consent(Consent.Status.REFUSED), question="?", network=cast.network)
    impossible = services.case_create(
        actor=cast.actor(cast.requester), ins_nir=nir(), identity=identity(), question="?", network=cast.network,
        consent={**consent(Consent.Status.IMPOSSIBLE), "impossible_reason": "incapacity",
                 "impossible_detail": "Coma"})
    by_representative = cast.new_case(send=False)
    Consent.objects.filter(pk=by_representative.consent_id).update(given_by="representative",
                                                                 representative_name="Jean DURAND")
    client = fhir_for(cast.requester)

    denied = ok(client, f"/fhir/Consent/{refused.consent_id}")
    assert (denied.status, denied.provision.type, denied.performer) == ("rejected", "deny", None)
    exception = ok(client, f"/fhir/Consent/{impossible.consent_id}")
    assert (exception.status, exception.provision.type, exception.performer) == ("active", "permit", None)
    reason = extension(exception, resources.CONSENT_IMPOSSIBLE_REASON).valueCodeableConcept
    assert (reason.coding[0].code, reason.text) == ("incapacity", "Coma")
    assert "impossible" in exception.policyRule.text
    representative = ok(client, f"/fhir/Consent/{by_representative.consent_id}").performer[0]
    assert (representative.type, representative.display) == ("RelatedPerson", "Jean DURAND")


def test_consent_search_by_patient_never_shows_others_consents(cast, fhir_for):
    mine, other_of_mine, theirs = cast.new_case(), cast.new_case(send=False), outsiders_case(cast)
    requester = fhir_for(cast.requester)
    assert ids(ok(requester, "/fhir/Consent")) == {str(mine.consent_id), str(other_of_mine.consent_id)}
    assert ids(ok(requester, "/fhir/Consent", patient=f"Patient/{mine.patient_id}")) == {str(mine.consent_id)}
    assert ok(requester, "/fhir/Consent", patient=f"Patient/{theirs.patient_id}").total == 0
    outsider = fhir_for(cast.outsider)
    assert ids(ok(outsider, "/fhir/Consent")) == {str(theirs.consent_id)}
    assert outsider.get(f"/fhir/Consent/{mine.consent_id}").status_code == 404
    # the expert sees the pooled request's consent, never the requester's draft
    assert ids(ok(fhir_for(cast.expert), "/fhir/Consent")) == {str(mine.consent_id), str(theirs.consent_id)}


# --- QuestionnaireResponse ---------------------------------------------------------------------------------

def test_questionnaire_response_is_served_at_the_case_with_what_the_stored_json_lacks(cast, fhir_for, form):
    case = cast.new_case(answers=ANSWERS)
    assert "subject" not in case.questionnaire_response and "id" not in case.questionnaire_response
    for who in (cast.requester, cast.expert):
        response = ok(fhir_for(who), f"/fhir/QuestionnaireResponse/{case.pk}")
        assert response.id == str(case.pk)
    assert (response.status, response.questionnaire) == ("completed", "https://test.example/Questionnaire/derm|3")
    assert response.subject.reference == f"Patient/{case.patient_id}"
    assert [ref.reference for ref in response.basedOn] == [f"ServiceRequest/{case.pk}"]
    assert response.author.reference == f"Practitioner/{cast.requester.pk}"
    assert {item.linkId: item.answer[0] for item in response.item}["site"].valueString == "Dos"
    assert AuditEvent.objects.filter(action="case.view", case_id=case.pk,
                                     summary="FHIR QuestionnaireResponse").exists()


def test_a_form_without_url_is_named_by_its_row_and_a_case_without_form_has_no_response(cast, fhir_for, form):
    form.questionnaire = {key: value for key, value in FORM.items() if key not in ("url", "version")}
    form.save()
    case = cast.new_case(send=False, answers={"site": "Bras"})
    response = ok(fhir_for(cast.requester), f"/fhir/QuestionnaireResponse/{case.pk}")
    assert (response.status, response.questionnaire) == ("in-progress", f"urn:uuid:{form.pk}")
    form.networks.clear()
    formless = cast.new_case()
    assert fhir_for(cast.requester).get(f"/fhir/QuestionnaireResponse/{formless.pk}").status_code == 404


def test_questionnaire_responses_search_by_patient_and_request_within_visible_cases(cast, fhir_for, form):
    first, second = cast.new_case(answers=ANSWERS), cast.new_case(answers={"site": "Jambe"})
    theirs = services.case_create(actor=cast.actor(cast.outsider), ins_nir=nir(), identity=identity(),
                                  consent=consent(), question="?", network=cast.network, send=True,
                                  answers=ANSWERS)
    requester = fhir_for(cast.requester)
    assert ids(ok(requester, "/fhir/QuestionnaireResponse")) == {str(first.pk), str(second.pk)}
    assert ids(ok(requester, "/fhir/QuestionnaireResponse", patient=f"Patient/{second.patient_id}")) == {
        str(second.pk)}
    assert ids(ok(requester, "/fhir/QuestionnaireResponse", **{"based-on": f"ServiceRequest/{first.pk}"})) == {
        str(first.pk)}
    assert ok(requester, "/fhir/QuestionnaireResponse", **{"based-on": f"ServiceRequest/{theirs.pk}"}).total == 0
    assert requester.get(f"/fhir/QuestionnaireResponse/{theirs.pk}").status_code == 404
    outsider = fhir_for(cast.outsider)
    assert ids(ok(outsider, "/fhir/QuestionnaireResponse")) == {str(theirs.pk)}
    assert outsider.get(f"/fhir/QuestionnaireResponse/{first.pk}").status_code == 404


# --- PractitionerRole ------------------------------------------------------------------------------------

def test_practitioner_role_carries_profession_specialty_structure_and_mssante(cast, fhir_for):
    cast.case_in(S.TAKEN)
    role = ok(fhir_for(cast.requester), f"/fhir/PractitionerRole/{cast.expert.pk}")
    assert role.practitioner.reference == f"Practitioner/{cast.expert.pk}"
    assert role.organization.reference == f"Organization/{cast.hospital.pk}"
    assert (role.code[0].coding[0].system, role.code[0].coding[0].code) == (resources.TRE_G15_SYSTEM, "10")
    assert (role.specialty[0].coding[0].system, role.specialty[0].coding[0].code) == (resources.TRE_R38_SYSTEM,
                                                                                      "SM15")
    assert [(t.system, t.value) for t in role.telecom] == [("email", cast.expert.mssante_email)]
    assert AuditEvent.objects.filter(action="directory.fhir_read", object_id=str(cast.expert.pk),
                                     summary="FHIR PractitionerRole").exists()


def test_practitioner_roles_are_those_of_visible_cases_participants_only(cast, fhir_for):
    cast.case_in(S.TAKEN)
    outsiders_case(cast)
    requester = fhir_for(cast.requester)
    assert ids(ok(requester, "/fhir/PractitionerRole")) == {str(cast.requester.pk), str(cast.expert.pk)}
    assert ids(ok(requester, "/fhir/PractitionerRole", practitioner=f"Practitioner/{cast.expert.pk}")) == {
        str(cast.expert.pk)}
    assert ok(requester, "/fhir/PractitionerRole", practitioner=f"Practitioner/{cast.outsider.pk}").total == 0
    # The directory page lists the colleague, the API does not: no case of the requester names them.
    for pro in (cast.colleague, cast.outsider):
        assert requester.get(f"/fhir/PractitionerRole/{pro.pk}").status_code == 404
    outsider = fhir_for(cast.outsider)
    assert ids(ok(outsider, "/fhir/PractitionerRole")) == {str(cast.outsider.pk)}
    assert outsider.get(f"/fhir/PractitionerRole/{cast.expert.pk}").status_code == 404


# --- AuditEvent --------------------------------------------------------------------------------------------

def _trail(case) -> set[str]:
    return {str(pk) for pk in AuditEvent.objects.filter(case_id=case.pk).values_list("pk", flat=True)}


def test_audit_events_are_the_trail_of_the_case_as_its_page_shows_it(cast, fhir_for):
    case = cast.case_in(S.TAKEN)
    client = fhir_for(cast.requester)
    client.get(f"/fhir/ServiceRequest/{case.pk}")  # a read, by the requester, from 127.0.0.1
    expected = _trail(case)
    bundle = ok(client, "/fhir/AuditEvent", entity=f"ServiceRequest/{case.pk}", _count="100")
    assert ids(bundle) == expected and bundle.total == len(expected)
    events = {event.subtype[0].code: event for event in (e.resource for e in bundle.entry)}
    claim = events["case.claim"]
    assert (claim.action, claim.type.code) == ("E", "110110")
    assert claim.subtype[0].display == "Prise en charge depuis la file partagée"
    assert claim.agent[0].who.display == "Anne Dermato"  # a name, never the e-mail
    assert claim.agent[0].who.identifier.value == "8" + cast.expert.rpps and claim.agent[0].requestor
    assert {e.what.reference for e in claim.entity} >= {f"ServiceRequest/{case.pk}", f"Patient/{case.patient_id}"}
    read = events["case.view"]
    assert read.action == "R" and read.agent[0].network is None  # addresses are the staff's
    assert all(entity.description is None for entity in read.entity)  # reads listed without summary, as on the page
    staff_view = ok(fhir_for(cast.admin), f"/fhir/AuditEvent/{read.id}")
    assert staff_view.agent[0].network.address == "127.0.0.1"
    assert AuditEvent.objects.filter(action="audit.fhir_read", case_id=case.pk, actor_id=cast.admin.pk).exists()


def test_audit_events_never_show_the_trail_of_cases_the_caller_cannot_see(cast, fhir_for):
    mine, theirs = cast.new_case(), outsiders_case(cast)
    draft = cast.new_case(send=False)
    unbound = AuditEvent.objects.filter(case_id__isnull=True).first()  # e.g. patient.create: no case
    requester, outsider, expert = fhir_for(cast.requester), fhir_for(cast.outsider), fhir_for(cast.expert)
    assert ids(ok(outsider, "/fhir/AuditEvent", _count="100")) == _trail(theirs)
    assert ok(outsider, "/fhir/AuditEvent", entity=f"ServiceRequest/{mine.pk}").total == 0
    assert ok(outsider, "/fhir/AuditEvent", patient=f"Patient/{mine.patient_id}").total == 0
    for event_id in _trail(mine):
        assert outsider.get(f"/fhir/AuditEvent/{event_id}").status_code == 404
    assert ids(ok(requester, "/fhir/AuditEvent", patient=f"Patient/{draft.patient_id}")) == _trail(draft)
    # the expert sees the pooled requests' trails, not the requester's draft
    assert ids(ok(expert, "/fhir/AuditEvent", _count="100")) == _trail(mine) | _trail(theirs)
    assert expert.get(f"/fhir/AuditEvent/{next(iter(_trail(draft)))}").status_code == 404
    assert unbound is not None
    assert fhir_for(cast.admin).get(f"/fhir/AuditEvent/{unbound.pk}").status_code == 404
    assert requester.get("/fhir/AuditEvent/not-a-number").status_code == 404


# --- _lastUpdated -------------------------------------------------------------------------------------------

def _stamp(case, moment):
    Case.objects.filter(pk=case.pk).update(updated_at=moment)


def test_last_updated_ranges_on_requests(cast, fhir_for):
    january, february, march = cast.new_case(), cast.new_case(), cast.new_case()
    midnight = cast.new_case()
    _stamp(january, paris(2026, 1, 10, 12, 0))
    _stamp(february, paris(2026, 2, 15, 9, 30))
    _stamp(march, paris(2026, 3, 20, 18, 0))
    _stamp(midnight, datetime(2026, 3, 31, 22, 30, tzinfo=UTC))  # 1 April, 00:30 in Paris (summer time)
    client = fhir_for(cast.requester)

    def found(*values, resource_type="ServiceRequest"):
        response = client.get(f"/fhir/{resource_type}", {"_lastUpdated": list(values)})
        assert response.status_code == 200, response.content
        return {c.pk for c in (january, february, march, midnight) if str(c.pk) in ids(parsed(response))}

    assert found("ge2026-02-01") == {february.pk, march.pk, midnight.pk}
    assert found("lt2026-02-01") == {january.pk}
    assert found("ge2026-01-15", "lt2026-03-01") == {february.pk}  # repeated: a range
    assert found("2026-02") == found("eq2026-02") == {february.pk}
    assert found("eq2026-02-15") == {february.pk}
    assert found("le2026-02-15") == {january.pk, february.pk}  # the whole day
    assert found("gt2026-02-15") == {march.pk, midnight.pk}
    assert found("ne2026-02") == {january.pk, march.pk, midnight.pk}
    assert found("eq2026-04-01") == {midnight.pk} and found("eq2026-03-31") == set()  # days are Paris days
    assert found("eq2026-03-31T22:30:00Z") == {midnight.pk}
    assert found("ge2026-04-01T00:00:00+02:00", "lt2026-04-01T00:31+02:00") == {midnight.pk}
    assert found("lt2026-03-31T22:30:00Z", "gt2026-03-01") == {march.pk}
    assert found("ge2026-02-01", "lt2026-03-01", resource_type="Task") == {february.pk}
    paged = ok(client, "/fhir/ServiceRequest", _lastUpdated=["ge2026-02-01", "lt2026-04-02"], _count="1")
    following = urlsplit(next(link.url for link in paged.link if link.relation == "next"))
    assert parse_qs(following.query)["_lastUpdated"] == ["ge2026-02-01", "lt2026-04-02"]  # the range is kept
    task = ok(client, f"/fhir/Task/{february.pk}")
    assert task.meta.lastUpdated.isoformat() == "2026-02-15T09:30:00+01:00"


@pytest.mark.parametrize("value", ["2026-13", "sa2026-01-01", "ap2026", "2026-02-30", "yesterday", "ge2026-1-1",
                                   "2026-01-01T25:00", "lt9999-12-31", "9999", "9999-12-31T23:59:59",
                                   "0001-01-01T00:00+14:00", "2026-01-01T10:00+99:00"])
def test_a_malformed_date_is_a_400_operation_outcome(cast, fhir_for, value):
    response = fhir_for(cast.requester).get("/fhir/ServiceRequest", {"_lastUpdated": value})
    assert response.status_code == 400 and parsed(response).issue[0].code == "value"


def test_date_values_cover_the_range_of_their_precision():
    assert parse_date_range("2026").end - parse_date_range("2026").start == timedelta(days=365)
    spring_forward = parse_date_range("2026-03-29")  # the clocks change: a 23-hour day in Paris
    assert spring_forward.end.astimezone(UTC) - spring_forward.start.astimezone(UTC) == timedelta(hours=23)
    assert parse_date_range("2026-03-29T10:00:00.5Z").end - parse_date_range("2026-03-29T10:00:00.5Z").start \
        == timedelta(milliseconds=100)
    assert parse_date_range("ge2026-01-01T10:00 01:00").start == datetime(2026, 1, 1, 9, tzinfo=UTC)  # "+" as space
    with pytest.raises(DateValueError):
        parse_date_range("eb2026")


def test_last_updated_on_the_other_searchable_types(cast, fhir_for, form, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        old = cast.case_in(S.ANSWERED)
    new = cast.new_case(answers=ANSWERS)
    Case.objects.filter(pk=old.pk).update(updated_at=paris(2025, 6, 1, 12))
    Consent.objects.filter(pk=old.consent_id).update(recorded_at=paris(2025, 6, 1, 12))
    ReportVersion.objects.filter(case=old).update(signed_at=paris(2025, 6, 2, 12))
    AuditEvent.objects.filter(case_id=old.pk).update(at=paris(2025, 6, 1, 12))
    old_trail = _trail(old)  # the searches below read the old case again: those reads are of today
    client = fhir_for(cast.requester)
    version = str(ReportVersion.objects.get(case=old).pk)
    expectations = {  # type: (the old row's id, the new row's id or None)
        "Consent": (str(old.consent_id), str(new.consent_id)),
        "Composition": (version, None), "DocumentReference": (version, None),
        "AuditEvent": (None, None),
    }
    for resource_type, (old_id, new_id) in expectations.items():
        before = ids(ok(client, f"/fhir/{resource_type}", _lastUpdated="lt2026-01-01", _count="100"))
        after = ids(ok(client, f"/fhir/{resource_type}", _lastUpdated="ge2026-01-01", _count="100"))
        assert not before & after, resource_type
        if old_id:
            assert old_id in before and old_id not in after, resource_type
        if new_id:
            assert new_id in after, resource_type
    assert ids(ok(client, "/fhir/AuditEvent", _lastUpdated="lt2026-01-01", _count="100")) == old_trail
    assert ids(ok(client, "/fhir/AuditEvent", date="eq2025-06-01", _count="100")) == old_trail
    new_response = ok(client, "/fhir/QuestionnaireResponse", _lastUpdated="ge2026-01-01")
    assert ids(new_response) == {str(new.pk)}
    assert ok(client, f"/fhir/Composition/{version}").meta.lastUpdated.isoformat() == "2025-06-02T12:00:00+02:00"


# --- _include ----------------------------------------------------------------------------------------------

def test_include_adds_each_participant_once_and_only_those(cast, fhir_for, django_capture_on_commit_callbacks):
    same_patient = nir()
    answered = cast.case_in(S.ANSWERED)
    Case.objects.filter(pk=answered.pk).update(updated_at=paris(2025, 1, 1))  # listed last
    pooled = cast.new_case(patient_ins=same_patient)
    again = cast.new_case(patient_ins=same_patient)
    outsiders_case(cast)
    client = fhir_for(cast.requester)
    response = client.get("/fhir/ServiceRequest", {"_include": ["ServiceRequest:subject", "ServiceRequest:requester",
                                                                "ServiceRequest:performer"]})
    bundle = parsed(response)  # a valid R4B Bundle
    assert references(bundle) == {f"ServiceRequest/{c.pk}" for c in (answered, pooled, again)}
    participants = {f"Patient/{pooled.patient_id}", f"Patient/{answered.patient_id}",
                    f"Practitioner/{cast.requester.pk}", f"Practitioner/{cast.expert.pk}"}
    assert references(bundle, "include") == participants
    assert len([e for e in bundle.entry if e.search.mode == "include"]) == len(participants)  # no duplicates
    assert bundle.total == 3
    assert AuditEvent.objects.filter(action="patient.view", patient_id=pooled.patient_id,
                                     summary="FHIR Patient (_include)").count() == 1
    assert AuditEvent.objects.filter(action="directory.fhir_read", object_id=str(cast.expert.pk),
                                     summary="FHIR Practitioner (_include)").count() == 1

    # only the page's rows bring their participants
    first_page = ok(client, "/fhir/ServiceRequest", _count="2", _include="ServiceRequest:performer")
    assert references(first_page, "include") == set()  # the two pooled requests have no expert yet
    following = urlsplit(next(link.url for link in first_page.link if link.relation == "next"))
    assert parse_qs(following.query)["_include"] == ["ServiceRequest:performer"]
    second_page = ok(client, following.path, **{k: v[0] for k, v in parse_qs(following.query).items()})
    assert references(second_page, "include") == {f"Practitioner/{cast.expert.pk}"}


def test_task_includes_and_their_explicit_target_form(cast, fhir_for):
    taken = cast.case_in(S.TAKEN)
    client = fhir_for(cast.expert)
    bundle = ok(client, "/fhir/Task", owner=f"Practitioner/{cast.expert.pk}",
                _include=["Task:focus", "Task:patient", "Task:owner:Practitioner", "Task:requester"])
    assert references(bundle) == {f"Task/{taken.pk}"}
    assert references(bundle, "include") == {f"ServiceRequest/{taken.pk}", f"Patient/{taken.patient_id}",
                                             f"Practitioner/{cast.expert.pk}", f"Practitioner/{cast.requester.pk}"}
    included_request = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "ServiceRequest")
    assert included_request.subject.reference == f"Patient/{taken.patient_id}"
    assert AuditEvent.objects.filter(action="case.view", case_id=taken.pk,
                                     summary="FHIR ServiceRequest (_include)").exists()


def test_includes_are_read_in_one_query_per_type_whatever_the_page(cast, fhir_for):
    """A search reads only what its Tasks show; what `_include` adds is read once the page is known, through the
    caller's sight (their networks, read once), one query per included type (patients, practitioners,
    requests), never one per row."""
    cast.case_in(S.TAKEN)
    client = fhir_for(cast.expert)
    everything = {"_include": ["Task:patient", "Task:requester", "Task:owner", "Task:focus"]}

    def selects(**params):
        with CaptureQueriesContext(connection) as queries:
            ok(client, "/fhir/Task", **params)
        return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]

    selects()  # the first call reads the token; the next ones find it kept (api/token_cache.py)
    plain, one_row = len(selects()), len(selects(**everything))
    assert one_row == plain + 1 + 3
    for _ in range(4):
        cast.case_in(S.TAKEN)
    assert len(selects(**everything)) == one_row


def test_outsiders_includes_bring_only_their_own_participants(cast, fhir_for):
    cast.case_in(S.TAKEN)
    theirs = outsiders_case(cast)
    bundle = ok(fhir_for(cast.outsider), "/fhir/Task", _include=["Task:patient", "Task:requester", "Task:owner"])
    assert references(bundle) == {f"Task/{theirs.pk}"}
    assert references(bundle, "include") == {f"Patient/{theirs.patient_id}", f"Practitioner/{cast.outsider.pk}"}


@pytest.mark.parametrize(("resource_type", "value"), [
    ("ServiceRequest", "Task:owner"), ("Task", "ServiceRequest:subject"), ("Task", "Task:owner:Patient"),
    ("Task", "*"), ("Task", "Task:subject"), ("Consent", "Consent:patient"), ("AuditEvent", "AuditEvent:entity"),
])
def test_an_undeclared_include_is_refused(cast, fhir_for, resource_type, value):
    response = fhir_for(cast.requester).get(f"/fhir/{resource_type}", {"_include": value})
    assert response.status_code == 400 and parsed(response).issue[0].code == "not-supported"


# --- The CapabilityStatement is what the handlers accept -------------------------------------------------------

def test_capability_statement_lists_the_new_types_their_parameters_and_includes(cast):
    statement = parsed(Client().get("/fhir/metadata"))
    listed = {r.type: r for r in statement.rest[0].resource}
    params = {name: {p.name for p in r.searchParam or ()} for name, r in listed.items()}
    result = {"_count", "_offset"}
    assert params["Consent"] == {"patient", "_lastUpdated"} | result
    assert params["QuestionnaireResponse"] == {"patient", "based-on", "_lastUpdated"} | result
    assert params["PractitionerRole"] == {"practitioner"} | result
    assert params["AuditEvent"] == {"entity", "patient", "date", "_lastUpdated"} | result
    for resource_type in ("ServiceRequest", "Task", "Composition", "DocumentReference"):
        assert "_lastUpdated" in params[resource_type]
    assert listed["ServiceRequest"].searchInclude == ["ServiceRequest:subject", "ServiceRequest:requester",
                                                      "ServiceRequest:performer"]
    assert set(listed["Task"].searchInclude) == {"Task:patient", "Task:requester", "Task:owner", "Task:focus"}
    for name, resource in listed.items():  # the table, seen through the statement
        declared = BY_NAME[name]
        assert [i.name for i in declared.includes] == (resource.searchInclude or [])
        assert {i.code for i in resource.interaction} == set(declared.interactions)
    assert [p.type for p in listed["AuditEvent"].searchParam if p.name == "date"] == ["date"]
    assert {i.code for i in listed["AuditEvent"].interaction} == {"read", "search-type"}  # read-only
