"""Export jobs: an ExportJob row, run by a Celery worker, its file moved into storage when done.

The faces (admin, API) create a job and enqueue `comparisons.tasks.run_export` after commit;
the task calls `run_export_job`. A running job beats every HEARTBEAT; one silent for
STALLED_AFTER lost its worker, and `requeue_stalled_exports` puts it back in the queue.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from comparisons.exports.files import export_preferences
from comparisons.exports.options import validate_options
from comparisons.models import ExportFormat, ExportJob, JobStatus, Project

logger = logging.getLogger(__name__)

HEARTBEAT = timedelta(seconds=30)  # a running job writes a sign of life at least this often
STALLED_AFTER = timedelta(minutes=10)  # no sign of life for this long: its worker is gone


class _TemporaryFile(File):
    """Lets FileSystemStorage move the finished file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def storage_name(job: ExportJob) -> str:
    # Fixed per job, so a re-run after a killed worker replaces, never duplicates, the file.
    extension = ExportFormat(job.format).extension
    return f"exports/{job.project.slug}/{job.pk}-{job.format}.{extension}"


def create_export_job(
    *, project: Project, format: str, requested_by=None, options: dict | None = None
) -> ExportJob:
    """Validate the options and record a queued job; the caller enqueues it after commit."""
    opts = validate_options(format, **(options or {}))
    return ExportJob.objects.create(
        project=project, format=format, requested_by=requested_by, options=opts.stored()
    )


def run_export_job(job_id: int) -> ExportJob | None:
    """Run one export job to the end: succeeded with a file, or failed with its error.

    Idempotent by job id: a finished job is left alone; a job left "running" by a killed worker
    runs again from the start and, the output being deterministic, produces the same file.
    """
    claimed = ExportJob.objects.filter(
        pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).update(
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        progress=0.0,
        error="",
    )
    if not claimed:
        return ExportJob.objects.filter(pk=job_id).first()
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    last_saved, last_beat = -1.0, timezone.now()

    def save_progress(done: int, total: int) -> None:
        nonlocal last_saved, last_beat
        fraction = round(min(done / total, 1.0), 3) if total else 1.0
        now = timezone.now()
        # At most ~100 progress writes per job, but a heartbeat at least every HEARTBEAT
        # so requeue_stalled_exports can tell a slow job from a dead one.
        if fraction - last_saved >= 0.01 or now - last_beat >= HEARTBEAT:
            ExportJob.objects.filter(pk=job_id).update(progress=fraction, heartbeat_at=now)
            last_saved, last_beat = fraction, now

    tmp_dir = tempfile.mkdtemp(prefix="raterhub-export-")
    try:
        local = Path(tmp_dir) / Path(storage_name(job)).name
        manifest = export_preferences(
            job.project, job.format, local, progress=save_progress, **job.options
        )
        name = storage_name(job)
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(local, "rb") as fh:
            saved = default_storage.save(name, _TemporaryFile(fh, name=Path(name).name))
        manifest["file"] = Path(saved).name
        ExportJob.objects.filter(pk=job_id).update(
            status=JobStatus.SUCCEEDED,
            progress=1.0,
            file=saved,
            sha256=manifest["sha256"],
            row_count=manifest["counts"]["rows_written"],
            manifest=manifest,
            finished_at=timezone.now(),
        )
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        _discard_stored(job)
        ExportJob.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED,
            file="",
            sha256="",
            error=f"{type(exc).__name__}: {exc}"[:5000],
            finished_at=timezone.now(),
        )
    finally:
        for leftover in Path(tmp_dir).glob("*"):
            leftover.unlink(missing_ok=True)
        Path(tmp_dir).rmdir()
    return ExportJob.objects.get(pk=job_id)


def _discard_stored(job: ExportJob) -> None:
    # A file an earlier attempt stored must not outlive the job's failure.
    try:
        default_storage.delete(storage_name(job))
    except Exception:
        logger.exception("could not delete the stored file of export job %s", job.pk)


def requeue_stalled_exports(*, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Put back in the queue the running jobs whose worker died (no heartbeat for
    `stalled_after`), and return their ids for the caller to send to a worker again.

    A job is idempotent by id, so a false alarm costs a second identical run, never a wrong file.
    """
    cutoff = timezone.now() - stalled_after
    stalled = list(
        ExportJob.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    requeued = []
    for pk in stalled:
        # Conditional: a job that finished or beat since the read above is left alone.
        if ExportJob.objects.filter(
            pk=pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
        ).update(status=JobStatus.QUEUED):
            logger.warning("export job %s stalled; sending it again", pk)
            requeued.append(pk)
    return requeued
