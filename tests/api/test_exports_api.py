"""POST /api/v1/projects/<slug>/exports/, GET /api/v1/exports/<id>/ and its download."""

from __future__ import annotations

import json

import pytest

from comparisons.models import ExportJob, JobStatus
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

URL = "/api/v1/projects/demo-test/exports/"


@pytest.fixture
def judged(project, alice, bob, charlie):
    for n in range(3):
        c = ComparisonFactory(project=project, external_id=f"e{n}")
        for rater in (alice, bob, charlie):
            JudgmentFactory(
                assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"),
                choice="a",
            )
    return project


def test_an_export_is_created_run_and_downloaded(
    as_lead, judged, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_lead.post(
            URL, {"format": "trl", "min_agreement": 0.66}, content_type="application/json"
        )
    assert response.status_code == 202
    created = response.json()
    assert set(created) == {"id", "status", "url"}
    job = ExportJob.objects.get(pk=created["id"])
    assert job.options == {"min_agreement": 0.66}  # the export's own parse_options

    status = as_lead.get(created["url"]).json()
    assert set(status) == {
        "id", "format", "status", "progress", "rows", "manifest", "download_url", "error",
    }  # fmt: skip
    assert (status["status"], status["rows"], status["format"]) == ("succeeded", 3, "trl")
    download = as_lead.get(status["download_url"])
    assert download.status_code == 200
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert {json.loads(line)["chosen_model"] for line in lines} == {"model-a"}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"format": "nope"}, "format"),
        ({}, "format"),
        ({"format": "trl", "min_agreement": 3}, "min_agreement"),
        ({"format": "trl", "colour": "red"}, "unknown option"),
        ({"format": "judgments", "min_agreement": 0.5}, "pairwise"),
        ({"format": "trl", "exclude_raters": 5}, "exclude_raters"),
        ({"format": "trl", "exclude_raters": ["nobody@example.com"]}, "nobody@example.com"),
        ({"format": "trl", "since": "2026-01-02", "until": "2026-01-01"}, "since"),
    ],
)
def test_bad_options_are_400_and_create_nothing(as_lead, project, body, message):
    response = as_lead.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not ExportJob.objects.exists()


def test_an_unfinished_export_has_no_download(as_lead, project, lead):
    job = ExportJob.objects.create(project=project, format="trl", requested_by=lead)
    data = as_lead.get(f"/api/v1/exports/{job.pk}/").json()
    assert data["status"] == JobStatus.QUEUED and data["download_url"] is None
    assert as_lead.get(f"/api/v1/exports/{job.pk}/download").status_code == 404
