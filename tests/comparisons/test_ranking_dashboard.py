"""The dashboard of a ranking project shows the ranking metrics of its snapshot."""

from __future__ import annotations

import pytest

from comparisons import metrics, queue
from comparisons.models import TaskType
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _rank_all(project, raters, order):
    for rater in raters:
        while (lease := queue.next_assignment(rater, project)) is not None:
            queue.submit_ranking(lease, ranking=order)


def test_it_shows_ranking_agreement_and_position_bias(client, lead, django_assert_max_num_queries):
    project = ProjectFactory(slug="ranked-dash", task_type=TaskType.RANKING)
    project.leads.add(lead)
    raters = [UserFactory() for _ in range(3)]
    project.raters.add(*raters)
    for _ in range(2):
        ComparisonFactory(project=project, responses=[(f"m-{k}", k) for k in "abcd"])
    _rank_all(project, raters, [["a"], ["b"], ["c"], ["d"]])
    metrics.compute_snapshot(project)
    client.force_login(lead)
    with django_assert_max_num_queries(6) as few:
        html = client.get("/dashboard/ranked-dash/").content.decode()
    assert "Ranking agreement" in html
    assert "<td>1.000</td>" in html  # everyone ranked alike
    assert "Position bias per display slot" in html
    assert html.count("<tr><td>") >= 4 + 4  # four measures, four slots
    assert "m-a" in html  # the leaderboard from the ranked pairs
    assert "Choice (nominal)" not in html  # a-against-b agreement would mislead here
    assert "(ranks)</span>" in html and "(choice)</span>" not in html

    for _ in range(20):
        ComparisonFactory(project=project, responses=[(f"m-{k}", k) for k in "abcd"])
    _rank_all(project, raters, [["d"], ["c"], ["b"], ["a"]])
    metrics.compute_snapshot(project)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/dashboard/ranked-dash/").status_code == 200


def test_a_pairwise_dashboard_has_no_ranking_section(client, project, lead):
    metrics.compute_snapshot(project)
    client.force_login(lead)
    html = client.get("/dashboard/demo-test/").content.decode()
    assert "Ranking agreement" not in html
    assert "Choice (nominal)" in html
