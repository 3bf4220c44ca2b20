"""/rate/: the rater's projects with their progress."""

from __future__ import annotations

import re

from django.test import Client

from comparisons import queue
from comparisons.models import ProjectStatus
from tests.comparisons._rate_helpers import PAGE_BUDGET
from tests.factories import ComparisonFactory, JudgmentFactory, ProjectFactory, bulk_comparisons


def _row(html: str, name: str) -> str:
    return re.search(rf"<tr>\s*<td>\s*(?:<a [^>]*>)?{name}.*?</tr>", html, re.S).group(0)


def test_it_requires_login(client):
    r = client.get("/rate/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_a_rater_with_one_active_project_goes_straight_to_it(alice_client, project):
    ComparisonFactory(project=project)
    r = alice_client.get("/rate/")
    assert r.status_code == 302 and r["Location"] == "/rate/demo-test/"
    assert alice_client.get("/rate/?list=1").status_code == 200


def test_it_lists_projects_with_progress_and_status(alice_client, alice, bob, project):
    ComparisonFactory.create_batch(3, project=project)
    JudgmentFactory(
        assignment__comparison=ComparisonFactory(project=project), assignment__rater=alice
    )
    JudgmentFactory(
        assignment__comparison=ComparisonFactory(project=project), assignment__rater=bob
    )
    paused = ProjectFactory(slug="paused", name="Paused one", status=ProjectStatus.PAUSED)
    paused.raters.add(alice)
    finished = ProjectFactory(slug="finished", name="Finished one", description="All judged")
    finished.raters.add(alice)
    ProjectFactory(slug="not-mine", name="Not mine")

    assert alice_client.get("/rate/")["Location"] == "/rate/demo-test/"  # the one active project
    html = alice_client.get("/rate/?list=1").content.decode()
    assert "Not mine" not in html
    demo = _row(html, "Demo test")
    # 3 fresh comparisons plus bob's judged one are open to alice; her own is not.
    assert re.findall(r"<td[^>]*>(\d+)</td>", demo) == ["1", "1", "4"]
    assert "status-active" in demo and 'href="/rate/demo-test/"' in demo
    assert "status-paused" in _row(html, "Paused one")
    assert "status-done" in _row(html, "Finished one")
    assert "All judged" in html


def test_a_project_with_a_live_lease_is_still_active(alice_client, alice, project):
    ComparisonFactory(project=project)
    queue.next_assignment(alice, project)
    other = ProjectFactory(slug="other")
    other.raters.add(alice)
    html = alice_client.get("/rate/?list=1").content.decode()
    assert "status-active" in _row(html, "Demo test")


def test_two_active_projects_show_the_list(alice_client, alice, project):
    ComparisonFactory(project=project)
    other = ProjectFactory(slug="other", name="Other one")
    other.raters.add(alice)
    ComparisonFactory(project=other)
    r = alice_client.get("/rate/")
    assert r.status_code == 200
    assert 'href="/rate/demo-test/"' in r.content.decode()
    assert 'href="/rate/other/"' in r.content.decode()


def test_it_runs_a_constant_number_of_queries(
    transactional_db, alice, project, django_assert_max_data_queries
):
    c = Client()
    c.force_login(alice)
    second = ProjectFactory(slug="second")
    second.raters.add(alice)
    bulk_comparisons(project, 10)
    with django_assert_max_data_queries(PAGE_BUDGET) as few:
        c.get("/rate/")
    bulk_comparisons(project, 1000)
    bulk_comparisons(second, 1000)
    third = ProjectFactory(slug="third")
    third.raters.add(alice)
    with django_assert_max_data_queries(PAGE_BUDGET) as many:
        c.get("/rate/")
    assert len(few) == len(many)


def test_the_lists_left_count_stops_at_its_cap(alice_client, alice, project, monkeypatch):
    monkeypatch.setattr(queue, "LEFT_COUNT_CAP", 3)
    ComparisonFactory.create_batch(6, project=project)
    other = ProjectFactory(slug="other", name="Other one")
    other.raters.add(alice)
    ComparisonFactory.create_batch(2, project=other)
    html = alice_client.get("/rate/").content.decode()
    assert '<td data-label="Left">3+</td>' in html  # six open, counted to the cap
    assert '<td data-label="Left">2</td>' in html
