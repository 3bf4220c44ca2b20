"""End to end: an export asked for through the API, run by a real Celery worker process, polled
to `succeeded`, downloaded through the API and loaded with `datasets`."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import token_client
from tests.comparisons.test_export_worker import _running_worker
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

pytestmark = pytest.mark.slow


@pytest.fixture
def worker(tmp_path):
    """A real worker process on the embedded broker, as tests/comparisons/test_export_worker."""
    with _running_worker(
        "filesystem", tmp_path, app_module="raterhub", pool="solo", extra_env={}
    ) as process:
        yield process


@pytest.mark.django_db(transaction=True)
def test_an_api_export_runs_on_a_real_worker_and_loads_with_datasets(
    worker, project, lead, alice, bob, charlie, tmp_path
):
    datasets = pytest.importorskip("datasets")
    for n in range(4):
        c = ComparisonFactory(project=project, external_id=f"w{n}")
        for rater in (alice, bob, charlie):  # overlap 3: complete, so exported by default
            JudgmentFactory(
                assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"),
                choice="b",
            )
    api = token_client(lead)

    created = api.post(
        "/api/v1/projects/demo-test/exports/", {"format": "trl"}, content_type="application/json"
    )
    assert created.status_code == 202
    url = created.json()["url"]
    deadline = time.monotonic() + 90
    status = api.get(url).json()
    while status["status"] in ("queued", "running") and time.monotonic() < deadline:
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.25)
        status = api.get(url).json()
    assert status["status"] == "succeeded", status
    assert status["rows"] == 4 and status["manifest"]["counts"]["rows_written"] == 4

    download = api.get(status["download_url"])
    path = tmp_path / "demo-trl.jsonl"
    path.write_bytes(b"".join(download.streaming_content))
    ds = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert ds.num_rows == 4
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert set(ds["chosen_model"]) == {"model-b"}
