"""The lead dashboard: who may see it, what it shows, and that its cost does not grow."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from comparisons import charts, metrics
from comparisons.dashboard import MAX_POLLS, computed_ago, sort_raters
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
    assert response.url == f"{reverse('project_dashboard', args=[project.slug])}?after=0"
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
    assert table.index("alice<wbr>@example.com") < table.index("bob<wbr>@example.com")
    html = client.get(url + "?sort=judgments").content.decode()
    table = html[html.index('class="dash-table raters"') :]
    assert table.index("bob<wbr>@example.com") < table.index("alice<wbr>@example.com")
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


# -- Issue 16: the dashboard as a new lead meets it -------------------------------------------


@pytest.fixture(autouse=False)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_first_visit_with_judgments_computes_in_the_background_and_polls(
    client, project, lead, alice, url, fresh_cache, django_capture_on_commit_callbacks
):
    bulk_comparisons(project, 3, judged_by=[alice])
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.get(url)
    html = response.content.decode()
    assert "No metrics yet" not in html
    assert "Computing the metrics" in html
    status = reverse("project_dashboard_status", args=[project.slug])
    assert f'hx-get="{status}?after=0&amp;polls=1"' in html
    assert len(callbacks) == 1  # one recompute queued, after commit
    # A reload while it computes queues no second task.
    with django_capture_on_commit_callbacks(execute=False) as again:
        client.get(url)
    assert again == []

    # The poll answers the same panel until the snapshot exists, then sends the browser back.
    htmx = {"HTTP_HX_REQUEST": "true"}
    polled = client.get(status, {"after": 0, "polls": 1}, **htmx)
    assert polled.status_code == 200
    assert 'id="dash-pending"' in polled.content.decode()
    assert "<html" not in polled.content.decode()  # the panel alone
    callbacks[0]()  # the worker runs the task
    done = client.get(status, {"after": 0, "polls": 2}, **htmx)
    assert done.status_code == 200 and done["HX-Redirect"] == url
    page = client.get(url).content.decode()
    assert "Computing the metrics" not in page and "Krippendorff" in page


def test_polling_gives_up_with_a_message(client, project, lead, alice, fresh_cache):
    bulk_comparisons(project, 1, judged_by=[alice])
    client.force_login(lead)
    status = reverse("project_dashboard_status", args=[project.slug])
    html = client.get(
        status, {"after": 0, "polls": MAX_POLLS}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "not ready yet" in html
    assert "hx-get" not in html  # no more polling


def test_the_status_panel_is_not_a_page(client, project, lead, alice, url):
    client.force_login(lead)
    status = reverse("project_dashboard_status", args=[project.slug])
    response = client.get(status)
    assert response.status_code == 302 and response.url == url
    client.force_login(alice)
    assert client.get(status, HTTP_HX_REQUEST="true").status_code == 404


def test_after_a_recompute_the_page_waits_for_the_newer_snapshot(client, project, lead, alice, url):
    bulk_comparisons(project, 2, judged_by=[alice])
    old = metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get(url, {"after": old.pk}).content.decode()
    assert "A newer snapshot is on its way" in html and "Krippendorff" in html
    newer = metrics.compute_snapshot(project)
    assert "Computing" not in client.get(url, {"after": old.pk}).content.decode()
    assert newer.pk > old.pk


def test_computed_ago_reads_naturally(client, project, lead, alice, url):
    now = timezone.now()
    assert computed_ago(now - timedelta(seconds=5), now) == "just now"
    assert computed_ago(now - timedelta(minutes=5, seconds=3), now) == "5\xa0minutes ago"
    assert computed_ago(now - timedelta(hours=2, minutes=7), now) == "2\xa0hours ago"
    bulk_comparisons(project, 1, judged_by=[alice])
    metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get(url).content.decode()
    assert "computed <time" in html and "just now</time>" in html
    assert "0\xa0minutes" not in html and "0 minutes" not in html


def _bars(svg: str) -> list[tuple[float, float]]:
    """(top, height) of each daily bar in a progress chart."""
    return [
        (float(y), float(h))
        for y, h in re.findall(
            r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg
        )
    ]


def test_progress_bars_use_the_labelled_axis():
    # 32 judgments on a 0-800 axis: the bar's top sits where the axis reads 32, not at ~260.
    svg = str(charts.progress_chart(["2026-11-30", "2026-12-01"], [0, 32], [0, 32], 800))
    ticks = {
        int(v): float(y)
        for y, v in re.findall(
            r'y="([\d.]+)" text-anchor="end" dominant-baseline="middle" font-size="11" fill="[^"]+">(\d+)<',
            svg,
        )
    }
    assert ticks[0] > ticks[800]
    per_unit = (ticks[0] - ticks[800]) / 800
    (_, first), (top, height) = _bars(svg)
    assert first == 0
    assert height == pytest.approx(32 * per_unit, abs=0.2)
    assert top == pytest.approx(ticks[0] - 32 * per_unit, abs=0.2)
    assert ">32</text>" in svg  # the count is printed on the bar


def test_leaderboard_and_rater_headings_align_with_their_values(client, project, lead, alice, url):
    bulk_comparisons(project, 4, judged_by=[alice], models=("m1", "m2"))
    metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get(url).content.decode()
    board = html[html.index('class="dash-table compact leaderboard"') :]
    board = board[: board.index("</table>")]
    heads = re.findall(r"<th( class=\"num\")?>([^<]+)</th>", board)
    first_row = board[board.index("<tbody>") :].split("</tr>")[0]
    cells = re.findall(r"<td( class=\"(?:num|who)\")?>", first_row)
    assert [label for _, label in heads] == [
        "#",
        "Model",
        "Rating",
        "95% interval",
        "Wins",
        "Ties",
        "Losses",
        "Win rate",
    ]
    assert len(cells) == len(heads)
    for (head_class, label), cell_class in zip(heads, cells, strict=True):
        # A right-aligned number under a left-aligned heading reads as the next column's.
        assert (head_class == ' class="num"') == (cell_class == ' class="num"'), label
    raters = html[html.index('class="dash-table raters"') :]
    raters = raters[: raters.index("</table>")]
    head_num = re.findall(r'<th scope="col"( class="num")?>', raters)
    row = raters[raters.index("<tbody>") :].split("</tr>")[0]
    cell_num = [" num" in c or c.endswith("num") for c in re.findall(r'<td class="([^"]*)"', row)]
    cell_num += [False] * (len(head_num) - len(cell_num))  # the flags cell has no class
    assert [bool(h) for h in head_num] == cell_num


def test_head_to_head_labels_fit_inside_the_svg():
    names = ["a-very-long-model-name-v2", "b-model", "c-another-long-name-x"]
    rates = [[None, 0.6, 0.5], [0.4, None, 0.5], [0.5, 0.5, None]]
    counts = [[0, 5, 5], [5, 0, 5], [5, 5, 0]]
    svg = str(charts.win_rate_heatmap(names, rates, counts))
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    for x, y, text in re.findall(r"translate\(([\d.]+),(\d+)\) rotate\(-40\)[^>]*>([^<]+)<", svg):
        extent = len(text) * 7
        assert float(x) + extent * 0.766 <= width  # the label's far end is inside, not cut
        assert float(y) - extent * 0.643 >= 0


def test_throughput_cells_print_their_counts():
    svg = str(charts.throughput_heatmap([("alice@example.com", [0, 3, 12])], ["d1", "d2", "d3"]))
    texts = re.findall(r'aria-hidden="true">([^<]+)</text>', svg)
    assert texts == ["3", "12"]  # visible without hover; empty days stay blank


def test_pending_page_and_status_poll_cost_the_same_at_any_size(
    client, project, lead, alice, bob, url, fresh_cache, django_assert_max_num_queries
):
    client.force_login(lead)
    status = reverse("project_dashboard_status", args=[project.slug])
    bulk_comparisons(project, 2, judged_by=[alice])
    with django_assert_max_num_queries(8) as page:
        assert "Computing" in client.get(url).content.decode()
    with django_assert_max_num_queries(6) as poll:
        client.get(status, {"after": 0, "polls": 1}, HTTP_HX_REQUEST="true")
    bulk_comparisons(project, 200, judged_by=[alice, bob])
    cache.delete(f"dashboard:first-snapshot:{project.pk}")  # as if the first task had run
    with django_assert_max_num_queries(len(page.captured_queries)):
        assert "Computing" in client.get(url).content.decode()
    with django_assert_max_num_queries(len(poll.captured_queries)):
        client.get(status, {"after": 0, "polls": 1}, HTTP_HX_REQUEST="true")


def test_recompute_with_a_task_that_runs_at_once_does_not_wait_for_another(
    client, project, lead, alice, url
):
    # Not in a transaction the test holds open: the eager task runs as it is sent, so the
    # redirect must name the snapshot shown before it, or the page would poll for a third.
    bulk_comparisons(project, 2, judged_by=[alice])
    old = metrics.compute_snapshot(project)
    client.force_login(lead)
    with mock.patch("comparisons.dashboard.send_on_commit", lambda task, *a: task.apply(a)):
        response = client.post(reverse("project_dashboard_recompute", args=[project.slug]))
    assert response.url == f"{url}?after={old.pk}"
    assert metrics.latest_snapshot(project).pk > old.pk
    assert "Computing" not in client.get(response.url).content.decode()
