"""Celery tasks: thin wrappers that load by id and call the plain functions of this app.

Faces enqueue with `task.delay_on_commit(...)`, so a worker never looks for a row whose
transaction has not committed yet. Acknowledgement is late everywhere (settings: a task whose
worker dies is redelivered), and every task is idempotent by id.
"""

from __future__ import annotations

from celery import shared_task

from comparisons.exports import requeue_stalled_exports, run_export_job
from comparisons.imports import run_import_job
from comparisons.metrics import compute_snapshot, needs_recompute
from comparisons.models import Project, ProjectStatus
from comparisons.queue import reclaim_expired


@shared_task
def run_export(job_id: int) -> str | None:
    """Run one ExportJob; a redelivery after a killed worker re-runs it to the same file."""
    job = run_export_job(job_id)
    return job.status if job else None


@shared_task
def run_import(job_id: int) -> str | None:
    """Run one ImportJob; a redelivery finds it finished, or imports it from the start."""
    job = run_import_job(job_id)
    return job.status if job else None


@shared_task
def requeue_stalled_export_jobs() -> int:
    """Beat entry: send again the exports whose worker died (the filesystem broker cannot)."""
    requeued = requeue_stalled_exports()
    for job_id in requeued:
        run_export.delay(job_id)
    return len(requeued)


@shared_task
def recompute_metrics(project_id: int) -> int | None:
    """Compute one project's metrics snapshot; returns the snapshot id."""
    project = Project.objects.filter(pk=project_id).first()
    return compute_snapshot(project).pk if project else None


@shared_task
def recompute_active_metrics() -> int:
    """Beat entry: queue a recompute for each active project with something new to show."""
    queued = 0
    for project in Project.objects.filter(status=ProjectStatus.ACTIVE):
        if needs_recompute(project):
            recompute_metrics.delay(project.pk)
            queued += 1
    return queued


@shared_task
def reclaim_expired_leases() -> int:
    """Beat entry (every minute): free the slots of leases past their expiry in every project."""
    return reclaim_expired()
