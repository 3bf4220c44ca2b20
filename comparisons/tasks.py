"""Celery tasks: thin wrappers that load by id and call the plain functions of this app.

Faces enqueue with `task.delay_on_commit(...)`, so a worker never looks for a row whose
transaction has not committed yet. Acknowledgement is late everywhere (settings: a task whose
worker dies is redelivered), and every task is idempotent by id.
"""

from __future__ import annotations

import logging

from celery import shared_task, signals
from django.db import transaction

from api.webhooks import export_finished
from comparisons.exports import (
    exports_to_send,
    mark_sent,
    remove_orphaned_partials,
    requeue_stalled_exports,
    run_export_job,
)
from comparisons.imports import run_import_job
from comparisons.metrics import compute_snapshot, needs_recompute
from comparisons.models import Project, ProjectStatus
from comparisons.queue import reclaim_expired
from ops.logs import request_id

logger = logging.getLogger(__name__)


@shared_task
def run_export(job_id: int) -> str | None:
    """Run one ExportJob; a redelivery after a killed worker re-runs it to the same file.
    Its webhooks are told once (a delivery per job and outcome, whoever runs it)."""
    job = run_export_job(job_id)
    if job is not None:
        export_finished(job)
    return job.status if job else None


def send_on_commit(task, *args) -> None:
    """`task.delay(*args)` once the transaction commits, logged instead of raised when the broker
    is down: the request that asked has already committed its work and must not fail for it."""

    def send() -> None:
        try:
            task.apply_async(args)
        except Exception as exc:  # kombu's OperationalError, a refused or timed-out connection
            logger.warning("%s%r not sent, the broker is unavailable: %s", task.name, args, exc)

    transaction.on_commit(send)


def send_export(job_id: int) -> bool:
    """Send an export job to a worker; the face calls it after commit. With the broker down the
    job stays queued and unsent (logged, False): beat's sweep sends it once the broker is back."""
    try:
        run_export.apply_async((job_id,))
    except Exception as exc:  # kombu's OperationalError, a refused or timed-out connection
        logger.warning("export job %s not sent, the broker is unavailable: %s", job_id, exc)
        return False
    mark_sent(job_id)
    return True


@shared_task
def run_import(job_id: int) -> str | None:
    """Run one ImportJob; a redelivery finds it finished, or imports it from the start."""
    job = run_import_job(job_id)
    return job.status if job else None


@shared_task
def requeue_stalled_export_jobs() -> int:
    """Beat entry (every 30 s): send the exports whose worker died and those never sent."""
    due = set(requeue_stalled_exports()) | set(exports_to_send())
    return sum(send_export(job_id) for job_id in sorted(due))


@signals.worker_ready.connect
def clean_partial_exports(**_signal) -> None:
    """A worker starting: the partial files of runs killed with their worker go."""
    remove_orphaned_partials()


@signals.task_prerun.connect
def _task_request_id(task_id=None, **_signal) -> None:
    # A task's log lines carry its id where a request's carry the request id.
    request_id.set(task_id or "")


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
