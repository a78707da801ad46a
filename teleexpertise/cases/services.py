"""Every change to a case: validate, check the workflow table, write, audit and notify in one transaction.

Web views, the API and management commands call these functions; nothing else writes a case.
"""

import logging
import uuid
from collections.abc import Collection
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases import addressing, request_forms, workflow
from teleexpertise.cases.models import NONE, Answer, Case, CaseTag, ClosingSurvey, FollowUp
from teleexpertise.cases.oncall import oncall_page
from teleexpertise.cases.workflow import Actor, WorkflowError
from teleexpertise.core.compiled import CompiledInsert, CompiledQuery
from teleexpertise.directory.models import NetworkMembership, Professional
from teleexpertise.directory.selectors import network_roles, professional_for_user
from teleexpertise.messaging.models import Message
from teleexpertise.messaging.services import message_create, notify
from teleexpertise.patients.services import consent_record, patient_get_or_create
from teleexpertise.webhooks.events import case_event_emit

logger = logging.getLogger(__name__)
S = Case.State


def actor_for(user) -> Actor:
    professional = professional_for_user(user)
    return Actor(user=user, professional=professional, load_network_roles=lambda: network_roles(professional))


def _paris(value) -> str:
    return date_format(timezone.localtime(value), "d/m/Y H:i")


def lock_case(case_id) -> Case:
    """The case row, locked until the transaction ends (PostgreSQL); SQLite serialises writers instead.

    The lock is taken on the bare row first and the joined rows read after it: a SELECT ... FOR UPDATE
    that waited for another transaction re-reads the locked row but not its joins, so a joined read would
    see the new expert_id with the old (empty) expert.
    """
    return _locked_case.first(case=lock_case_row(case_id))


def lock_case_row(case_id) -> uuid.UUID:
    """Lock the bare case row (as `lock_case`) and return its id, for a caller that reads the joins it needs
    itself once the lock is held (a document's upload needs neither the users nor the patient)."""
    try:
        case_id = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
    except ValueError:
        raise WorkflowError(_("Demande introuvable.")) from None
    if _lock_row.first(case=case_id) is None:
        raise WorkflowError(_("Demande introuvable."))
    return case_id


# Every workflow action runs these two: compiled once (core/compiled.py). The users are joined for notify().
_lock_row = CompiledQuery(lambda case: Case.objects.select_for_update().filter(pk=case).order_by().only("pk"),
                          case=uuid.UUID)
_locked_case = CompiledQuery(
    lambda case: (Case.objects.filter(pk=case).order_by()
                  .select_related("requester__profession", "requester__user", "expert__profession", "expert__user",
                                  "network", "consent", "patient")),
    case=uuid.UUID)


def _users(*professionals):
    return [p.user for p in professionals if p is not None and p.user_id]


def _transition(*, actor: Actor, case_id, action: str, changes: dict, ip, summary: str = "", validate=None) -> Case:
    """Apply one row of the workflow table to a locked case; raises WorkflowError when the row refuses.

    `validate(case)` checks the input against the case once the actor is known to be allowed, so that a
    user without the right never learns anything from a validation message.
    """
    case = lock_case(case_id)
    transition = workflow.check(actor, case, action)
    if validate is not None:
        validate(case)
    now = timezone.now()
    previous = case.state
    changes = {"state": transition.next_state(case), "updated_at": now, **changes}
    # The conditional update is the guard of last resort: it writes only if nobody moved the case meanwhile.
    if not Case.objects.filter(pk=case.pk, state=previous).update(**changes):
        raise WorkflowError(_("La demande a été modifiée entre-temps : rechargez la page."))
    for name, value in changes.items():
        setattr(case, name, value)
    audit_log(actor=actor.user, action=f"case.{action}", kind=AuditEvent.Kind.EXECUTE, obj=case, case=case, ip=ip,
              summary=summary or f"{Case.State(previous).label} → {case.get_state_display()}")
    case_event_emit(case=case, action=action, occurred_at=now)  # webhooks, once the transaction commits
    return case


# --- Creating and sending -------------------------------------------------------------------------------

def case_create(*, actor: Actor, ins_nir: str, identity: dict, consent: dict | None, question: str,
                context: str = "", priority: str = Case.Priority.ROUTINE, mode: str = Case.Mode.ASYNCHRONOUS,
                expert: Professional | None = None, network=None, submit_token=None, send: bool = False,
                answers: dict | None = None, ip=None) -> Case:
    """Create a draft (and send it when `send`); the same submit_token twice returns the first case.

    `answers` ({linkId: value}) answer the recipient's structured form; they are stored as a QuestionnaireResponse.
    """
    if actor.professional is None:
        raise WorkflowError(_("Votre compte n'est pas rattaché à un professionnel de santé de l'annuaire."))
    if submit_token is not None:
        existing = _submitted_once(submit_token, actor.professional)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            case = _create_draft(actor=actor, ins_nir=ins_nir, identity=identity, consent=consent,
                                 fields={"question": question, "context": context, "priority": priority,
                                         "mode": mode, "expert": expert, "network": network,
                                         "submit_token": submit_token,
                                         **request_forms.form_changes(network=network, expert=expert,
                                                                      answers=answers)}, ip=ip)
            if send:
                case = case_submit(actor=actor, case_id=case.pk, ip=ip)
            return case
    except IntegrityError:
        # A double click raced us to the unique submit_token: the first request's case is the answer.
        existing = _submitted_once(submit_token, actor.professional) if submit_token is not None else None
        if existing is None:
            raise
        return existing


_by_submit_token = CompiledQuery(
    lambda token, requester: Case.objects.filter(submit_token=token, requester_id=requester).order_by(),
    token=uuid.UUID, requester=uuid.UUID)


def _submitted_once(submit_token, requester: Professional) -> Case | None:
    """The case this requester already created with this submit token (a double click, a client's retry)."""
    token = submit_token if isinstance(submit_token, uuid.UUID) else uuid.UUID(str(submit_token))
    return _by_submit_token.first(token=token, requester=requester.pk)


# A request's creation writes its rows through statements compiled once (core/compiled.py): building them cost more
# than PostgreSQL's work (bench/api, create request). Case has no save() override or signal to skip.
_insert_case = CompiledInsert(Case)
_set_consent = CompiledQuery(lambda pk, consent: Case.objects.filter(pk=pk), pk=uuid.UUID, consent=uuid.UUID)


def _create_draft(*, actor: Actor, ins_nir, identity, consent, fields, ip) -> Case:
    patient = patient_get_or_create(actor=actor.user, ins_nir=ins_nir, identity=identity, ip=ip)
    case = _insert_case.create(patient=patient, requester=actor.professional, **fields)
    audit_log(actor=actor.user, action="case.create", kind=AuditEvent.Kind.CREATE, obj=case, case=case, ip=ip,
              summary=_("Brouillon créé"))
    case_event_emit(case=case, action="create", occurred_at=case.created_at)
    if consent:
        case.consent = consent_record(actor=actor.user, patient=patient, informed_by=actor.professional, data=consent,
                                      case=case, ip=ip)
        _set_consent.update({"consent_id": "consent"}, pk=case.pk, consent=case.consent_id)
    return case


def case_update_draft(*, actor: Actor, case_id, ins_nir: str, identity: dict, consent: dict | None, fields: dict,
                      send: bool = False, answers: dict | None = None, ip=None) -> Case:
    """Rewrite a draft from the request form; a changed consent is a new consent record (history is kept).

    `answers=None` keeps the answers already given (those the recipient's form still asks).
    """
    with transaction.atomic():
        case = lock_case(case_id)
        workflow.check(actor, case, "edit_draft")
        patient = patient_get_or_create(actor=actor.user, ins_nir=ins_nir, identity=identity, ip=ip)
        recipient = {"network": fields.get("network", case.network), "expert": fields.get("expert", case.expert)}
        changes = {**fields, "patient": patient, "updated_at": timezone.now(),
                   **request_forms.form_changes(**recipient, answers=answers, case=case)}
        if consent and not _same_consent(case.consent, patient, consent):
            changes["consent"] = consent_record(actor=actor.user, patient=patient, informed_by=actor.professional,
                                                data=consent, case=case, ip=ip)
        for name, value in changes.items():
            setattr(case, name, value)
        case.save(update_fields=list(changes))
        audit_log(actor=actor.user, action="case.edit_draft", kind=AuditEvent.Kind.UPDATE, obj=case, case=case,
                  ip=ip, summary=_("Brouillon modifié"))
        if send:
            case = case_submit(actor=actor, case_id=case.pk, ip=ip)
    return case


def _same_consent(current, patient, data: dict) -> bool:
    if current is None or current.patient_id != patient.pk:
        return False
    return all(getattr(current, name) == value for name, value in data.items())


def case_submit(*, actor: Actor, case_id, ip=None) -> Case:
    """Send a draft: complete for its network's form, from a profession the recipient accepts, to a recipient
    under capacity; a request to an absent expert goes to the substitute or the network pool."""
    changes = {"submitted_at": timezone.now()}
    rerouted = []

    def validate(case):
        # Runs once the workflow allows the requester to send; `changes` is read by _transition after this.
        form = request_forms.check_complete(case)
        changes["questionnaire_response"] = request_forms.completed_response(case, form)
        addressing.check_requester_allowed(case.requester, expert=case.expert, network=case.network)
        if case.expert_id:
            rerouted.extend(_reroute_if_absent(case, changes))
        addressing.check_capacity(expert=changes.get("expert", case.expert),
                                  network=changes.get("network", case.network))

    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="submit", ip=ip, changes=changes, validate=validate,
                           summary=_("Envoyée à %(to)s") % {"to": _recipient_label(case_id)})
        if rerouted:
            _record_reroute(actor, case, *rerouted, ip=ip)
        if case.mode == Case.Mode.SYNCHRONOUS and case.network_id and not case.expert_id:
            return oncall_page(case=case)  # straight to the expert on call now, not to the whole pool
        _notify_new_case(case)
    return case


def _reroute_if_absent(case: Case, changes: dict) -> tuple:
    """Point `changes` at the absent expert's stand-in; returns (absent expert, absence) or ()."""
    absence = addressing.absence_of(case.expert)
    if absence is None:
        return ()
    expert, network = addressing.stand_in(case.expert, absence)
    if expert is None and network is None:
        raise ValidationError(_("%(name)s est absent(e) jusqu'au %(end)s inclus et n'a ni remplaçant ni réseau : "
                                "choisissez un autre destinataire.")
                              % {"name": case.expert.display_name, "end": absence.ends_on.strftime("%d/%m/%Y")},
                              code="absent")
    addressing.check_requester_allowed(case.requester, expert=expert, network=network)
    changes.update(expert=expert, network=network)
    return case.expert, absence


def _record_reroute(actor: Actor, case: Case, absent: Professional, absence, *, ip) -> None:
    case = Case.objects.select_related("expert", "network__organisation").get(pk=case.pk)
    summary = _("%(name)s est absent(e) jusqu'au %(end)s : demande adressée à %(to)s") % {
        "name": absent.display_name, "end": absence.ends_on.strftime("%d/%m/%Y"), "to": case.recipient_label}
    audit_log(actor=actor.user, action="case.reroute", kind=AuditEvent.Kind.EXECUTE, obj=case, case=case, ip=ip,
              summary=summary)
    notify(users=_users(case.requester), case=case,
           verb=(_("expert absent : demande adressée à %(to)s") % {"to": case.recipient_label})[:200])


def _recipient_label(case_id) -> str:
    case = Case.objects.select_related("expert", "network__organisation").get(pk=case_id)
    return case.recipient_label


def _notify_new_case(case: Case, *, sender: Actor | None = None) -> None:
    if case.expert_id:
        notify(users=_users(case.expert), case=case, verb=_("nouvelle demande"))
        return
    # The whole pool (members and dispatcher) but not the requester, nor the expert who transfers it there.
    members = (Professional.objects.filter(memberships__network_id=case.network_id, user__isnull=False)
               .exclude(pk__in=[case.requester_id, sender.professional_id if sender else None]).distinct())
    notify(users=[p.user for p in members.select_related("user")], case=case,
           verb=_("nouvelle demande dans la file partagée"))


# --- Handling by the expert or the pool -----------------------------------------------------------------

def case_claim(*, actor: Actor, case_id, ip=None) -> Case:
    def validate(case):
        addressing.check_capacity(expert=actor.professional)

    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="claim", ip=ip, validate=validate,
                           changes={"expert": actor.professional, "taken_at": timezone.now()},
                           summary=_("Prise en charge depuis la file partagée"))
        notify(users=_users(case.requester), case=case, verb=_("demande prise en charge"))
    return case


def case_acknowledge(*, actor: Actor, case_id, ip=None) -> Case:
    """The paged on-call expert (or backup) acknowledges a synchronous request: it is theirs, the paging stops."""
    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="acknowledge", ip=ip,
                           changes={"taken_at": timezone.now(), "oncall_stage": Case.OncallStage.ACKNOWLEDGED},
                           summary=_("Réception accusée par l'expert d'astreinte"))
        notify(users=_users(case.requester), case=case, verb=_("l'expert d'astreinte a accusé réception"))
    return case


TAG_MAX_LENGTH = 40
TAGS_MAX = 10


def case_tag(*, actor: Actor, case_id, tags: str, ip=None) -> Case:
    """Replace the case's free tags with `tags` (comma-separated); triage labels, not clinical data."""
    labels = sorted({t.strip() for t in (tags or "").split(",") if t.strip()}, key=str.lower)
    if any(len(label) > TAG_MAX_LENGTH for label in labels) or len(labels) > TAGS_MAX:
        raise ValidationError(_("Au plus %(n)s étiquettes de %(length)s caractères chacune, séparées par des "
                                "virgules.") % {"n": TAGS_MAX, "length": TAG_MAX_LENGTH}, code="tags")
    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="tag", ip=ip, changes={},
                           summary=_("Étiquettes : %(tags)s") % {"tags": ", ".join(labels) or "—"})
        CaseTag.objects.filter(case=case).exclude(label__in=labels).delete()
        existing = set(CaseTag.objects.filter(case=case).values_list("label", flat=True))
        CaseTag.objects.bulk_create([CaseTag(case=case, label=label) for label in labels if label not in existing])
    return case


def case_assign(*, actor: Actor, case_id, expert: Professional, ip=None) -> Case:
    def validate(case):
        is_member = NetworkMembership.objects.filter(network_id=case.network_id, professional=expert).exists()
        if not is_member or not expert.may_be_expert or expert.pk == case.requester_id:
            raise ValidationError(_("Choisissez un médecin ou une sage-femme membre du réseau."), code="expert")
        addressing.check_present(expert)
        addressing.check_capacity(expert=expert)

    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="assign", ip=ip, validate=validate,
                           changes={"expert": expert, "taken_at": timezone.now()},
                           summary=_("Attribuée à %(name)s") % {"name": expert.display_name})
        notify(users=_users(expert), case=case, verb=_("demande qui vous est attribuée"))
        notify(users=_users(case.requester), case=case, verb=_("demande prise en charge"))
    return case


def case_accept(*, actor: Actor, case_id, due_at, patient_informed: bool, ip=None) -> Case:
    now = timezone.now()
    limit = now + timedelta(days=settings.CASE_MAX_DEADLINE_DAYS, minutes=5)
    if due_at <= now or due_at > limit:
        raise ValidationError(_("Le délai de réponse doit être compris entre maintenant et %(days)s jours.")
                              % {"days": settings.CASE_MAX_DEADLINE_DAYS}, code="due_at")
    if not patient_informed:
        raise ValidationError(_("Indiquez que le patient est informé du délai de réponse."), code="informed")
    with transaction.atomic():
        changes = {"due_at": due_at, "accepted_at": now, "patient_informed_of_deadline": True}
        case = _transition(actor=actor, case_id=case_id, action="accept", ip=ip, changes=changes,
                           summary=_("Acceptée, échéance le %(due)s") % {"due": _paris(due_at)})
        if case.taken_at is None:
            Case.objects.filter(pk=case.pk).update(taken_at=now)
        notify(users=_users(case.requester), case=case, verb=_("demande acceptée, délai de réponse fixé"))
    return case


def case_request_information(*, actor: Actor, case_id, question: str, ip=None) -> Case:
    question = _required(question, _("Précisez les compléments attendus."))
    with transaction.atomic():
        current = lock_case(case_id)
        changes = {"resume_state": current.state}
        if current.state == S.ACCEPTED and current.due_at:
            changes["deadline_remaining"] = max(current.due_at - timezone.now(), timedelta(0))
        case = _transition(actor=actor, case_id=case_id, action="request_information", ip=ip, changes=changes,
                           summary=_("Compléments demandés (délai suspendu)") if "deadline_remaining" in changes
                           else _("Compléments demandés"))
        message_create(actor=actor.user, case=case, author=actor.professional, body=question,
                       kind=Message.Kind.INFORMATION_REQUEST, ip=ip)
        notify(users=_users(case.requester), case=case, verb=_("l'expert demande des compléments"))
    return case


def case_provide_information(*, actor: Actor, case_id, answer: str, ip=None) -> Case:
    answer = _required(answer, _("Écrivez votre réponse à l'expert."))
    with transaction.atomic():
        current = lock_case(case_id)
        changes = {"resume_state": "", "deadline_remaining": None}
        if current.deadline_remaining is not None:
            changes["due_at"] = timezone.now() + current.deadline_remaining
        case = _transition(actor=actor, case_id=case_id, action="provide_information", ip=ip, changes=changes,
                           summary=_("Compléments fournis"))
        message_create(actor=actor.user, case=case, author=actor.professional, body=answer,
                       kind=Message.Kind.INFORMATION_RESPONSE, ip=ip)
        notify(users=_users(case.expert), case=case, verb=_("compléments reçus"))
    return case


def case_decline(*, actor: Actor, case_id, reason: str, ip=None) -> Case:
    reason = _required(reason, _("Le motif est obligatoire pour déclarer la téléexpertise non réalisable."))
    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="decline", ip=ip,
                           changes={"decline_reason": reason, "closed_at": timezone.now()},
                           summary=_("Non réalisable : %(reason)s") % {"reason": reason[:200]})
        message_create(actor=actor.user, case=case, author=actor.professional, body=reason,
                       kind=Message.Kind.DECISION, ip=ip)
        notify(users=_users(case.requester), case=case,
               verb=_("téléexpertise non réalisable : proposez une autre prise en charge"))
    return case


def case_transfer(*, actor: Actor, case_id, note: str, expert: Professional | None = None, network=None,
                  ip=None) -> Case:
    note = _required(note, _("Expliquez le transfert en quelques mots."))
    if (expert is None) == (network is None):
        raise ValidationError(_("Choisissez soit un expert, soit un réseau."), code="target")

    def validate(case):
        if expert is not None and (not expert.may_be_expert or expert.pk in (case.expert_id, case.requester_id)):
            raise ValidationError(_("Choisissez un autre médecin ou une sage-femme."), code="expert")
        if expert is not None:
            addressing.check_present(expert)
        addressing.check_requester_allowed(case.requester, expert=expert, network=network)
        addressing.check_capacity(expert=expert, network=network)

    with transaction.atomic():
        target = expert.display_name if expert else str(network)
        changes = {"expert": expert, "network": network, "due_at": None, "deadline_remaining": None,
                   "resume_state": "", "patient_informed_of_deadline": False, "taken_at": None,
                   "accepted_at": None, "submitted_at": timezone.now(), "oncall_stage": "", "oncall_paged_at": None}
        case = _transition(actor=actor, case_id=case_id, action="transfer", ip=ip, changes=changes, validate=validate,
                           summary=_("Transférée à %(to)s : %(note)s") % {"to": target, "note": note[:200]})
        message_create(actor=actor.user, case=case, author=actor.professional,
                       body=_("Demande transférée à %(to)s.\n%(note)s") % {"to": target, "note": note},
                       kind=Message.Kind.DECISION, ip=ip)
        _notify_new_case(case, sender=actor)
        notify(users=_users(case.requester), case=case, verb=_("demande transférée"))
    return case


def case_answer(*, actor: Actor, case_id, ip=None) -> Case:
    """Move the case to answered; called by report_sign inside its transaction, once the report is signed."""
    case = _transition(actor=actor, case_id=case_id, action="answer", ip=ip,
                       changes={"answered_at": timezone.now()}, summary=_("Compte-rendu signé"))
    notify(users=_users(case.requester), case=case, verb=_("compte-rendu disponible"))
    return case


# --- The requester closes or withdraws ------------------------------------------------------------------

def case_close(*, actor: Actor, case_id, usefulness: str, avoided: Collection[str], technical_incidents: str = "",
               ip=None) -> Case:
    """Close an answered case with the requester's closing survey: both are written, or neither."""
    if usefulness not in Answer.values:
        raise ValidationError(_("Indiquez si l'avis vous a été utile."), code="usefulness")
    flags = ticked_flags(avoided, ClosingSurvey.AVOIDED, _("Cochez ce qui a été évité, ou « Aucun »."))
    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="close", ip=ip,
                           changes={"closed_at": timezone.now()}, summary=_("Clôturée par le requérant"))
        survey = ClosingSurvey.objects.create(case=case, usefulness=usefulness, answered_by=actor.professional,
                                              technical_incidents=(technical_incidents or "").strip(), **flags)
        audit_log(actor=actor.user, action="closing_survey.record", kind=AuditEvent.Kind.CREATE, obj=survey,
                  case=case, ip=ip, summary=_("Avis utile : %(answer)s ; évité : %(avoided)s") % {
                      "answer": survey.get_usefulness_display(), "avoided": ", ".join(survey.avoided_labels)})
    return case


def ticked_flags(values: Collection[str], flags: dict, missing_message) -> dict:
    """{field: bool} from the boxes ticked of a several-choice question whose "none" box excludes the others."""
    values = set(values or ())
    if not values:
        raise ValidationError(missing_message, code="required")
    if not values <= {*flags, NONE}:
        unknown = ", ".join(sorted(values - {*flags, NONE}))
        raise ValidationError(_("Réponse inconnue : %(values)s.") % {"values": unknown}, code="invalid")
    if NONE in values and len(values) > 1:
        raise ValidationError(_("« Aucun » ou « Non » ne peut pas être coché avec une autre réponse."),
                              code="exclusive")
    return {name: choice in values for choice, name in flags.items()}


def case_withdraw(*, actor: Actor, case_id, reason: str, ip=None) -> Case:
    reason = _required(reason, _("Indiquez pourquoi vous retirez la demande."))
    with transaction.atomic():
        case = _transition(actor=actor, case_id=case_id, action="withdraw", ip=ip,
                           changes={"withdraw_reason": reason, "closed_at": timezone.now()},
                           summary=_("Retirée : %(reason)s") % {"reason": reason[:200]})
        notify(users=_users(case.expert), case=case, verb=_("demande retirée par le requérant"))
    return case


# --- Thread ----------------------------------------------------------------------------------------------

def case_post_message(*, actor: Actor, case_id, body: str, ip=None):
    body = _required(body, _("Le message est vide."))
    with transaction.atomic():
        case = lock_case(case_id)
        if not workflow.may_post_message(actor, case):
            raise WorkflowError(_("Vous ne pouvez pas écrire dans le fil de cette demande."))
        message = message_create(actor=actor.user, case=case, author=actor.professional, body=body, ip=ip)
        others = [p for p in (case.requester, case.expert) if p is not None and p.pk != actor.professional_id]
        notify(users=_users(*others), case=case, verb=_("nouveau message"))
        Case.objects.filter(pk=case.pk).update(updated_at=timezone.now())
    return message


def _required(value: str, message) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError(message, code="required")
    return value


# --- Follow-up, FOLLOW_UP_DELAY_DAYS after closing ------------------------------------------------------

FOLLOW_UP_BATCH = 500  # cases asked per run; the next hourly run takes the rest


def follow_ups_request_due(*, now=None) -> int:
    """Ask the requester of every case closed FOLLOW_UP_DELAY_DAYS ago what happened next; returns how many.

    Called by the hourly job; safe to run twice or on two workers at once (one row a case, unique). A case
    closed more than twice the delay ago is not asked: so late, the answer means little, and turning the
    feature on does not mail a backlog of old cases.
    """
    now = now or timezone.now()
    delay = timedelta(days=settings.FOLLOW_UP_DELAY_DAYS)
    due = (Case.objects.filter(state=S.CLOSED, closed_at__lte=now - delay, closed_at__gt=now - 2 * delay,
                               follow_up__isnull=True)
           .select_related("requester__user").order_by("closed_at"))
    return sum(_follow_up_request(case, now) for case in list(due[:FOLLOW_UP_BATCH]))


def _follow_up_request(case: Case, now) -> int:
    try:
        with transaction.atomic():
            follow_up = FollowUp.objects.create(case=case, requested_at=now)
            audit_log(actor=None, action="follow_up.request", kind=AuditEvent.Kind.CREATE, obj=follow_up, case=case,
                      summary=_("Suivi demandé au requérant"))
            notify(users=_users(case.requester), case=case, verb=follow_up_verb())
    except IntegrityError:
        return 0  # another worker asked first: its row and its notification stand
    return 1


def follow_up_verb() -> str:
    return _("%(title)s : dites à l'expert ce qu'il est advenu du patient") % {"title": follow_up_title()}


def follow_up_title() -> str:
    """"Suivi à 6 semaines" with the default delay; in days when the delay is not whole weeks."""
    days = settings.FOLLOW_UP_DELAY_DAYS
    if days % 7 == 0:
        return ngettext("Suivi à %(n)s semaine", "Suivi à %(n)s semaines", days // 7) % {"n": days // 7}
    return ngettext("Suivi à %(n)s jour", "Suivi à %(n)s jours", days) % {"n": days}


def follow_up_answer(*, actor: Actor, case_id, advice_followed: str, seen: Collection[str], outcome: str,
                     ip=None) -> FollowUp:
    """The requester's answer to the follow-up, once: it is the state of things at that date, never rewritten."""
    with transaction.atomic():
        case = lock_case(case_id)
        follow_up = follow_up_to_answer(actor, case)
        changes = _follow_up_changes(advice_followed, seen, outcome)
        changes.update(answered_at=timezone.now(), answered_by=actor.professional)
        if not FollowUp.objects.filter(pk=follow_up.pk, answered_at__isnull=True).update(**changes):
            raise WorkflowError(_("Le suivi vient d'être renseigné : rechargez la page."))
        for name, value in changes.items():
            setattr(follow_up, name, value)
        audit_log(actor=actor.user, action="follow_up.answer", kind=AuditEvent.Kind.UPDATE, obj=follow_up, case=case,
                  ip=ip, summary=_("Conseils suivis : %(answer)s ; patient vu : %(seen)s") % {
                      "answer": follow_up.get_advice_followed_display(), "seen": ", ".join(follow_up.seen_labels)})
        notify(users=_users(case.expert), case=case, verb=_("suivi du patient renseigné par le requérant"))
    return follow_up


def follow_up_to_answer(actor: Actor, case: Case) -> FollowUp:
    """The unanswered follow-up of this case, if this actor is the one who answers it; else a WorkflowError."""
    if workflow.REQUESTER not in workflow.roles_for(actor, case):
        raise WorkflowError(_("Seul le requérant renseigne le suivi de la demande."))
    follow_up = FollowUp.objects.filter(case=case).first()
    if follow_up is None:
        raise WorkflowError(_("Aucun suivi n'est demandé pour cette demande."))
    if follow_up.is_answered:
        raise WorkflowError(_("Le suivi a déjà été renseigné le %(date)s. Pour ajouter une information, écrivez "
                              "à l'expert dans les échanges de la demande.") % {"date": _paris(follow_up.answered_at)})
    return follow_up


def _follow_up_changes(advice_followed: str, seen: Collection[str], outcome: str) -> dict:
    if advice_followed not in Answer.values:
        raise ValidationError(_("Indiquez si les conseils de l'expert ont été suivis."), code="advice_followed")
    flags = ticked_flags(seen, FollowUp.SEEN, _("Indiquez si le patient a été vu depuis, ou « Non »."))
    outcome = _required(outcome, _("Décrivez l'évolution du patient."))
    return {"advice_followed": advice_followed, "outcome": outcome, **flags}
