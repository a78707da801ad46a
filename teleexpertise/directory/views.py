"""Directory pages: the search (finding an expert), the administrators' import of the national directory, and a
network's weekly on-call rota (read by its members, edited by its dispatchers)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.directory import services
from teleexpertise.directory.forms import DirectorySearchForm, DirectoryUploadForm, OnCallShiftForm
from teleexpertise.directory.models import DirectoryImport, NetworkMembership, OnCallShift
from teleexpertise.directory.search import professionals_search


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


REJECTIONS_SHOWN = 500


@login_required
@require_GET
def search(request):
    form = DirectorySearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid() and not form.is_empty:
        results = list(professionals_search(**form.criteria()))
    return render(request, "directory/search.html", {"form": form, "results": results})


def _staff_only(request) -> None:
    if not request.user.is_staff:
        raise Http404


@login_required
def import_list(request):
    _staff_only(request)
    form = DirectoryUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.directory_import_upload(actor=request.user, upload=form.cleaned_data["extract"],
                                                   ip=client_ip(request))
        except ValidationError as exc:
            form.add_error("extract", exc)
        else:
            return redirect("directory:import_detail", pk=run.pk)
    runs = DirectoryImport.objects.all()[:20]
    return render(request, "directory/imports.html", {"form": form, "runs": runs},
                  status=400 if form.errors else 200)


@login_required
def import_detail(request, pk):
    _staff_only(request)
    run = get_object_or_404(DirectoryImport, pk=pk)
    return render(request, "directory/import_detail.html", {
        "run": run, "rejections": run.rejections.order_by("line_number")[:REJECTIONS_SHOWN],
        "shown": REJECTIONS_SHOWN})


@login_required
def import_progress(request, pk):
    """What the progress bar polls."""
    _staff_only(request)
    run = get_object_or_404(DirectoryImport, pk=pk)
    return JsonResponse({"status": run.status, "status_label": run.get_status_display(), "percent": run.percent,
                         "lines": run.lines, "created": run.created, "updated": run.updated,
                         "rejected": run.rejected, "finished": run.status in (run.Status.DONE, run.Status.FAILED)})


@login_required
def import_report(request, pk):
    """Every rejected line as CSV (the page shows the first ones)."""
    import csv
    import io

    _staff_only(request)
    run = get_object_or_404(DirectoryImport, pk=pk)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(["ligne", "motif", "contenu"])
    for r in run.rejections.order_by("line_number").iterator(chunk_size=2000):
        writer.writerow([r.line_number, r.reason, r.content])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="annuaire-rejets-{run.pk}.csv"'
    return response
