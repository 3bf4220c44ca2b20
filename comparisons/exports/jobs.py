"""Export jobs: an ExportJob row, run by a Celery worker, its file moved into storage when done.

The faces (admin, API) create a job and send `comparisons.tasks.run_export` after commit,
recording the send with `mark_sent`; the task calls `run_export_job`. A running job beats every
HEARTBEAT; one silent for STALLED_AFTER lost its worker, and `requeue_stalled_exports` puts it
back in the queue. `exports_to_send` lists the queued jobs that no worker may have: never sent
(the broker was down) or sent long ago and never started (the broker lost the message).

Each run claims the job with its own start time, its token: a run whose token is no longer the
job's (another run took over after a false alarm) stops at its next beat and changes nothing.
Partial files live in `tmp/exports/` under MEDIA_ROOT, one folder per run, removed when the run
ends whatever the outcome; a killed run's folder goes when the job runs again, and at worker
start (`remove_orphaned_partials`).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from comparisons.exports import ranked
from comparisons.exports.files import export_preferences
from comparisons.exports.options import parse_format, validate_options
from comparisons.models import ExportFormat, ExportJob, JobStatus, Project

logger = logging.getLogger(__name__)

HEARTBEAT = timedelta(seconds=10)  # a running job writes a sign of life at least this often
# No sign of life for this long: its worker is gone. With beat's sweep every 30 s, a dead
# worker's export runs again within about 90 s.
STALLED_AFTER = timedelta(seconds=60)
UNSENT_GRACE = timedelta(seconds=10)  # a new job's own send (after commit) comes first
RESEND_AFTER = timedelta(minutes=2)  # sent, never started: the broker may have lost it
_RUN_FOLDER = re.compile(r"^job-(?P<pk>\d+)-")


class Superseded(Exception):
    """Another run of the same job took over (this one was thought dead): stop, change nothing."""


def partials_root() -> Path:
    """Where runs write their partial files: the media root's own temporary folder."""
    return Path(settings.MEDIA_ROOT) / "tmp" / "exports"


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
    ranked.check_format(project, parse_format(format))
    return ExportJob.objects.create(
        project=project, format=format, requested_by=requested_by, options=opts.stored()
    )


def _claimable() -> Q:
    # Queued, or running but silent too long (its worker died): a delivery of a job that a
    # live worker is running finds neither and leaves it alone.
    return Q(status=JobStatus.QUEUED) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=timezone.now() - STALLED_AFTER
    )


def run_export_job(job_id: int) -> ExportJob | None:
    """Run one export job to the end: succeeded with a file, or failed with its error.

    Idempotent by job id: a finished job, or one a live worker is running, is left alone; a job
    whose worker died runs again from the start and, the output being deterministic, produces
    the same file.
    """
    token = timezone.now()
    claimed = (
        ExportJob.objects.filter(_claimable(), pk=job_id).update(
            status=JobStatus.RUNNING, started_at=token, heartbeat_at=token, progress=0.0, error=""
        )
    )  # fmt: skip
    if not claimed:
        return ExportJob.objects.filter(pk=job_id).first()
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    mine = ExportJob.objects.filter(pk=job_id, status=JobStatus.RUNNING, started_at=token)
    last_saved, last_beat = -1.0, token

    def save_progress(done: int, total: int) -> None:
        nonlocal last_saved, last_beat
        fraction = round(min(done / total, 1.0), 3) if total else 1.0
        now = timezone.now()
        # At most ~100 progress writes per job, but a heartbeat at least every HEARTBEAT
        # so requeue_stalled_exports can tell a slow job from a dead one.
        if fraction - last_saved >= 0.01 or now - last_beat >= HEARTBEAT:
            if not mine.update(progress=fraction, heartbeat_at=now):
                raise Superseded(job_id)
            last_saved, last_beat = fraction, now

    root = partials_root()
    root.mkdir(parents=True, exist_ok=True)
    # Claimed: any earlier run of this job is dead (or will stop at its next beat), so its
    # partial folder goes now rather than at the next worker start.
    for earlier in root.glob(f"job-{job_id}-*"):
        shutil.rmtree(earlier, ignore_errors=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=root))
    try:
        local = run_dir / Path(storage_name(job)).name
        manifest = export_preferences(
            job.project, job.format, local, progress=save_progress, **job.options
        )
        _finish(job, token, local, manifest)
    except Superseded:
        logger.warning("export job %s was taken over by another run; this one stops", job_id)
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        if mine.exists():
            _discard_stored(job)
            mine.update(
                status=JobStatus.FAILED,
                file="",
                sha256="",
                error=f"{type(exc).__name__}: {exc}"[:5000],
                finished_at=timezone.now(),
            )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return ExportJob.objects.get(pk=job_id)


def _finish(job: ExportJob, token: datetime, local: Path, manifest: dict) -> None:
    """Move the finished file into storage and record success, unless another run took over."""
    mine = ExportJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, started_at=token)
    if not mine.update(heartbeat_at=timezone.now()):
        raise Superseded(job.pk)
    name = storage_name(job)
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(local, "rb") as fh:
        saved = default_storage.save(name, _TemporaryFile(fh, name=Path(name).name))
    manifest["file"] = Path(saved).name
    mine.update(
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        file=saved,
        sha256=manifest["sha256"],
        row_count=manifest["counts"]["rows_written"],
        manifest=manifest,
        finished_at=timezone.now(),
    )


def remove_orphaned_partials() -> int:
    """Delete the partial-file folders of runs that are over (their worker was killed): every
    folder but those of jobs running with a fresh heartbeat, which a live worker may be
    writing (workers share the media root). Called at worker start; returns folders removed."""
    root = partials_root()
    if not root.is_dir():
        return 0
    live = set(
        ExportJob.objects.filter(
            status=JobStatus.RUNNING, heartbeat_at__gte=timezone.now() - STALLED_AFTER
        ).values_list("pk", flat=True)
    )
    removed = 0
    for folder in root.iterdir():
        match = _RUN_FOLDER.match(folder.name)
        if match and int(match["pk"]) in live:
            continue
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.info("removed %s partial export folder(s) left by killed runs", removed)
    return removed


def mark_sent(job_id: int) -> None:
    """Record that the job's task reached the broker."""
    ExportJob.objects.filter(pk=job_id).update(sent_at=timezone.now())


def exports_to_send() -> list[int]:
    """Queued jobs no worker may have: never sent (the broker was down when they were asked
    for, or they were just requeued), or sent RESEND_AFTER ago and still not started. Sending
    one twice is harmless: the second delivery finds it running or done."""
    now = timezone.now()
    return list(
        ExportJob.objects.filter(status=JobStatus.QUEUED)
        .filter(
            # A new job's own send after commit comes first.
            Q(sent_at__isnull=True, created_at__lt=now - UNSENT_GRACE)
            | Q(sent_at__lt=now - RESEND_AFTER)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _discard_stored(job: ExportJob) -> None:
    # A file an earlier attempt stored must not outlive the job's failure.
    try:
        default_storage.delete(storage_name(job))
    except Exception:
        logger.exception("could not delete the stored file of export job %s", job.pk)


def requeue_stalled_exports(*, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Put back in the queue, unsent, the running jobs whose worker died (no heartbeat for
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
        ).update(status=JobStatus.QUEUED, sent_at=None):
            logger.warning("export job %s stalled; sending it again", pk)
            requeued.append(pk)
    return requeued
