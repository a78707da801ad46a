"""`POST /fhir/` with a transaction Bundle: a request made in one call with its patient, its consent and its
documents, all created or none.

The entries are POSTs of one ServiceRequest, the Patient and the Consent it references by their fullUrl
(`urn:uuid:...`), and DocumentReferences whose `context.related` names the ServiceRequest's fullUrl. Patient and
Consent have no create of their own: they are the request's input (`writes.request_input`), as on the web form.
Everything runs in one database transaction: the draft is created, the documents stored through
`document_add`, then the request sent when its status is active (so that documents a network's form requires are
there). Any failing entry rolls everything back, deletes the files already stored, and answers an
OperationOutcome naming the entry (`Bundle.entry[n]` in its diagnostics and expressions).
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from fhir.resources.R4B.bundle import Bundle

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.documents import storage
from teleexpertise.fhir import resources, writes
from teleexpertise.fhir.body import read_body
from teleexpertise.fhir.handlers import FhirError, require_scope
from teleexpertise.fhir.sent import checked
from teleexpertise.patients.models import Patient

logger = logging.getLogger(__name__)
_ACCEPTED = ("Patient", "Consent", "ServiceRequest", "DocumentReference")


class _EntryError(Exception):
    """A failure while one entry was being written: which one, and the error."""

    def __init__(self, index: int, resource_type: str, error: Exception):
        super().__init__(str(error))
        self.index, self.resource_type, self.error = index, resource_type, error


def transaction_bundle(request) -> writes.Written:
    """A transaction Bundle: one ServiceRequest with its Patient, Consent and DocumentReferences, all or nothing.

    Patient and Consent are accepted only as entries a ServiceRequest of the Bundle references."""
    require_scope(request, writes.CASES_WRITE)
    body = read_body(request)
    stored = []  # documents whose files are in storage: deleted again if the transaction rolls back
    try:
        entries = _entries(body.resource)
        with transaction.atomic():
            answers = _write(request, body, entries, stored)
    except _EntryError as failure:
        _forget(stored)
        raise _named(request, failure) from None
    except BaseException:
        _forget(stored)
        raise
    finally:
        body.discard()
    return writes.Written(checked(Bundle, {
        "resourceType": "Bundle", "type": "transaction-response",
        "entry": [{"response": answers[index]} for index in range(len(entries))]}))


def _entries(bundle: dict) -> list[tuple[int, str, dict, str]]:
    """(index, fullUrl, resource, type) of each entry, once the Bundle is known to be a transaction of POSTs."""
    writes.validated(Bundle, bundle, "Bundle")
    if bundle.get("type") != "transaction":
        raise writes.invalid([writes.issue("Bundle.type", _("Seul un Bundle de type transaction est accepté ici."))])
    found = []
    for index, entry in enumerate(bundle.get("entry") or ()):
        resource = entry.get("resource") or {}
        resource_type = resource.get("resourceType")
        method = (entry.get("request") or {}).get("method")
        if resource_type not in _ACCEPTED or method != "POST":
            raise writes.invalid([writes.issue(f"Bundle.entry[{index}]", _(
                "Entrée non prise en charge : seuls des POST de %(types)s sont acceptés.")
                % {"types": ", ".join(_ACCEPTED)}, "not-supported")])
        found.append((index, entry.get("fullUrl") or "", resource, resource_type))
    if [resource_type for _i, _url, _r, resource_type in found].count("ServiceRequest") != 1:
        raise writes.invalid([writes.issue("Bundle.entry", _("Le Bundle doit contenir une et une seule "
                                                             "ServiceRequest."))])
    return found


def _write(request, body, entries, stored) -> dict[int, dict]:
    by_url = {url: (resource, f"Bundle.entry[{index}].resource") for index, url, resource, _type in entries if url}
    index, request_url, data, _type = next(entry for entry in entries if entry[3] == "ServiceRequest")
    root = f"Bundle.entry[{index}].resource"
    given = _in_entry(index, "ServiceRequest", lambda: writes.request_input(
        request, data, writes.Resolver(root, data.get("contained"), by_url), root=root))
    referenced = {(data.get("subject") or {}).get("reference"),
                  *(r.get("reference") for r in data.get("supportingInfo") or ())}
    ins = given.form.cleaned_data["ins_nir"]
    patient_existed = Patient.objects.filter(ins_nir=ins).exists()
    case, _created = _in_entry(index, "ServiceRequest", lambda: writes.create_case(request, given, send=False))
    answers = {index: None}
    for entry_index, entry_url, resource, resource_type in entries:
        if resource_type in ("Patient", "Consent"):
            if entry_url not in referenced:
                raise _EntryError(entry_index, resource_type, writes.invalid([writes.issue(
                    f"Bundle.entry[{entry_index}]", _("Cette ressource n'est pas référencée par la ServiceRequest."))]))
            pk = case.patient_id if resource_type == "Patient" else case.consent_id
            created = resource_type == "Consent" or not patient_existed
            answers[entry_index] = {"status": "201 Created" if created else "200 OK",
                                    "location": f"{resource_type}/{pk}"}
        elif resource_type == "DocumentReference":
            document = _in_entry(entry_index, resource_type, lambda r=resource, i=entry_index: _document(
                request, body, r, request_url, case, i))
            stored.append(document)
            answers[entry_index] = {"status": "201 Created", "location": f"DocumentReference/{document.pk}"}
    if given.send:
        case = _in_entry(index, "ServiceRequest", lambda: writes.submit(request, case.pk, given.paths))
    case.refresh_from_db(fields=["updated_at"])
    answers[index] = {"status": "201 Created", "location": f"ServiceRequest/{case.pk}",
                      "etag": f'W/"{resources.version_of(case)}"', "lastModified": resources._instant(case.updated_at)}
    return answers


def _document(request, body, resource, request_url, case, index):
    related = [r.get("reference") for r in (resource.get("context") or {}).get("related") or ()]
    root = f"Bundle.entry[{index}].resource"
    if not request_url or request_url not in related:
        raise writes.invalid([writes.issue(f"{root}.context.related", _(
            "Le document doit citer la ServiceRequest du Bundle (son fullUrl) dans context.related."))])
    return writes.add_document(request, body, resource, case, root)


def _in_entry(index: int, resource_type: str, run):
    try:
        return run()
    except (FhirError, ValidationError, WorkflowError) as exc:
        raise _EntryError(index, resource_type, exc) from None


def _forget(documents) -> None:
    """The rolled-back rows are gone; their files were stored outside the transaction: delete them too."""
    for document in documents:
        try:
            storage.delete(storage.blob_of(document))
        except Exception:  # a file left over is unreachable ciphertext: logged, not worth failing the answer
            logger.exception("could not delete the file of a rolled-back document", extra={"key": document.storage_key})


def _named(request, failure: _EntryError) -> FhirError:
    """The error as an OperationOutcome naming the entry; the refusal is audited once the rollback is done."""
    prefix = f"Bundle.entry[{failure.index}] ({failure.resource_type}) : "
    error = failure.error
    if isinstance(error, WorkflowError):
        error = FhirError(409, "business-rule", str(error),
                          [writes.issue(f"Bundle.entry[{failure.index}].resource", error, "business-rule")])
    elif isinstance(error, ValidationError):
        error = writes.from_validation(error, {}, f"Bundle.entry[{failure.index}].resource")
    issues = [{**issue, "diagnostics": prefix + issue["diagnostics"]} for issue in error.issues] or [
        writes.issue(f"Bundle.entry[{failure.index}]", error.message, error.code)]
    audit_log(actor=request.user, action="fhir.transaction_refused", kind=AuditEvent.Kind.EXECUTE,
              ip=client_ip(request), summary=(prefix + error.message)[:500])
    return FhirError(error.status, error.code, prefix + error.message, issues)
