"""End to end: a real Celery worker process (Redis, or the embedded filesystem broker) runs an
import job from the upload stored by the web process."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from comparisons.imports import create_import_job
from comparisons.models import JobStatus
from comparisons.tasks import run_import
from tests.comparisons import test_export_worker

worker = test_export_worker.worker  # the fixture: a worker process on a broker of the test's own


def _line(n: int) -> str:
    return json.dumps(
        {
            "external_id": f"w-{n}",
            "prompt": f"Question {n}?",
            "responses": [{"model": "a", "content": "A"}, {"model": "b", "content": "B"}],
        }
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "worker", [pytest.param("redis", marks=pytest.mark.redis), "filesystem"], indirect=True
)
def test_a_real_worker_imports_a_stored_upload(worker, project, lead):
    source = ContentFile("\n".join(_line(n) for n in range(50)).encode(), name="w.jsonl")
    job = create_import_job(project=project, source=source, requested_by=lead)
    stored = job.upload.name

    run_import.delay_on_commit(job.pk)  # autocommit here: sent at once

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.25)
    assert job.status == JobStatus.SUCCEEDED, job.error or "the worker never finished"
    assert (job.created_count, job.lines_read) == (50, 50)
    assert project.comparisons.count() == 50
    assert not default_storage.exists(stored)
