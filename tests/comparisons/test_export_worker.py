"""End to end: a real Celery worker process (Redis, or the embedded filesystem broker) runs an
export; the download view serves the file it stored."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from comparisons.exports import create_export_job
from comparisons.models import ExportJob, JobStatus, Project
from comparisons.tasks import run_export, send_export
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
BASE_DIR = Path(settings.BASE_DIR)


def _database_url() -> str:
    db = connection.settings_dict  # the test database, already created by pytest-django
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def _running_worker(broker: str, tmp_path: Path, *, app_module: str, pool: str, extra_env: dict):
    """Point this process's Celery app at a real broker and start a worker process on it.

    `redis`: Redis, on a queue of this test's own. `filesystem`: the embedded default (kombu's
    filesystem transport), in a folder of this test's own, configured by the settings as in
    `make demo` (CELERY_BROKER_URL unset).
    """
    from raterhub.celery import app

    keys = ("task_always_eager", "broker_url", "task_default_queue", "broker_transport_options")
    saved = {k: app.conf[k] for k in keys}
    queue = f"raterhub-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "raterhub.settings",
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "1",
        "RATERHUB_VAR_DIR": str(tmp_path),
        **extra_env,
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("REDIS_URL", None)
    if broker == "redis":
        env["CELERY_BROKER_URL"] = REDIS_URL
        app.conf.update(broker_url=REDIS_URL, broker_transport_options={})
    else:
        folder = tmp_path / "celery" / "queue"
        folder.mkdir(parents=True)
        app.conf.update(
            broker_url="filesystem://",
            broker_transport_options={
                "data_folder_in": str(folder),
                "data_folder_out": str(folder),
                "control_folder": str(tmp_path / "celery" / "control"),
                "polling_interval": 0.1,
            },
        )
    app.conf.update(task_always_eager=False, task_default_queue=queue)
    _drop_broker_connections(app)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            app_module,
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if broker == "redis":
            with app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)
        _drop_broker_connections(app)
        app.conf.update(saved)


@pytest.fixture
def worker(request, tmp_path):
    with _running_worker(
        request.param, tmp_path, app_module="raterhub", pool="solo", extra_env={}
    ) as process:
        yield process


@pytest.fixture
def worker_dying_once(tmp_path):
    """A worker on Redis whose pool process is killed at the start of its first task (the
    marker file records that it was); the worker's main process stays up and forks a new one."""
    marker = tmp_path / "died"
    with _running_worker(
        "redis",
        tmp_path,
        app_module="tests.comparisons.worker_dying_once",
        pool="prefork",
        extra_env={"RATERHUB_TEST_DIE_ONCE": str(marker)},
    ) as process:
        yield process, marker


def _wait_until_finished(job: ExportJob, worker: subprocess.Popen, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.25)


def _drop_broker_connections(app) -> None:
    # Connections pooled by earlier (eager) tests still point at the default broker. kombu
    # keeps its pools in global registries keyed by broker URL: reset() closes them and
    # forgets them, or a later test on the same URL would get back a closed pool.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "worker", [pytest.param("redis", marks=pytest.mark.redis), "filesystem"], indirect=True
)
def test_a_real_worker_runs_an_export_that_downloads(worker, client, project, lead, alice):
    Project.objects.filter(pk=project.pk).update(overlap=1)  # one judgment completes each
    for n in range(5):
        c = ComparisonFactory(project=project, external_id=f"w{n}")
        JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=alice, status="submitted"))
    job = create_export_job(project=project, format="trl-parquet", requested_by=lead, options={})

    assert send_export(job.pk)  # the way the admin sends it

    _wait_until_finished(job, worker, seconds=90)
    assert job.status == JobStatus.SUCCEEDED, job.error or "worker never finished the job"
    assert job.row_count == 5

    client.force_login(lead)
    response = client.get(reverse("export_download", args=[job.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == job.sha256
    assert body.startswith(b"PAR1")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_process_died_is_delivered_again(worker_dying_once, project, alice):
    # At-least-once delivery (acks_late, reject_on_worker_lost): the message of a task whose
    # process died goes back to Redis instead of being acknowledged and lost. (The filesystem
    # broker relies on requeue_stalled_exports instead: test_export_jobs.)
    worker, died = worker_dying_once
    Project.objects.filter(pk=project.pk).update(overlap=1)  # one judgment completes it
    c = ComparisonFactory(project=project)
    JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=alice, status="submitted"))
    job = create_export_job(project=project, format="trl", options={})

    run_export.delay(job.pk)

    _wait_until_finished(job, worker, seconds=60)
    assert died.exists(), "the first attempt never started"
    assert job.status == JobStatus.SUCCEEDED, job.error or "the job was never run again"
    assert job.row_count == 1
