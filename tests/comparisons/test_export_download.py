"""The download and manifest views: the project's leads and superusers only, as attachments."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from comparisons.exports import EXPORT_FILE_MODE, create_export_job, run_export_job
from comparisons.models import ExportJob, JobStatus
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    JudgmentFactory,
    LeadFactory,
    ProjectFactory,
    UserFactory,
)

# These tests are about the files, not about which comparisons are complete.
pytestmark = pytest.mark.usefixtures("one_judgment_completes")


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory):
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture
def job(project, alice, lead):
    c = ComparisonFactory(project=project, external_id="d1")
    JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=alice, status="submitted"))
    job = create_export_job(project=project, format="judgments", requested_by=lead, options={})
    return run_export_job(job.pk)


def test_it_serves_the_file_to_a_lead_of_the_project(client, job, lead):
    client.force_login(lead)

    response = client.get(reverse("export_download", args=[job.pk]))

    assert response.status_code == 200
    # <project>-<format>-<date>.<ext>: a downloads folder of these says what each one is.
    day = timezone.localdate(job.finished_at).isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="{job.project.slug}-judgments-{day}.jsonl"'
    )
    body = b"".join(response.streaming_content)
    assert json.loads(body)["external_id"] == "d1"
    import hashlib

    assert hashlib.sha256(body).hexdigest() == job.sha256


def test_it_serves_the_manifest_as_json(client, job, lead):
    client.force_login(lead)

    response = client.get(reverse("export_manifest", args=[job.pk]))

    assert response.status_code == 200
    day = timezone.localdate(job.finished_at).isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="{job.project.slug}-judgments-{day}.manifest.json"'
    )
    assert response.json()["sha256"] == job.sha256


@pytest.mark.parametrize(
    ("format", "extension"),
    [("trl", "jsonl"), ("trl-parquet", "parquet"), ("judgments-csv", "csv")],
)
def test_download_names_carry_project_format_date_and_extension(project, format, extension):
    job = ExportJob(project=project, format=format)
    job.finished_at = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    with timezone.override("UTC"):
        assert job.download_name() == f"{project.slug}-{format}-2026-03-04.{extension}"
        assert (
            job.download_name(manifest=True) == f"{project.slug}-{format}-2026-03-04.manifest.json"
        )
    with timezone.override("Europe/Paris"):  # the site's day, not UTC's
        assert job.download_name() == f"{project.slug}-{format}-2026-03-05.{extension}"


def test_a_stored_export_is_not_readable_by_everyone(job):
    assert stat.S_IMODE(os.stat(job.file.path).st_mode) == EXPORT_FILE_MODE == 0o640


def test_a_superuser_may_download_any_export(client, job):
    client.force_login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))

    assert client.get(reverse("export_download", args=[job.pk])).status_code == 200


@pytest.mark.parametrize("url_name", ["export_download", "export_manifest"])
def test_other_projects_leads_and_raters_are_refused(client, job, alice, url_name):
    other_lead = LeadFactory(email="other-lead@example.com")
    ProjectFactory(slug="elsewhere").leads.add(other_lead)
    url = reverse(url_name, args=[job.pk])

    for user in (other_lead, alice):
        client.force_login(user)
        assert client.get(url).status_code == 404


def test_a_non_staff_member_of_leads_is_refused(client, job, project, bob):
    project.leads.add(bob)  # listed as lead but not staff: no admin rights
    client.force_login(bob)

    assert client.get(reverse("export_download", args=[job.pk])).status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, job):
    response = client.get(reverse("export_download", args=[job.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_an_unfinished_or_failed_job_has_nothing_to_download(client, project, lead):
    client.force_login(lead)
    queued = ExportJob.objects.create(project=project, format="trl")
    failed = ExportJob.objects.create(
        project=project, format="trl", status=JobStatus.FAILED, file="exports/x.jsonl"
    )

    for j in (queued, failed):
        assert client.get(reverse("export_download", args=[j.pk])).status_code == 404
        assert client.get(reverse("export_manifest", args=[j.pk])).status_code == 404


def test_the_download_view_runs_few_queries(client, job, lead, django_assert_max_num_queries):
    client.force_login(lead)
    with django_assert_max_num_queries(4):  # session, user, job + project, lead check
        response = client.get(reverse("export_download", args=[job.pk]))
    assert response.status_code == 200
    response.close()
