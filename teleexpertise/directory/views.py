"""Directory pages: the search (finding an expert) and the administrators' import of the national directory."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from teleexpertise.audit.services import client_ip
from teleexpertise.directory import services
from teleexpertise.directory.forms import DirectorySearchForm, DirectoryUploadForm
from teleexpertise.directory.models import DirectoryImport
from teleexpertise.directory.search import professionals_search

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
