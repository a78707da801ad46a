"""Directory pages: a network's weekly on-call rota (read by its members, edited by its dispatchers)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.directory import services
from teleexpertise.directory.forms import OnCallShiftForm
from teleexpertise.directory.models import NetworkMembership, OnCallShift


@login_required
def rota(request, pk):
    network = services.rota_network_for(request.user, pk, edit=request.method == "POST")
    may_edit = request.user.is_staff or NetworkMembership.objects.filter(
        network=network, professional__user=request.user, role=NetworkMembership.Role.DISPATCHER).exists()
    form = OnCallShiftForm(request.POST or None, network=network) if may_edit else None
    if request.method == "POST" and form.is_valid():
        try:
            services.oncall_shift_add(user=request.user, network_id=network.pk, ip=client_ip(request),
                                      **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(request, _("Créneau d'astreinte ajouté."))
            return redirect("directory:rota", pk=network.pk)
    if request.method == "GET":
        audit_log(actor=request.user, action="oncall_shift.list", kind=AuditEvent.Kind.READ, obj=network,
                  ip=client_ip(request), summary=network.name)
    shifts = OnCallShift.objects.filter(network=network).select_related("expert", "backup")
    return render(request, "directory/rota.html", {"network": network, "shifts": shifts, "form": form},
                  status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def rota_remove(request, pk, shift_id):
    services.oncall_shift_remove(user=request.user, network_id=pk, shift_id=shift_id, ip=client_ip(request))
    messages.success(request, _("Créneau d'astreinte supprimé."))
    return redirect("directory:rota", pk=pk)
