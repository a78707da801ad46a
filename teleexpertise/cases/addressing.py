"""The experts' and networks' profiles applied when a case is addressed: who may ask them, how many open cases
they take, and where an absent expert's new requests go. Called by the services that address a case."""

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Absence, Network, NetworkMembership, Professional


def check_requester_allowed(requester: Professional, *, expert=None, network=None) -> None:
    target = expert if expert is not None else network
    if target is None:
        return
    allowed = set(target.requester_professions.values_list("code", flat=True))
    if allowed and requester.profession_id not in allowed:
        raise ValidationError(_("%(to)s ne reçoit pas de demande d'un professionnel de votre profession "
                                "(%(profession)s).") % {"to": _name(target), "profession": requester.profession},
                              code="profession")


def open_cases_count(*, expert=None, network=None) -> int:
    cases = Case.objects.filter(state__in=Case.OPEN_STATES)
    return cases.filter(expert=expert).count() if expert is not None else cases.filter(network=network).count()


def check_capacity(*, expert=None, network=None) -> None:
    target = expert if expert is not None else network
    if target is None or target.max_open_cases is None:
        return
    if open_cases_count(expert=expert, network=network) >= target.max_open_cases:
        raise ValidationError(_("%(to)s a atteint son nombre maximal de demandes en cours (%(max)s) : choisissez "
                                "un autre destinataire ou réessayez plus tard.")
                              % {"to": _name(target), "max": target.max_open_cases}, code="capacity")


def absence_of(professional: Professional, day=None) -> Absence | None:
    day = day or timezone.localdate()
    return (Absence.objects.filter(professional=professional, starts_on__lte=day, ends_on__gte=day)
            .select_related("substitute__profession", "network").order_by("starts_on").first())


def check_present(professional: Professional) -> None:
    """For an assignment or a transfer: a colleague chooses the expert, so an absent one is refused."""
    absence = absence_of(professional)
    if absence is not None:
        raise ValidationError(_("%(name)s est absent(e) jusqu'au %(end)s inclus.")
                              % {"name": professional.display_name, "end": absence.ends_on.strftime("%d/%m/%Y")},
                              code="absent")


def stand_in(expert: Professional, absence: Absence) -> tuple[Professional | None, Network | None]:
    """(expert, network) that receive an absent expert's new request: the substitute when present, else the pool
    named by the absence or the expert's first active network; (None, None) when there is neither."""
    substitute = absence.substitute
    if substitute is not None and substitute.may_be_expert and absence_of(substitute) is None:
        return substitute, None
    if absence.network_id and absence.network.is_active:
        return None, absence.network
    membership = (NetworkMembership.objects.filter(professional=expert, network__is_active=True)
                  .select_related("network").order_by("network__name").first())
    return (None, membership.network) if membership else (None, None)


def _name(target) -> str:
    return target.display_name if isinstance(target, Professional) else str(target)
