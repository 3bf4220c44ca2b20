"""The lead dashboard: who may see it, what it shows, and that its cost does not grow."""

from __future__ import annotations

import itertools
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from comparisons import metrics
from comparisons.dashboard import sort_raters
from comparisons.models import (
    MetricsSnapshot,
)
from tests.factories import LeadFactory, ProjectFactory, UserFactory, bulk_comparisons


@pytest.fixture
def url(project):
    return reverse("project_dashboard", args=[project.slug])


def test_it_shows_a_lead_the_metrics(client, project, lead, alice, bob, url):
    bulk_comparisons(project, 6, judged_by=[alice, bob], models=("m1", "m2"))
    metrics.compute_snapshot(project)
    client.force_login(lead)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice@example.com" in html
    assert "Krippendorff" in html
    assert html.count("<svg") >= 5
    assert "m1" in html and "m2" in html


def test_superuser_sees_any_project(client, project, url):
    admin = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("who", ["other_lead", "rater", "non_staff_lead"])
def test_it_refuses_everyone_else(client, project, alice, url, who):
    if who == "other_lead":
        user = LeadFactory(email="other-lead@example.com")
        ProjectFactory(slug="elsewhere").leads.add(user)
    elif who == "rater":
        user = alice
    else:  # listed as a lead but not staff: no dashboards for non-staff accounts
        user = UserFactory(email="not-staff@example.com")
        project.leads.add(user)
    metrics.compute_snapshot(project)
    client.force_login(user)
    assert client.get(url).status_code == 404
    assert (
        client.post(reverse("project_dashboard_recompute", args=[project.slug])).status_code == 404
    )
    assert (
        not MetricsSnapshot.objects.filter(project=project)
        .exclude(pk=metrics.latest_snapshot(project).pk)
        .exists()
    )


def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_it_shows_an_empty_state_before_the_first_snapshot(client, project, lead, url):
    client.force_login(lead)
    response = client.get(url)
    assert response.status_code == 200
    assert "No metrics yet" in response.content.decode()


def test_query_count_does_not_grow_with_judgments(
    client, project, lead, alice, bob, charlie, url, django_assert_max_num_queries
):
    client.force_login(lead)
    bulk_comparisons(project, 5, judged_by=[alice, bob])  # 10 judgments
    metrics.compute_snapshot(project)
    with django_assert_max_num_queries(6) as small:
        assert client.get(url).status_code == 200
    more = [UserFactory(email=f"r{i}@example.com") for i in range(7)]
    bulk_comparisons(project, 100, judged_by=[alice, bob, charlie, *more])  # +1,000 judgments
    metrics.compute_snapshot(project)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url + "?sort=-judgments")
    assert response.status_code == 200
    assert "r6@example.com" in response.content.decode()


def test_recompute_button_queues_a_snapshot_after_commit(
    client, project, lead, alice, django_capture_on_commit_callbacks
):
    bulk_comparisons(project, 3, judged_by=[alice])
    client.force_login(lead)
    recompute = reverse("project_dashboard_recompute", args=[project.slug])
    assert client.get(recompute).status_code == 405
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(recompute)
    assert response.status_code == 302
    assert len(callbacks) == 1
    snapshot = metrics.latest_snapshot(project)
    assert snapshot is not None and snapshot.judgment_count == 3


def test_recompute_needs_a_csrf_token(project, lead):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    response = client.post(reverse("project_dashboard_recompute", args=[project.slug]))
    assert response.status_code == 403
    assert metrics.latest_snapshot(project) is None


def test_model_names_are_escaped_in_the_charts(client, project, lead, alice):
    bulk_comparisons(project, 4, judged_by=[alice], models=("<script>alert(1)</script>", "plain"))
    metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get(reverse("project_dashboard", args=[project.slug])).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_rater_table_sorts_by_links(client, project, lead, alice, bob, url):
    bulk_comparisons(project, 2, judged_by=[alice])
    bulk_comparisons(project, 3, judged_by=[alice, bob])  # alice 5 judgments, bob 3
    metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get(url + "?sort=-judgments").content.decode()
    table = html[html.index('class="dash-table raters"') :]
    assert table.index("alice@example.com") < table.index("bob@example.com")
    html = client.get(url + "?sort=judgments").content.decode()
    table = html[html.index('class="dash-table raters"') :]
    assert table.index("bob@example.com") < table.index("alice@example.com")
    assert 'href="?sort=-judgments"' in html  # clicking again reverses
    rows = [{"email": "x", "judgments": 1}, {"email": "y", "judgments": 3}, {"email": "z"}]
    ordered, _sort = sort_raters(rows, "-judgments")
    assert [r["email"] for r in ordered] == ["y", "x", "z"]  # missing values last
    ordered, _sort = sort_raters(rows, "judgments")
    assert [r["email"] for r in ordered] == ["x", "y", "z"]
    assert sort_raters(rows, "nonsense")[1] == "quality"


def test_flags_show_in_the_table(client, project, lead, alice, url):
    project.min_seconds_per_judgment = 60
    project.save()
    bulk_comparisons(project, 3, judged_by=[alice])
    metrics.compute_snapshot(project)
    client.force_login(lead)
    assert "Too fast" in client.get(url).content.decode()


def test_admin_change_page_links_to_the_dashboard(client, project, lead):
    client.force_login(lead)
    link = reverse("project_dashboard_by_pk", args=[project.pk])
    change = client.get(reverse("admin:comparisons_project_change", args=[project.pk]))
    assert change.status_code == 200
    assert link in change.content.decode()
    response = client.get(link)
    assert response.status_code == 302
    assert response.url == reverse("project_dashboard", args=[project.slug])
    other = ProjectFactory(slug="not-mine")
    assert client.get(reverse("project_dashboard_by_pk", args=[other.pk])).status_code == 404


def test_chart_helpers():
    from comparisons import charts

    ticks = charts.nice_ticks(789, 1231)
    assert ticks[0] <= 789 and ticks[-1] >= 1231
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in {100, 200, 250}
    assert charts.diverging(0.5) == "#f7f7f7"
    assert charts.diverging(1.0) == "#2166ac" and charts.diverging(0.0) == "#d6604d"
    # Empty data renders a placeholder, never an error.
    assert "No data yet" in charts.leaderboard_chart([])
    assert "No data yet" in charts.progress_chart([], [], [], 0)


def test_recompute_with_the_broker_down_still_answers(
    client, project, lead, caplog, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from comparisons.tasks import recompute_metrics

    client.force_login(lead)
    recompute = reverse("project_dashboard_recompute", args=[project.slug])
    with (
        mock.patch.object(
            recompute_metrics, "apply_async", side_effect=OperationalError("refused")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(recompute)

    assert response.status_code == 302
    assert "not sent, the broker is unavailable" in caplog.text
