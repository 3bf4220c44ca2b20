"""/metrics: Prometheus text, restricted to METRICS_TOKEN or METRICS_ALLOWED_NETWORKS."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from comparisons.models import ExportJob, JobStatus, ProjectStatus
from tests.factories import ComparisonFactory, JudgmentFactory, ProjectFactory


def _scrape(client: Client | None = None, **extra) -> dict:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


@pytest.fixture
def outsider(settings):
    """/metrics from an address outside the allowed networks."""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    return Client(REMOTE_ADDR="192.0.2.7")


@pytest.mark.django_db
def test_an_outside_address_without_the_token_gets_a_404(outsider, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert outsider.get("/metrics").status_code == 404
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


@pytest.mark.django_db
def test_the_token_opens_it_from_anywhere(outsider, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert _scrape(outsider, HTTP_AUTHORIZATION="Bearer s3cret-token")


@pytest.mark.django_db
def test_no_token_set_means_no_token_opens_it(outsider, settings):
    settings.METRICS_TOKEN = ""
    assert outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_an_allowed_network_needs_no_token(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    assert _scrape(Client(REMOTE_ADDR="192.0.2.7"))


@pytest.mark.django_db
def test_it_counts_judgments_open_comparisons_and_exports(project, alice, bob):
    archived = ProjectFactory(slug="old", status=ProjectStatus.ARCHIVED)
    ComparisonFactory(project=archived)
    judged = ComparisonFactory(project=project)
    ComparisonFactory.create_batch(2, project=project)
    JudgmentFactory(assignment__comparison=judged, assignment__rater=alice)
    JudgmentFactory(assignment__comparison=judged, assignment__rater=bob)
    now = timezone.now()
    ExportJob.objects.create(
        project=project, format="trl", status=JobStatus.SUCCEEDED,
        started_at=now - timedelta(seconds=3), finished_at=now,
    )  # fmt: skip
    ExportJob.objects.create(project=project, format="trl", status=JobStatus.FAILED)
    ExportJob.objects.create(project=project, format="judgments", status=JobStatus.QUEUED)

    m = _scrape()

    assert m[("raterhub_judgments_total", (("project", project.slug),))] == 2
    # Overlap 3: the judged one still has a slot, and so have the other two.
    assert m[("raterhub_open_comparisons", (("project", project.slug),))] == 3
    assert ("raterhub_open_comparisons", (("project", "old"),)) not in m
    assert m[("raterhub_export_jobs", (("status", "failed"),))] == 1
    assert m[("raterhub_export_jobs", (("status", "queued"),))] == 1
    assert m[("raterhub_export_failures_total", (("format", "trl"),))] == 1
    assert m[("raterhub_export_duration_seconds_count", (("format", "trl"),))] == 1
    assert m[("raterhub_export_duration_seconds_bucket", (("format", "trl"), ("le", "1.0")))] == 0
    assert m[("raterhub_export_duration_seconds_bucket", (("format", "trl"), ("le", "5.0")))] == 1
    assert m[("raterhub_celery_queue_depth", (("queue", "celery"),))] >= 0


@pytest.mark.django_db
def test_request_latency_is_a_histogram_by_route(alice_client):
    before = _scrape().get(
        ("raterhub_http_request_duration_seconds_count",
         (("method", "GET"), ("route", "rate_index"), ("status", "2xx"))), 0,
    )  # fmt: skip
    alice_client.get("/rate/?list=1")

    after = _scrape()[
        ("raterhub_http_request_duration_seconds_count",
         (("method", "GET"), ("route", "rate_index"), ("status", "2xx")))
    ]  # fmt: skip
    assert after == before + 1


@pytest.mark.django_db
def test_the_scrape_costs_the_same_queries_whatever_the_data(
    project, alice, bob, django_assert_max_num_queries
):
    for _ in range(5):
        JudgmentFactory(
            assignment__comparison=ComparisonFactory(project=project), assignment__rater=alice
        )
    ProjectFactory.create_batch(5)
    with django_assert_max_num_queries(5):
        Client().get("/metrics")
