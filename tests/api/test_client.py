"""The Python client (client/, raterhub_client) against a live server: push, progress, export,
to_dataset, judgments; its retries, and one exception type carrying the line errors."""

from __future__ import annotations

import json

import pytest
import requests

from api.tokens import issue_token
from comparisons.models import Comparison
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

raterhub_client = pytest.importorskip("raterhub_client")
RaterHub, RaterHubError = raterhub_client.RaterHub, raterhub_client.RaterHubError

pytestmark = pytest.mark.slow


def rows(start: int, stop: int) -> list[dict]:
    return [
        {
            "external_id": f"cl-{n}",
            "prompt": [{"role": "user", "content": f"Q{n}?"}],
            "responses": [{"model": "m-a", "content": "A"}, {"model": "m-b", "content": "B"}],
        }
        for n in range(start, stop)
    ]


@pytest.fixture
def hub(live_server, lead, project, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    _, key = issue_token(user=lead, name="client test")
    return RaterHub(live_server.url, key, progress=False, backoff=0.01)


def test_push_in_chunks_then_progress(hub, project):
    result = hub.project("demo-test").push(rows(0, 7), chunk_rows=3)
    assert result == {"created": 7, "skipped": 0}
    assert hub.project("demo-test").progress() == {
        "comparisons": 7,
        "complete": 0,
        "judgments": 0,
        "target": 21,
    }
    again = hub.project("demo-test").push(rows(0, 9), skip_existing=True)
    assert again == {"created": 2, "skipped": 7}


def test_push_takes_a_jsonl_path_a_dataframe_and_a_dataset(hub, project, tmp_path):
    pandas = pytest.importorskip("pandas")
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(0, 3)))
    frame = pandas.DataFrame(rows(3, 6))
    dataset = datasets.Dataset.from_list(rows(6, 9))
    p = hub.project("demo-test")

    assert p.push(str(path))["created"] == 3
    assert p.push(frame)["created"] == 3
    assert p.push(dataset)["created"] == 3
    assert Comparison.objects.filter(project=project).count() == 9


def test_a_rejected_chunk_raises_with_the_servers_line_errors(hub, project):
    bad = rows(0, 3)
    bad[1]["responses"] = []
    with pytest.raises(RaterHubError) as caught:
        hub.project("demo-test").push(bad)
    assert caught.value.status == 400
    assert [e["line"] for e in caught.value.errors] == [2]
    assert "line 2" in str(caught.value)
    assert not Comparison.objects.filter(project=project).exists()


def test_a_project_you_do_not_lead_raises_404(hub):
    with pytest.raises(RaterHubError) as caught:
        hub.project("not-yours").progress()
    assert caught.value.status == 404


def test_a_retried_upload_never_duplicates(hub, project, monkeypatch):
    # The first POST lands but its answer is lost (connection reset): the retry must skip.
    real = requests.Session.request
    calls = []

    def flaky(self, method, url, **kwargs):
        calls.append(dict(kwargs.get("params") or {}))
        response = real(self, method, url, **kwargs)
        if len(calls) == 1:
            raise requests.ConnectionError("Connection reset by peer")
        return response

    monkeypatch.setattr(requests.Session, "request", flaky)
    result = hub.project("demo-test").push(rows(0, 4))

    assert calls == [{"skip_existing": 0}, {"skip_existing": 1}]
    assert result == {"created": 0, "skipped": 4}  # the retry found them all there
    assert Comparison.objects.filter(project=project).count() == 4


def test_429_is_retried_after_its_retry_after(hub, project, settings, monkeypatch):
    settings.RATERHUB_API_RATE_LIMIT = "2/min"
    slept = []
    monkeypatch.setattr("raterhub_client.client.time.sleep", lambda s: slept.append(s))
    p = hub.project("demo-test")
    p.progress(), p.progress()
    with pytest.raises(RaterHubError) as caught:
        hub.retries = 2
        p.progress()
    assert caught.value.status == 429
    assert len(slept) == 2 and all(s >= 1 for s in slept)  # waited as Retry-After said


def test_export_wait_download_and_to_dataset(hub, project, alice, bob, charlie, tmp_path):
    for n in range(3):
        c = ComparisonFactory(project=project, external_id=f"x{n}")
        for rater in (alice, bob, charlie):  # overlap 3: complete, so exported by default
            JudgmentFactory(
                assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"),
                choice="a",
            )
    job = hub.project("demo-test").export("trl", min_agreement=0.66)
    job.wait(timeout=60)
    assert job.status == "succeeded" and job["rows"] == 3

    path = job.download(tmp_path / "demo-trl.jsonl")
    assert len(path.read_text().splitlines()) == 3
    ds = job.to_dataset(cache_dir=str(tmp_path / "hf"))  # the file just downloaded
    assert ds.num_rows == 3 and set(ds["chosen_model"]) == {"model-a"}
    fresh = hub.export_job(job.id).to_dataset(cache_dir=str(tmp_path / "hf2"))  # downloads
    assert fresh.num_rows == 3

    judgments = list(hub.project("demo-test").judgments(page_size=4))
    assert len(judgments) == 9 and {j["choice"] for j in judgments} == {"a"}


def test_a_bad_export_raises(hub, project):
    with pytest.raises(RaterHubError, match="min_agreement"):
        hub.project("demo-test").export("trl", min_agreement=7)


def test_url_and_token_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RATERHUB_URL", "https://rate.example.org/")
    monkeypatch.setenv("RATERHUB_TOKEN", "rh_x")
    hub = RaterHub()
    assert hub.url == "https://rate.example.org"
    assert hub.session.headers["Authorization"] == "Token rh_x"
    monkeypatch.delenv("RATERHUB_TOKEN")
    with pytest.raises(ValueError):
        RaterHub()
