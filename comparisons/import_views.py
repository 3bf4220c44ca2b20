"""The live status of an import job (the admin's htmx-polled cell).

Every request passes `_get_import_job_for_user`, which lets a superuser or a lead (staff) of the
job's project through and shows everyone else a 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from comparisons.imports import import_job_progress, import_job_result
from comparisons.models import ImportJob, Project


def _get_import_job_for_user(request: HttpRequest, pk: int) -> ImportJob:
    visible = Project.objects.visible_to(request.user)
    return get_object_or_404(
        ImportJob.objects.select_related("project").filter(project__in=visible), pk=pk
    )


def render_import_status(job: ImportJob, *, detail: bool) -> str:
    """The status cell: one line in the job list; with `detail`, the full result when done."""
    finished_with_result = detail and job.is_finished and not job.error
    context = {
        "job": job,
        "detail": detail,
        "lines_read": import_job_progress(job),
        "result": import_job_result(job) if finished_with_result else None,
    }
    return render_to_string("admin/comparisons/import_progress.html", context)


@login_required
@require_GET
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The polled cell; it keeps polling itself until the job has finished."""
    job = _get_import_job_for_user(request, pk)
    if not request.htmx:
        return redirect(reverse("admin:comparisons_importjob_change", args=[job.pk]))
    return HttpResponse(render_import_status(job, detail=request.GET.get("detail") == "1"))
