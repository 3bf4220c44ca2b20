"""Export downloads: the data file, its manifest, and the admin's live progress cell.

Files are never served by a public URL: every download passes `_get_job_for_user`, which lets
a superuser or a lead (staff) of the job's project through and shows everyone else a 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from comparisons.models import ExportJob, JobStatus, Project


def _get_job_for_user(request: HttpRequest, pk: int) -> ExportJob:
    visible = Project.objects.visible_to(request.user)
    return get_object_or_404(
        ExportJob.objects.select_related("project").filter(project__in=visible), pk=pk
    )


@login_required
@require_GET
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    job = _get_job_for_user(request, pk)
    # Only a finished job has a file; a running or failed one has nothing to download.
    if job.status != JobStatus.SUCCEEDED or not job.file:
        raise Http404("This export has no file.")
    return FileResponse(job.file.open("rb"), as_attachment=True, filename=job.download_name())


@login_required
@require_GET
def export_manifest(request: HttpRequest, pk: int) -> JsonResponse:
    job = _get_job_for_user(request, pk)
    if job.status != JobStatus.SUCCEEDED:
        raise Http404("This export has no manifest yet.")
    response = JsonResponse(job.manifest, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{job.download_name(manifest=True)}"'
    return response


@login_required
@require_GET
def export_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The admin list's progress cell; it keeps polling itself until the job has finished."""
    job = _get_job_for_user(request, pk)
    if not request.htmx:
        return redirect(reverse("admin:comparisons_exportjob_change", args=[job.pk]))
    return render(request, "admin/comparisons/export_progress.html", {"job": job})
