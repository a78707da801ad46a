"""The shapes of the REST API (its OpenAPI document is generated from them)."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import BaseModel

from teleexpertise.cases.models import Answer, Case, ClosingSurvey
from teleexpertise.documents.models import Document
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.models import ReportVersion
from teleexpertise.webhooks.models import EVENT_TYPES, WebhookDelivery


def _choice(choices) -> object:
    return Literal[tuple(choices.values)]  # type: ignore[valid-type]


State = _choice(Case.State)
Priority = _choice(Case.Priority)
Mode = _choice(Case.Mode)
Sex = _choice(Patient.Sex)
IdentityStatus = _choice(Patient.IdentityStatus)
ConsentStatus = _choice(Consent.Status)
DocumentKind = _choice(Document.Kind)
AttachedTo = _choice(Document.AttachedTo)
Orientation = _choice(ReportVersion.Orientation)
Hospitalisation = _choice(ReportVersion.Hospitalisation)
Usefulness = _choice(Answer)
Avoided = Literal[tuple([*ClosingSurvey.AVOIDED, "none"])]  # type: ignore[valid-type]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = _choice(WebhookDelivery.Status)


# --- Input ----------------------------------------------------------------------------------------------

class PatientIn(Schema):
    ins_nir: str = Field(max_length=21, description="INS matricule (NIR), 15 characters; spaces allowed")
    birth_name: str = Field(max_length=150)
    used_name: str = Field("", max_length=150)
    first_names: str = Field(max_length=200)
    sex: Sex
    birth_date: date
    birth_place_code: str = Field("", max_length=5)
    identity_status: IdentityStatus = "provisional"
    treating_doctor_id: UUID | None = None
    treating_doctor_name: str = Field("", max_length=200)


class ConsentIn(Schema):
    status: ConsentStatus
    given_by: Literal["patient", "representative", ""] = "patient"
    representative_name: str = Field("", max_length=200)
    impossible_reason: Literal["incapacity", "emergency", "other", ""] = ""
    impossible_detail: str = Field("", max_length=500)
    informed_at: datetime
    explained_interest: bool = False
    explained_practicalities: bool = False
    explained_right_to_refuse: bool = False


class CaseIn(Schema):
    patient: PatientIn
    consent: ConsentIn
    question: str = Field(max_length=4000)
    context: str = Field("", max_length=20000)
    priority: Priority = "routine"
    mode: Mode = "asynchronous"
    expert_id: UUID | None = Field(None, description="a named expert; or network_id")
    network_id: UUID | None = Field(None, description="a network's shared queue; or expert_id")
    submit_token: UUID | None = Field(None, description="idempotency key: the same token twice returns one case")


class ReasonIn(Schema):
    reason: str = Field(max_length=4000)


class QuestionIn(Schema):
    question: str = Field(max_length=4000)


class AnswerIn(Schema):
    answer: str = Field(max_length=4000)


class MessageIn(Schema):
    body: str = Field(max_length=4000)


class AcceptIn(Schema):
    due_at: datetime
    patient_informed: bool


class TransferIn(Schema):
    note: str = Field(max_length=4000)
    expert_id: UUID | None = None
    network_id: UUID | None = None


class CloseIn(Schema):
    usefulness: Usefulness
    avoided: list[Avoided] = Field(min_length=1)
    technical_incidents: str = Field("", max_length=4000)


class ReportIn(Schema):
    act_at: datetime
    answer: str = Field("", max_length=20000)
    conclusion: str = Field("", max_length=20000)
    treatments: str = Field("", max_length=20000)
    prescription_justification: str = Field("", max_length=20000)
    exams: str = Field("", max_length=20000)
    orientation: Orientation = "none"
    orientation_detail: str = Field("", max_length=20000)
    consultation_at: datetime | None = None
    hospitalisation: Hospitalisation = ""
    technical_incidents: str = Field("", max_length=20000)
    amendment_reason: str = Field("", max_length=20000)


# --- Output ---------------------------------------------------------------------------------------------

class ProfessionalOut(Schema):
    id: UUID
    name: str
    national_id: str


class PatientOut(Schema):
    id: UUID
    ins_nir: str
    birth_name: str
    used_name: str
    first_names: str
    sex: str
    birth_date: date
    identity_status: str


# The list's rows are built as dicts (api/cases._row): plain pydantic models, not ninja's Schema, whose root
# validator wraps every row for attribute access and cost twenty times as much on a page of 25 rows.
class CaseRow(BaseModel):
    id: UUID
    reference: str
    state: str
    priority: str
    patient_name: str
    requester: str
    expert: str | None
    due_at: datetime | None
    updated_at: datetime
    unread: int


class CasePage(BaseModel):
    count: int
    limit: int
    offset: int
    items: list[CaseRow]


class DocumentOut(Schema):
    id: UUID
    name: str
    kind: str
    category: str
    media_type: str
    size: int
    sha256: str
    attached_to: str
    uploaded_at: datetime


class ReportVersionOut(Schema):
    id: UUID
    number: int
    status: str
    signed_at: datetime | None
    pdf_ready: bool


class CaseOut(Schema):
    id: UUID
    reference: str
    state: str
    state_label: str
    priority: str
    mode: str
    question: str
    context: str
    patient: PatientOut
    consent_status: str | None
    requester: ProfessionalOut
    expert: ProfessionalOut | None
    network_id: UUID | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    due_at: datetime | None
    decline_reason: str
    actions: list[str] = Field(description="what this caller may do now (workflow table)")
    documents: list[DocumentOut]
    reports: list[ReportVersionOut]


class MessageOut(Schema):
    id: UUID
    kind: str
    author: str
    body: str
    created_at: datetime


class TokenOut(Schema):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


# --- Webhooks -------------------------------------------------------------------------------------------

class WebhookIn(Schema):
    url: str = Field(max_length=500, description="https:// address that receives the POSTs")
    events: list[EventType] = Field(min_length=1, description="the case events to receive")
    description: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=254, description="told by e-mail if the subscription is disabled")


class WebhookPatch(Schema):
    url: str | None = Field(None, max_length=500)
    events: list[EventType] | None = Field(None, min_length=1)
    description: str | None = Field(None, max_length=200)
    contact_email: str | None = Field(None, max_length=254)
    active: bool | None = Field(None, description="true turns a disabled subscription back on")


class WebhookOut(Schema):
    id: UUID
    url: str
    events: list[str]
    description: str
    contact_email: str
    active: bool
    consecutive_failures: int = Field(description="failed deliveries in a row (reset by a delivered one)")
    disabled_at: datetime | None
    disabled_reason: str
    created_at: datetime
    updated_at: datetime


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="signs every delivery (HMAC-SHA256); shown once, keep it in a vault")


class WebhookCaseOut(Schema):
    id: UUID
    reference: str
    state: str
    links: dict[str, str]


class WebhookEventOut(Schema):
    """The JSON body POSTed to the subscriber (no patient data)."""

    id: UUID = Field(description="the event: the same in a redelivery")
    type: str
    occurred_at: datetime
    case: WebhookCaseOut


class DeliveryOut(Schema):
    id: UUID = Field(description="X-Teleexpertise-Delivery: the same on every automatic attempt")
    event_id: UUID
    event_type: str
    case_id: UUID
    status: DeliveryStatus
    attempts: int
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    redelivery_of: UUID | None = Field(description="the delivery this one sends again")
    created_at: datetime
    payload: WebhookEventOut


class DeliveryPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[DeliveryOut]
