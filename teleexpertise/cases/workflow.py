"""The case lifecycle as one table: state, action, next state, who may do it, and its preconditions.

Views and services ask this table which actions a user may take now; the UI shows only those, and every
service checks the same row before it writes. Roles are relative to the case:
- requester: the professional who wrote the request;
- expert: the expert the case is addressed or assigned to;
- pool_member / dispatcher: a member / dispatcher of the case's network while the case waits in its pool.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import NetworkMembership

S = Case.State

REQUESTER = "requester"
EXPERT = "expert"
POOL_MEMBER = "pool_member"
DISPATCHER = "dispatcher"

RESUME = "resume"  # next state: the one the case was in before information was requested
UNCHANGED = "unchanged"  # next state: the same (an action that does not move the case)


class WorkflowError(Exception):
    """An action that the table refuses now; the message is for the user."""


def _has_question(case: Case):
    return None if case.question.strip() else _("La question posée à l'expert est vide.")


def _has_consent(case: Case):
    return None if case.consent_id else _("Le consentement du patient n'est pas renseigné.")


def _consent_allows(case: Case):
    if case.consent_id and not case.consent.allows_submission:
        return _("Le patient a refusé la téléexpertise : la demande ne peut pas être envoyée. "
                 "Proposez-lui une autre prise en charge.")
    return None


def _has_recipient(case: Case):
    if not case.expert_id and not case.network_id:
        return _("Choisissez un expert requis ou un réseau destinataire.")
    if case.expert_id and not case.expert.may_be_expert:
        return _("Seuls un médecin ou une sage-femme peuvent être sollicités comme expert requis.")
    if case.expert_id and case.expert_id == case.requester_id:
        return _("Vous ne pouvez pas vous adresser la demande à vous-même.")
    return None


def _is_pooled(case: Case):
    if case.is_pooled:
        return None
    taker = case.expert.display_name if case.expert_id else None
    if taker:
        return _("Cette demande a déjà été prise en charge par %(name)s.") % {"name": taker}
    return _("Cette demande n'est plus dans la file partagée.")


def _awaits_acknowledgement(case: Case):
    if case.awaits_acknowledgement:
        return None
    return _("Seule une demande synchrone adressée à l'expert d'astreinte attend un accusé de réception.")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset
    target: str
    roles: frozenset
    label: str
    checks: tuple[Callable[[Case], object], ...] = field(default=())
    done: str = ""  # what the UI says once it is done

    def next_state(self, case: Case) -> str:
        if self.target == RESUME:
            return case.resume_state or S.TAKEN
        if self.target == UNCHANGED:
            return case.state
        return self.target


def _t(action, sources, target, roles, label, checks=(), done=""):
    return Transition(action, frozenset(sources), target, frozenset(roles), label, tuple(checks), done)


TRANSITIONS: tuple[Transition, ...] = (
    _t("submit", {S.DRAFT}, S.SUBMITTED, {REQUESTER}, _("Envoyer la demande"),
       (_has_question, _has_consent, _consent_allows, _has_recipient), _("Demande envoyée")),
    _t("edit_draft", {S.DRAFT}, UNCHANGED, {REQUESTER}, _("Modifier le brouillon"), done=_("Brouillon modifié")),
    _t("claim", {S.SUBMITTED}, S.TAKEN, {POOL_MEMBER}, _("Prendre en charge"), (_is_pooled,),
       _("Vous avez pris en charge la demande")),
    _t("assign", {S.SUBMITTED}, S.TAKEN, {DISPATCHER}, _("Attribuer à un membre du réseau"), (_is_pooled,),
       _("Demande attribuée")),
    _t("acknowledge", {S.SUBMITTED}, S.TAKEN, {EXPERT}, _("Accuser réception (astreinte)"),
       (_awaits_acknowledgement,), _("Réception accusée : le requérant est prévenu")),
    _t("accept", {S.SUBMITTED, S.TAKEN}, S.ACCEPTED, {EXPERT}, _("Accepter (fixer le délai de réponse)"),
       done=_("Demande acceptée")),
    _t("request_information", {S.SUBMITTED, S.TAKEN, S.ACCEPTED}, S.AWAITING_INFORMATION, {EXPERT},
       _("Demander des compléments"), done=_("Demande de compléments envoyée au requérant")),
    _t("provide_information", {S.AWAITING_INFORMATION}, RESUME, {REQUESTER}, _("Répondre à la demande de compléments"),
       done=_("Compléments envoyés à l'expert")),
    _t("decline", {S.SUBMITTED, S.TAKEN}, S.DECLINED, {EXPERT}, _("Déclarer non réalisable"),
       done=_("Demande déclarée non réalisable")),
    _t("transfer", {S.SUBMITTED, S.TAKEN, S.ACCEPTED}, S.SUBMITTED, {EXPERT, DISPATCHER}, _("Transférer"),
       done=_("Demande transférée")),
    _t("tag", {S.SUBMITTED, S.TAKEN, S.AWAITING_INFORMATION, S.ACCEPTED}, UNCHANGED, {EXPERT, POOL_MEMBER, DISPATCHER},
       _("Étiqueter"), done=_("Étiquettes enregistrées")),
    _t("answer", {S.ACCEPTED}, S.ANSWERED, {EXPERT}, _("Signer le compte-rendu"), done=_("Compte-rendu signé")),
    _t("amend_report", {S.ANSWERED, S.CLOSED}, UNCHANGED, {EXPERT}, _("Corriger le compte-rendu (nouvelle version)"),
       done=_("Nouvelle version du compte-rendu signée")),
    _t("close", {S.ANSWERED}, S.CLOSED, {REQUESTER}, _("Clôturer (compte-rendu reçu)"), done=_("Demande clôturée")),
    _t("withdraw", {S.DRAFT, S.SUBMITTED, S.TAKEN, S.AWAITING_INFORMATION, S.ACCEPTED}, S.WITHDRAWN, {REQUESTER},
       _("Retirer la demande"), done=_("Demande retirée")),
)

BY_ACTION = {t.action: t for t in TRANSITIONS}


class Actor:
    """A user seen from the workflow: their professional record, and their network roles read once, when first
    needed (most API reads never ask: one query less on each)."""

    def __init__(self, *, user, professional, load_network_roles: Callable[[], dict]):
        self.user = user
        self.professional = professional
        self._load_network_roles = load_network_roles

    @cached_property
    def network_roles(self) -> dict:  # {network_id: "member" | "dispatcher"}
        return self._load_network_roles()

    @property
    def professional_id(self):
        return self.professional.pk if self.professional else None


def roles_for(actor: Actor, case: Case) -> set[str]:
    roles = set()
    pid = actor.professional_id
    if pid is None:
        return roles
    if case.requester_id == pid:
        roles.add(REQUESTER)
    if case.expert_id == pid:
        roles.add(EXPERT)
    if case.is_pooled:
        role = actor.network_roles.get(case.network_id)
        if role == NetworkMembership.Role.DISPATCHER:
            roles.add(DISPATCHER)
        if role is not None and actor.professional.may_be_expert and case.requester_id != pid:
            roles.add(POOL_MEMBER)
    return roles


def available_actions(actor: Actor, case: Case) -> list[Transition]:
    roles = roles_for(actor, case)
    return [t for t in TRANSITIONS if case.state in t.sources and roles & t.roles]


def check(actor: Actor, case: Case, action: str) -> Transition:
    """The transition if this actor may take it on this case now; otherwise a WorkflowError saying why."""
    transition = BY_ACTION.get(action)
    if transition is None:
        raise WorkflowError(_("Action inconnue."))
    if case.state not in transition.sources:
        if action in ("claim", "assign"):
            _raise_if(_is_pooled(case))
        raise WorkflowError(
            _("« %(action)s » n'est pas possible : la demande est à l'état « %(state)s ».")
            % {"action": transition.label, "state": case.get_state_display()}
        )
    if not roles_for(actor, case) & transition.roles:
        raise WorkflowError(_("Vous n'avez pas le rôle requis pour « %(action)s » sur cette demande.")
                            % {"action": transition.label})
    for precondition in transition.checks:
        _raise_if(precondition(case))
    return transition


def _raise_if(message) -> None:
    if message:
        raise WorkflowError(message)


def may_post_message(actor: Actor, case: Case) -> bool:
    """The requester and the expert write in the thread once the case has left the draft stage."""
    if case.state == S.DRAFT:
        return False
    return bool(roles_for(actor, case) & {REQUESTER, EXPERT})
