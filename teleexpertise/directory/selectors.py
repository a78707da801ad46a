"""Directory reads used by forms and workflow checks (no patient data here)."""

import uuid

from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.directory.models import Network, NetworkMembership, Professional


def professional_for_user(user) -> Professional | None:
    if not user.is_authenticated:
        return None
    reverse = Professional._meta.get_field("user").remote_field
    if reverse.is_cached(user):  # read with the user already (the API's token lookup joins it)
        return reverse.get_cached_value(user)
    professional = (Professional.objects.select_related("profession", "specialty", "organisation")
                    .filter(user=user).first())
    # Remembered on the user as `user.professional` would be, so that the selectors asking for it later in the
    # request (cases_visible_to...) do not read it again.
    Professional._meta.get_field("user").remote_field.set_cached_value(user, professional)
    return professional


def experts_selectable():
    """Doctors and midwives with an active account: who may be asked for an opinion."""
    return Professional.objects.filter(profession__may_be_expert=True, user__is_active=True).select_related(
        "profession", "specialty", "organisation"
    )


def networks_active():
    return Network.objects.filter(is_active=True).select_related("specialty", "organisation")


def doctors():
    """Doctors of the directory, whatever their account: who may be named as a patient's treating doctor."""
    return Professional.objects.filter(profession_id="10").select_related("profession", "specialty", "organisation")


# A request names its expert, network or treating doctor by id: each creation checks them, compiled once.
_expert_selectable = CompiledQuery(lambda pk: experts_selectable().filter(pk=pk), pk=uuid.UUID)
_network_active = CompiledQuery(lambda pk: networks_active().filter(pk=pk), pk=uuid.UUID)
_doctor = CompiledQuery(lambda pk: doctors().filter(pk=pk), pk=uuid.UUID)


def expert_selectable(pk: uuid.UUID) -> Professional | None:
    return _expert_selectable.first(pk=pk)


def network_active(pk: uuid.UUID) -> Network | None:
    return _network_active.first(pk=pk)


def doctor(pk: uuid.UUID) -> Professional | None:
    return _doctor.first(pk=pk)


def network_roles(professional: Professional | None) -> dict:
    """{network_id: role} for the professional's memberships."""
    if professional is None:
        return {}
    return {m.network_id: m.role for m in _memberships.all(professional=professional.pk)}


# Read by every workflow check on a pooled case: compiled once (core/compiled.py).
_memberships = CompiledQuery(
    lambda professional: NetworkMembership.objects.filter(professional_id=professional).only("network_id", "role")
    .order_by(), professional=uuid.UUID)
