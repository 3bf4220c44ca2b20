"""The admin's "Export…" project action and the ExportJob list with its live progress cell."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from comparisons.models import ExportJob, JobStatus
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory, ProjectFactory

# These tests are about the files, not about which comparisons are complete.
pytestmark = pytest.mark.usefixtures("one_judgment_completes")


CHANGELIST = reverse("admin:comparisons_exportjob_changelist")
PROJECTS = reverse("admin:comparisons_project_changelist")


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory):
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


def test_the_action_shows_the_export_form(client, lead, project):
    client.force_login(lead)

    response = client.post(
        PROJECTS, {"action": "export_projects", "_selected_action": [project.pk]}
    )

    assert response.status_code == 200
    assert b'id="export-form"' in response.content
    assert b'name="aggregation"' in response.content
    assert not ExportJob.objects.exists()


def test_applying_the_form_queues_a_job_that_runs(
    client, lead, project, alice, django_capture_on_commit_callbacks
):
    c = ComparisonFactory(project=project)
    JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=alice, status="submitted"))
    client.force_login(lead)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            PROJECTS,
            {
                "action": "export_projects",
                "_selected_action": [project.pk],
                "apply": "1",
                "format": "trl",
                "aggregation": "unanimous",
                "min_judgments": "1",
            },
        )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert len(callbacks) == 1  # enqueued on commit, not before
    job = ExportJob.objects.get()
    assert job.requested_by == lead
    assert job.options == {"aggregation": "unanimous", "min_judgments": 1}
    assert job.status == JobStatus.SUCCEEDED  # eager Celery in tests
    assert job.row_count == 1


def test_bad_options_redisplay_the_form_and_queue_nothing(client, lead, project):
    client.force_login(lead)

    response = client.post(
        PROJECTS,
        {
            "action": "export_projects",
            "_selected_action": [project.pk],
            "apply": "1",
            "format": "judgments",
            "aggregation": "majority",
            "min_agreement": "0.5",
            "exclude_raters": "ghost@example.com",
        },
    )

    assert response.status_code == 200
    assert b"applies only to the pairwise formats" in response.content
    assert not ExportJob.objects.exists()


def test_a_lead_cannot_export_another_leads_project(client, lead):
    other = ProjectFactory(slug="not-mine")
    client.force_login(lead)

    client.post(
        PROJECTS,
        {
            "action": "export_projects",
            "_selected_action": [other.pk],
            "apply": "1",
            "format": "trl",
        },
    )

    assert not ExportJob.objects.exists()


def _jobs(project, n, status=JobStatus.SUCCEEDED):
    for _ in range(n):
        ExportJob.objects.create(
            project=project,
            format="trl",
            status=status,
            progress=1.0 if status == JobStatus.SUCCEEDED else 0.4,
            row_count=5,
            manifest={"counts": {"rows_written": 5, "judgments": 9, "rows_dropped": {"tie": 1}}},
        )


def test_the_job_list_shows_status_counts_and_links(client, lead, project):
    _jobs(project, 1)
    _jobs(project, 1, JobStatus.RUNNING)
    client.force_login(lead)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    done, running = ExportJob.objects.order_by("pk")
    body = response.content.decode()
    assert reverse("export_download", args=[done.pk]) in body
    assert reverse("export_manifest", args=[done.pk]) in body
    assert "5 rows from 9 judgments; dropped tie 1" in body
    assert f'hx-get="{reverse("export_progress", args=[running.pk])}"' in body
    assert f'hx-get="{reverse("export_progress", args=[done.pk])}"' not in body
    assert "django_htmx/htmx-2.min.js" in body


def test_the_polled_cell_shows_the_rows_once_the_job_has_ended(client, lead, project):
    # Regression: the list showed "Rows —" beside Succeeded until a reload, because the rows
    # were a column of their own that the polled status cell never refreshed.
    job = ExportJob.objects.create(project=project, format="trl", status=JobStatus.RUNNING)
    client.force_login(lead)
    url = reverse("export_progress", args=[job.pk])
    running = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-get="{url}"' in running and "rows from" not in running
    ExportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED,
        progress=1.0,
        manifest={"counts": {"rows_written": 7, "judgments": 12, "rows_dropped": {}}},
    )
    done = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "7 rows from 12 judgments" in done
    assert "hx-get" not in done  # the job has ended: polling stops
    listing = client.get(CHANGELIST).content.decode()
    assert "Rows" not in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', listing, re.S).__str__()


def test_the_job_list_runs_a_constant_number_of_queries(
    client, lead, project, django_assert_max_num_queries
):
    client.force_login(lead)
    _jobs(project, 2)
    # The ceiling of every admin changelist (test_admin_changelists.MAX_QUERIES).
    with django_assert_max_num_queries(10) as few:
        assert client.get(CHANGELIST).status_code == 200
    _jobs(project, 20)
    _jobs(ProjectFactory(slug="p2"), 5)
    _jobs(project, 5, JobStatus.RUNNING)
    with django_assert_max_num_queries(10) as many:
        assert client.get(CHANGELIST).status_code == 200

    assert len(many) == len(few)


def test_a_lead_sees_only_jobs_of_projects_they_lead(client, lead, project):
    _jobs(project, 1)
    _jobs(ProjectFactory(slug="hidden"), 1)
    client.force_login(lead)

    response = client.get(CHANGELIST)

    assert len(response.context["cl"].result_list) == 1


def test_the_progress_cell_polls_until_the_job_is_done(client, lead, project):
    _jobs(project, 1, JobStatus.RUNNING)
    job = ExportJob.objects.get()
    url = reverse("export_progress", args=[job.pk])
    client.force_login(lead)

    running = client.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200
    assert b'hx-trigger="every 2s"' in running.content
    assert b'<progress value="0.4"' in running.content

    ExportJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, progress=1)
    done = client.get(url, headers={"HX-Request": "true"})
    assert b"hx-trigger" not in done.content
    assert reverse("export_download", args=[job.pk]).encode() in done.content

    # Not a page of its own: a plain request goes to the job's admin page.
    assert client.get(url).status_code == 302


def test_the_progress_cell_is_hidden_from_other_users(client, alice, project):
    _jobs(project, 1, JobStatus.RUNNING)
    client.force_login(alice)

    response = client.get(
        reverse("export_progress", args=[ExportJob.objects.get().pk]),
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 404
