"""ExportJob runs: the file appears only when complete, failures leave nothing, re-runs agree."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from celery import signals
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from kombu.exceptions import OperationalError

from comparisons.exports import (
    ExportError,
    create_export_job,
    export_preferences,
    files,
    jobs,
    rows,
    run_export_job,
    source,
    storage_name,
)
from comparisons.models import ExportJob, JobStatus
from comparisons.tasks import requeue_stalled_export_jobs, run_export, send_export
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory):
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def judged(project, alice, bob, charlie):
    for n in range(12):
        c = ComparisonFactory(project=project, external_id=f"j{n:02d}")
        for rater in (alice, bob, charlie):
            JudgmentFactory(
                assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"),
                choice="a" if rater != charlie else "b",
            )
    return project


def test_it_runs_a_job_to_a_stored_file_with_manifest(judged, lead):
    job = create_export_job(project=judged, format="trl", requested_by=lead, options={})

    job = run_export_job(job.pk)

    assert job.status == JobStatus.SUCCEEDED
    assert job.progress == 1.0
    assert job.row_count == 12
    assert job.file.name == storage_name(job)
    with job.file.open("rb") as fh:
        data = fh.read()
    import hashlib

    assert hashlib.sha256(data).hexdigest() == job.sha256 == job.manifest["sha256"]
    assert job.manifest["counts"]["rows_written"] == 12
    assert job.started_at and job.finished_at


def test_it_saves_progress_as_it_goes(judged, monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 3)
    monkeypatch.setattr(files, "CONTENT_BATCH", 2)
    job = create_export_job(project=judged, format="trl", options={})
    real_export = export_preferences
    stored = []

    def watched_export(project, format, path, *, progress, **options):
        def watching(done, total):
            progress(done, total)
            stored.append(ExportJob.objects.values_list("progress", flat=True).get(pk=job.pk))

        return real_export(project, format, path, progress=watching, **options)

    monkeypatch.setattr(jobs, "export_preferences", watched_export)
    run_export_job(job.pk)

    assert len(stored) == 12  # one call per comparison's three judgments
    assert stored == sorted(stored)
    assert stored[0] == pytest.approx(3 / 36, abs=0.001)
    assert stored[-1] == 1.0


def test_a_failure_mid_write_leaves_no_file_and_a_failed_job(judged, monkeypatch, tmp_path):
    monkeypatch.setattr(files, "CONTENT_BATCH", 2)
    calls = {"n": 0}
    real_write = rows.JsonlWriter.write

    def failing_write(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:  # after two batches are on disk
            raise OSError("disk full")
        real_write(self, rows)

    monkeypatch.setattr(rows.JsonlWriter, "write", failing_write)
    monkeypatch.setattr(jobs.tempfile, "tempdir", str(tmp_path))
    job = create_export_job(project=judged, format="trl", options={})

    job = run_export_job(job.pk)

    assert calls["n"] == 3
    assert job.status == JobStatus.FAILED
    assert "disk full" in job.error
    assert not job.file
    assert job.sha256 == ""
    assert not default_storage.exists(storage_name(job))
    assert list(tmp_path.rglob("*")) == []  # no temporary file left behind either


def test_a_failure_in_the_cli_path_leaves_nothing_at_the_output(judged, monkeypatch, tmp_path):
    monkeypatch.setattr(files, "CONTENT_BATCH", 2)
    monkeypatch.setattr(files, "pair_rows", mock.Mock(side_effect=RuntimeError("boom")))

    with pytest.raises(RuntimeError):
        export_preferences(judged, "trl", tmp_path / "out.jsonl")

    assert list(tmp_path.iterdir()) == []


def _silent_since():
    """A heartbeat old enough that the job's worker counts as dead."""
    return timezone.now() - jobs.STALLED_AFTER - timedelta(seconds=1)


def test_a_rerun_after_a_killed_worker_produces_the_same_file(judged):
    job = create_export_job(project=judged, format="judgments-parquet", options={})
    first = run_export_job(job.pk)
    with first.file.open("rb") as fh:
        first_bytes = fh.read()
    # A worker died after the file was stored but before the job was marked done.
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, file="", heartbeat_at=_silent_since()
    )

    second = run_export_job(job.pk)

    assert second.status == JobStatus.SUCCEEDED
    assert second.file.name == first.file.name
    with second.file.open("rb") as fh:
        assert fh.read() == first_bytes
    assert second.sha256 == first.sha256


def test_a_failed_rerun_removes_the_file_an_earlier_attempt_stored(judged, monkeypatch):
    job = create_export_job(project=judged, format="trl", options={})
    run_export_job(job.pk)
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=_silent_since()
    )
    monkeypatch.setattr(files, "pair_rows", mock.Mock(side_effect=RuntimeError("boom")))

    job = run_export_job(job.pk)

    assert job.status == JobStatus.FAILED
    assert not default_storage.exists(storage_name(job))


def test_a_finished_job_is_not_run_again(judged):
    job = create_export_job(project=judged, format="trl", options={})
    run_export_job(job.pk)

    with mock.patch.object(jobs, "export_preferences") as export:
        again = run_export_job(job.pk)

    export.assert_not_called()
    assert again.status == JobStatus.SUCCEEDED


def test_bad_options_are_refused_before_a_job_exists(project):
    with pytest.raises(ExportError):
        create_export_job(project=project, format="trl", options={"min_agreement": 2})
    assert not ExportJob.objects.exists()


def test_the_task_runs_the_job(judged):
    job = create_export_job(project=judged, format="trl", options={"min_judgments": 3})

    assert send_export(job.pk) is True  # eager in tests: runs in-process

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.manifest["options"]["min_judgments"] == 3
    assert job.sent_at is not None


def test_a_job_whose_worker_died_is_sent_again_and_completes(
    judged, django_capture_on_commit_callbacks
):
    stalled = create_export_job(project=judged, format="trl", options={})
    alive = create_export_job(project=judged, format="trl-kto", options={})
    finished = create_export_job(project=judged, format="openai-dpo", options={})
    run_export_job(finished.pk)
    long_ago = timezone.now() - jobs.STALLED_AFTER - timedelta(seconds=1)
    # A worker was killed mid-job: "running", and silent since.
    ExportJob.objects.filter(pk=stalled.pk).update(status=JobStatus.RUNNING, heartbeat_at=long_ago)
    # Another worker is still at it: it beat a moment ago.
    ExportJob.objects.filter(pk=alive.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    ExportJob.objects.filter(pk=finished.pk).update(heartbeat_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        requeued = requeue_stalled_export_jobs()

    assert requeued == 1
    stalled.refresh_from_db()
    assert stalled.status == JobStatus.SUCCEEDED  # eager in tests: ran in-process
    assert stalled.heartbeat_at > long_ago
    assert ExportJob.objects.get(pk=alive.pk).status == JobStatus.RUNNING
    assert ExportJob.objects.get(pk=finished.pk).status == JobStatus.SUCCEEDED


def test_a_long_job_beats_while_it_runs(judged, monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 3)
    monkeypatch.setattr(jobs, "HEARTBEAT", timedelta(0))  # beat on every progress call
    job = create_export_job(project=judged, format="judgments", options={})
    beats = []
    real_export = export_preferences

    def watching_export(project, format, path, *, progress, **options):
        def watching(done, total):
            progress(done, total)
            beats.append(ExportJob.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk))

        return real_export(project, format, path, progress=watching, **options)

    monkeypatch.setattr(jobs, "export_preferences", watching_export)

    run_export_job(job.pk)

    assert len(beats) >= 3
    assert beats == sorted(beats) and len(set(beats)) == len(beats)


def test_partial_files_live_under_the_media_roots_tmp_folder_and_go_when_done(judged, monkeypatch):
    seen = []
    real_export = export_preferences

    def watching_export(project, format, path, **options):
        seen.append(Path(path).parent)
        assert Path(path).parent.parent == jobs.partials_root()
        return real_export(project, format, path, **options)

    monkeypatch.setattr(jobs, "export_preferences", watching_export)
    ok = run_export_job(create_export_job(project=judged, format="trl", options={}).pk)
    monkeypatch.setattr(files, "pair_rows", mock.Mock(side_effect=RuntimeError("boom")))
    failed = run_export_job(create_export_job(project=judged, format="trl", options={}).pk)

    assert (ok.status, failed.status) == (JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert jobs.partials_root() == Path(settings.MEDIA_ROOT) / "tmp" / "exports"
    assert len(seen) == 2 and not any(folder.exists() for folder in seen)
    assert list(jobs.partials_root().iterdir()) == []


def test_worker_start_removes_the_partials_of_killed_runs_only(judged):
    dead = create_export_job(project=judged, format="trl", options={})
    live = create_export_job(project=judged, format="trl-kto", options={})
    ExportJob.objects.filter(pk=dead.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=_silent_since()
    )
    ExportJob.objects.filter(pk=live.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    root = jobs.partials_root()
    for name in (f"job-{dead.pk}-abc", f"job-{live.pk}-def", "job-999999-old", "stray"):
        (root / name).mkdir(parents=True)
        (root / name / "x.jsonl.partial").write_bytes(b"x" * 100)

    signals.worker_ready.send(sender=None)  # what a starting worker sends

    assert sorted(p.name for p in root.iterdir()) == [f"job-{live.pk}-def"]


def test_a_rerun_removes_the_partial_folder_its_killed_run_left(judged):
    job = create_export_job(project=judged, format="trl", options={})
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=_silent_since()
    )
    killed = jobs.partials_root() / f"job-{job.pk}-killed"
    killed.mkdir(parents=True)
    (killed / "x.jsonl.partial").write_bytes(b"x" * 100)
    other = jobs.partials_root() / "job-999999-other"
    other.mkdir()

    assert run_export_job(job.pk).status == JobStatus.SUCCEEDED

    assert sorted(p.name for p in jobs.partials_root().iterdir()) == ["job-999999-other"]


def test_an_export_asked_for_while_the_broker_is_down_is_sent_once_it_is_back(judged):
    job = create_export_job(project=judged, format="trl", options={})
    with mock.patch.object(run_export, "apply_async", side_effect=OperationalError("refused")):
        assert send_export(job.pk) is False
        job.refresh_from_db()
        assert (job.status, job.sent_at) == (JobStatus.QUEUED, None)
        # Beat's sweep while the broker is still down: still recorded, still unsent.
        ExportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=1))
        assert requeue_stalled_export_jobs() == 0
    assert ExportJob.objects.get(pk=job.pk).status == JobStatus.QUEUED

    assert requeue_stalled_export_jobs() == 1  # the broker is back (eager: runs in-process)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.sent_at is not None


def test_a_sent_job_is_not_sent_again_until_it_may_have_been_lost(judged):
    job = create_export_job(project=judged, format="trl", options={})
    ExportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(hours=1), sent_at=timezone.now()
    )
    assert jobs.exports_to_send() == []

    ExportJob.objects.filter(pk=job.pk).update(
        sent_at=timezone.now() - jobs.RESEND_AFTER - timedelta(seconds=1)
    )
    assert jobs.exports_to_send() == [job.pk]


def test_a_delivery_while_a_live_worker_runs_the_job_changes_nothing(judged):
    job = create_export_job(project=judged, format="trl", options={})
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )

    with mock.patch.object(jobs, "export_preferences") as export:
        again = run_export_job(job.pk)

    export.assert_not_called()
    assert again.status == JobStatus.RUNNING


def test_a_run_taken_over_by_another_stops_and_changes_nothing(judged, monkeypatch):
    monkeypatch.setattr(source, "CHUNK_SIZE", 3)
    monkeypatch.setattr(jobs, "HEARTBEAT", timedelta(0))
    job = create_export_job(project=judged, format="judgments", options={})
    real_export = export_preferences

    def overtaken(project, format, path, *, progress, **options):
        # Meanwhile another run claimed the job (this one was thought dead) with its own token.
        ExportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() + timedelta(seconds=1))
        return real_export(project, format, path, progress=progress, **options)

    monkeypatch.setattr(jobs, "export_preferences", overtaken)

    after = run_export_job(job.pk)

    assert after.status == JobStatus.RUNNING  # the other run's to finish
    assert not after.file and not after.error
    assert list(jobs.partials_root().iterdir()) == []
