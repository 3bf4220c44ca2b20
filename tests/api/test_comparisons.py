"""POST /api/v1/projects/<slug>/comparisons/ (the import, all or nothing) and its list."""

from __future__ import annotations

import json

import pytest

from comparisons.models import Comparison, ImportJob, JobStatus
from tests.factories import ComparisonFactory

URL = "/api/v1/projects/demo-test/comparisons/"
NDJSON = "application/x-ndjson"


def row(n: int, **extra) -> dict:
    return {
        "external_id": f"api-{n}",
        "prompt": f"Question {n}?",
        "responses": [{"model": "m-a", "content": "A"}, {"model": "m-b", "content": "B"}],
        **extra,
    }


def ndjson(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_json_lines_are_imported(as_lead, project):
    response = as_lead.post(URL, ndjson(row(n) for n in range(3)), content_type=NDJSON)
    assert response.status_code == 201, response.json()
    assert response.json() == {"created": 3, "skipped": 0}
    assert Comparison.objects.filter(project=project).count() == 3


def test_a_json_array_is_imported(as_lead, project):
    response = as_lead.post(URL, [row(1), row(2)], content_type="application/json")
    assert response.status_code == 201
    assert response.json() == {"created": 2, "skipped": 0}


def test_a_bad_line_rejects_the_whole_body_naming_its_line(as_lead, project):
    rows = [row(1), row(2), {"external_id": "x", "prompt": "?", "responses": []}, row(4)]
    body = ndjson(rows) + "not json\n"

    response = as_lead.post(URL, body, content_type=NDJSON)

    assert response.status_code == 400
    data = response.json()
    assert [e["line"] for e in data["errors"]] == [3, 5]
    assert "responses" in data["errors"][0]["message"]
    assert data["error_count"] == 2 and "nothing was imported" in data["detail"]
    assert not Comparison.objects.filter(project=project).exists()


def test_in_a_json_array_the_line_is_the_1_based_item(as_lead, project):
    response = as_lead.post(URL, [row(1), "oops", row(3)], content_type="application/json")
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["errors"]] == [2]
    assert not Comparison.objects.filter(project=project).exists()


def test_a_re_upload_is_reported_not_duplicated_and_skip_existing_skips(as_lead, project):
    body = ndjson([row(1), row(2)])
    assert as_lead.post(URL, body, content_type=NDJSON).status_code == 201

    again = as_lead.post(URL, body, content_type=NDJSON)
    assert again.status_code == 400
    assert [e["line"] for e in again.json()["errors"]] == [1, 2]
    assert "skip_existing" in again.json()["detail"]

    more = as_lead.post(f"{URL}?skip_existing=1", ndjson([row(1), row(3)]), content_type=NDJSON)
    assert more.json() == {"created": 1, "skipped": 1}
    assert Comparison.objects.filter(project=project).count() == 3


@pytest.mark.parametrize(
    "body, content_type, status",
    [
        ("{", "application/json", 400),
        ('{"external_id": 1}', "application/json", 400),  # an object, not an array
        ("a,b\n", "text/csv", 415),
        ("\n", NDJSON, 201),  # a blank line: nothing to import, nothing wrong
    ],
)
def test_bodies_that_are_not_comparisons(as_lead, project, body, content_type, status):
    response = as_lead.post(URL, body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert not Comparison.objects.filter(project=project).exists()


def test_a_body_over_the_size_limit_is_413_and_imports_nothing(as_lead, project, settings):
    settings.RATERHUB_API_MAX_UPLOAD_BYTES = 1000
    body = ndjson(row(n) for n in range(20))
    assert len(body) > 1000

    response = as_lead.post(URL, body, content_type=NDJSON)

    assert response.status_code == 413
    assert "RATERHUB_API_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert not Comparison.objects.filter(project=project).exists()


def test_a_body_over_the_size_limit_without_a_length_is_counted_as_read(project, settings):
    from api.uploads import UploadTooLarge, read_upload

    class Stream:  # chunked: no Content-Length to refuse it by
        def __init__(self):
            self.left = 10

        def read(self, n):
            self.left -= 1
            return b"x" * 400 if self.left > 0 else b""

    with pytest.raises(UploadTooLarge):
        read_upload(stream=Stream(), content_type=NDJSON, content_length=None, max_bytes=1000)


def test_a_large_body_becomes_an_import_job_with_the_same_counts(
    as_lead, project, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.RATERHUB_IMPORT_SYNC_MAX_LINES = 3

    with django_capture_on_commit_callbacks(execute=True) as sent:
        response = as_lead.post(URL, ndjson(row(n) for n in range(5)), content_type=NDJSON)

    assert response.status_code == 202
    data = response.json()
    assert data["url"].endswith(f"/api/v1/imports/{data['id']}/")
    assert len(sent) == 1  # enqueued after commit; eager Celery ran it there
    job = as_lead.get(data["url"]).json()
    assert job["status"] == JobStatus.SUCCEEDED
    assert (job["created"], job["skipped"], job["total_lines"]) == (5, 0, 5)
    assert Comparison.objects.filter(project=project).count() == 5
    assert not ImportJob.objects.get(pk=data["id"]).upload  # the stored body is gone


def test_a_large_bad_body_fails_its_job_with_the_line_errors(
    as_lead, project, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.RATERHUB_IMPORT_SYNC_MAX_LINES = 3
    rows = [row(0), row(1), row(2), {"external_id": "bad"}, row(4)]

    with django_capture_on_commit_callbacks(execute=True):
        response = as_lead.post(URL, rows, content_type="application/json")

    assert response.status_code == 202
    job = as_lead.get(response.json()["url"]).json()
    assert job["status"] == JobStatus.FAILED
    assert [e["line"] for e in job["errors"]] == [4] and job["created"] == 0
    assert not Comparison.objects.filter(project=project).exists()


def test_the_list_filters_by_external_id_and_completeness(as_lead, project):
    ComparisonFactory(project=project, external_id="done", judged_count=3, open_slots=0)
    ComparisonFactory(project=project, external_id="open", judged_count=1, open_slots=2)

    def ids(query):
        return [c["external_id"] for c in as_lead.get(f"{URL}?{query}").json()["results"]]

    assert ids("") == ["done", "open"]
    assert ids("complete=1") == ["done"]
    assert ids("complete=0") == ["open"]
    assert ids("external_id=open") == ["open"]
    assert as_lead.get(f"{URL}?complete=maybe").status_code == 400
    first = as_lead.get(URL).json()["results"][0]
    assert first["judgments"] == 3
    assert first["responses"] == [
        {"model": "model-a", "content": "Answer A to done"},
        {"model": "model-b", "content": "Answer B to done"},
    ]


def test_the_list_pages_with_a_cursor(as_lead, project):
    for n in range(5):
        ComparisonFactory(project=project, external_id=f"c{n}")
    seen, url = [], f"{URL}?page_size=2"
    while url:
        page = as_lead.get(url).json()
        seen += [c["external_id"] for c in page["results"]]
        url = page["next"]
    assert seen == [f"c{n}" for n in range(5)]
    assert as_lead.get(f"{URL}?cursor=garbage").status_code == 404


def test_the_list_query_count_is_constant(as_lead, project, django_assert_max_num_queries):
    as_lead.get(URL)
    for _ in range(20):
        ComparisonFactory(project=project)
    with django_assert_max_num_queries(5):
        response = as_lead.get(f"{URL}?complete=0")
    assert len(response.json()["results"]) == 20
