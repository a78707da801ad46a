"""Documents are read only through the case selector: a document of a case you cannot see is a 404."""

import uuid

from django.http import Http404

from teleexpertise.cases.selectors import cases_visible_to
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.documents.models import Document


def document_for_user(user, pk) -> Document:
    document = (Document.objects.filter(pk=pk, case__in=cases_visible_to(user).values("pk"))
                .select_related("case", "uploaded_by").first())
    if document is None:
        raise Http404
    return document


def case_documents(case):
    return Document.objects.filter(case=case).select_related("uploaded_by__profession", "uploaded_by__specialty")


# The same rows, for the API's case answer after every action: compiled once (core/compiled.py).
_case_documents = CompiledQuery(lambda case: case_documents(case), case=uuid.UUID)


def case_documents_list(case) -> list[Document]:
    return _case_documents.all(case=case.pk)


def dicom_series(case, series_uid: str) -> list[Document]:
    """The documents of one DICOM series, in instance order."""
    documents = [d for d in case_documents(case).filter(category=Document.Category.DICOM)
                 if d.details.get("series_uid") == series_uid]
    return sorted(documents, key=lambda d: (int(d.details.get("instance_number") or 0), d.name))
