"""Large uploads on the admin's import page: a job with a live status cell, then its result."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import LEADS_GROUP
from comparisons.imports import create_import_job, run_import_job
from comparisons.models import Comparison, ImportJob, JobStatus
from tests.factories import LeadFactory, ProjectFactory, UserFactory

CHANGELIST = reverse("admin:comparisons_importjob_changelist")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory):
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture(autouse=True)
def threshold(settings):
    settings.RATERHUB_IMPORT_SYNC_MAX_LINES = 3


@pytest.fixture
def url(project):
    return reverse("admin:comparisons_project_import", args=[project.pk])


def _line(external_id: str, **fields) -> str:
    data = {
        "external_id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [
            {"model": "model-a", "content": "First."},
            {"model": "model-b", "content": "Second."},
        ],
        **fields,
    }
    return json.dumps(data) + "\n"


def _upload(*lines: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.jsonl", "".join(lines).encode(), "application/jsonl")


def _change_url(job: ImportJob) -> str:
    return reverse("admin:comparisons_importjob_change", args=[job.pk])


def _progress_url(job: ImportJob, detail: bool = False) -> str:
    return reverse("import_progress", args=[job.pk]) + ("?detail=1" if detail else "")


def _queued_job(project, n: int = 4) -> ImportJob:
    source = ContentFile("".join(_line(f"q-{i}") for i in range(n)).encode(), name="big.jsonl")
    return create_import_job(project=project, source=source)


def test_an_upload_at_the_threshold_is_imported_within_the_page(client, lead, project, url):
    client.force_login(lead)

    r = client.post(url, {"file": _upload(_line("a"), _line("b"), _line("c"))})

    assert r.status_code == 200
    assert r.context["result"].created == 3
    assert not ImportJob.objects.exists()


def test_an_upload_over_the_threshold_becomes_a_job_that_runs_after_commit(
    client, lead, project, url, django_capture_on_commit_callbacks
):
    client.force_login(lead)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = client.post(
            url,
            {"file": _upload(*[_line(f"q-{i}") for i in range(4)]), "skip_existing": "on"},
        )

    job = ImportJob.objects.get()
    assert r.status_code == 302 and r["Location"] == _change_url(job)
    assert len(callbacks) == 1  # queued once the upload was stored and committed
    # Celery runs eagerly in tests: the job has already run.
    assert (job.status, job.created_count, job.total_lines) == ("succeeded", 4, 4)
    assert (job.requested_by, job.filename, job.skip_existing) == (lead, "big.jsonl", True)
    assert project.comparisons.count() == 4
    assert job.upload.name == ""
    assert default_storage.listdir(f"imports/{project.slug}") == ([], [])


def test_the_job_page_shows_the_counts_when_done(client, lead, project, url):
    client.force_login(lead)
    job = _queued_job(project, 5)
    run_import_job(job.pk)

    r = client.get(_change_url(job))

    assert r.status_code == 200
    html = r.content.decode()
    assert "Imported 5 comparisons" in html
    assert "hx-get" not in html.split('id="content-main"')[1]  # finished: no more polling


def test_the_job_page_shows_every_reported_error_as_the_page_would(
    client, lead, project, url, django_capture_on_commit_callbacks
):
    bad = [_line("ok"), "{nope\n", _line("ok"), _line("x", responses=[]), _line("y")]
    client.force_login(lead)
    sync = client.post(url, {"file": _upload(*bad[:3])}).context["result"]  # under the threshold

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {"file": _upload(*bad)})

    job = ImportJob.objects.get()
    assert r["Location"] == _change_url(job)
    assert job.status == JobStatus.FAILED
    html = client.get(r["Location"]).content.decode()
    assert "The file was rejected: 3 bad lines out of 5. Nothing was imported." in html
    assert [(e["line"], e["message"]) for e in job.errors][:2] == [
        (e.line, e.message) for e in sync.errors
    ]
    for error in job.errors:
        assert f"<td>{error['line']}</td>" in html
        assert error["message"].replace("'", "&#x27;") in html
    assert Comparison.objects.count() == 0


def test_a_queued_or_running_job_polls_its_status(client, lead, project):
    job = _queued_job(project, 4)
    client.force_login(lead)

    page = client.get(_change_url(job)).content.decode()
    assert f'hx-get="{_progress_url(job, detail=True)}"' in page
    assert "waiting for a worker (4 lines)" in page

    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    cache.set(f"import-job-progress:{job.pk}", 3)
    cell = client.get(_progress_url(job, detail=True), **HTMX)
    assert cell.status_code == 200
    assert '<progress value="3" max="4">' in cell.content.decode()
    assert "3 of 4 lines read" in cell.content.decode()

    run_import_job(job.pk)
    done = client.get(_progress_url(job, detail=True), **HTMX).content.decode()
    assert "hx-get" not in done
    assert "Imported 4 comparisons" in done  # the full result, swapped in place
    listed = client.get(_progress_url(job), **HTMX).content.decode()
    assert "imported 4 comparisons" in listed and "<table" not in listed


def test_the_status_cell_without_htmx_goes_to_the_job_page(client, lead, project):
    job = _queued_job(project)
    client.force_login(lead)

    r = client.get(_progress_url(job))

    assert r.status_code == 302 and r["Location"] == _change_url(job)


def test_a_lead_of_another_project_cannot_see_or_poll_the_job(client, project):
    job = _queued_job(project)
    stranger = LeadFactory(email="stranger@example.com")
    stranger.groups.add(Group.objects.get(name=LEADS_GROUP))
    ProjectFactory(slug="theirs").leads.add(stranger)
    client.force_login(stranger)

    assert client.get(_progress_url(job), **HTMX).status_code == 404
    assert client.get(_progress_url(job, detail=True), **HTMX).status_code == 404
    r = client.get(_change_url(job))
    assert r.status_code == 302 and r["Location"] == reverse("admin:index")
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []


def test_raters_cannot_poll_a_job(client, alice, project):
    job = _queued_job(project)
    client.force_login(alice)

    assert client.get(_progress_url(job), **HTMX).status_code == 404
    assert client.get(_change_url(job)).status_code == 302  # to the admin login


def test_leads_may_view_import_jobs_and_only_superusers_delete_them(client, lead, project):
    assert lead.has_perm("comparisons.view_importjob")
    assert not lead.has_perm("comparisons.delete_importjob")
    job = _queued_job(project)
    client.force_login(lead)
    assert client.post(reverse("admin:comparisons_importjob_delete", args=[job.pk])).status_code
    assert ImportJob.objects.filter(pk=job.pk).exists()

    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(root)
    name = job.upload.name
    r = client.post(reverse("admin:comparisons_importjob_delete", args=[job.pk]), {"post": "yes"})

    assert r.status_code == 302
    assert not ImportJob.objects.filter(pk=job.pk).exists()
    assert not default_storage.exists(name)  # a queued job's upload goes with it


def _jobs(project, n: int) -> None:
    for i in range(n):
        job = _queued_job(project, 4)
        if i % 3 == 1:
            run_import_job(job.pk)
        elif i % 3 == 2:
            ImportJob.objects.filter(pk=job.pk).update(
                status=JobStatus.FAILED,
                error_count=2,
                errors=[{"line": 1, "message": "bad", "code": "invalid"}] * 2,
            )


def test_the_job_list_runs_a_constant_number_of_queries(
    client, lead, project, django_assert_max_num_queries
):
    client.force_login(lead)

    def queries_for_list() -> int:
        # The ceiling of every admin changelist (test_admin_changelists.MAX_QUERIES).
        with django_assert_max_num_queries(10) as queries:
            assert client.get(CHANGELIST).status_code == 200
        return len(queries)

    _jobs(project, 2)
    few = queries_for_list()
    _jobs(project, 9)
    many = queries_for_list()

    assert many == few
    page = client.get(CHANGELIST).content.decode()
    assert page.count('class="rh-import-status"') == 11
    assert "rejected: 2 bad lines, nothing imported" in page


def test_the_import_page_says_when_a_file_becomes_a_job(client, lead, url):
    client.force_login(lead)

    page = client.get(url).content.decode()

    assert "more than 3 lines is imported in the background" in page


def test_a_jobs_warnings_are_kept_and_shown_on_its_page(client, lead, project):
    source = ContentFile(
        "".join([_line("q-1"), _line("g-1", gold={"choice": "a"}), _line("q-2"), _line("q-3")]),
        name="big.jsonl",
    )
    job = run_import_job(create_import_job(project=project, source=source).pk)
    assert job.status == JobStatus.SUCCEEDED and job.gold_count == 1
    assert len(job.warnings) == 1 and "gold rate is 0" in job.warnings[0]
    client.force_login(lead)
    html = client.get(_change_url(job)).content.decode()
    assert "1 gold comparison imported, but this project&#x27;s gold rate is 0" in html
