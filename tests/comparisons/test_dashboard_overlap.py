"""Judgments per comparison and the judgments the adaptive policy saved, in the metrics and on
the dashboard (read from the snapshot: the page's query count does not move)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from comparisons import metrics, queue
from comparisons.models import Comparison
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory, bulk_comparisons

pytestmark = pytest.mark.django_db


@pytest.fixture
def adaptive(lead):
    project = ProjectFactory(
        slug="adaptive-dash", overlap_policy="adaptive", min_overlap=2, max_overlap=3
    )
    project.leads.add(lead)
    raters = [UserFactory(email=f"d{i}@example.com") for i in range(3)]
    project.raters.add(*raters)
    return project, raters


def _judge_through_the_queue(project, raters, plan: dict[str, str]):
    """plan: external id -> choices in order, judged through the real queue."""
    for external_id, choices in plan.items():
        c = ComparisonFactory(project=project, external_id=external_id)
        for rater, choice in zip(raters, choices, strict=False):
            Comparison.objects.filter(project=project).update(priority=0)
            Comparison.objects.filter(pk=c.pk).update(priority=1)
            lease = queue.next_assignment(rater, project)
            assert lease.comparison_id == c.pk
            queue.submit_judgment(lease, choice=choice)


def test_overlap_use_counts_judgments_per_comparison_and_the_savings(adaptive):
    project, raters = adaptive
    _judge_through_the_queue(
        project, raters, {"agreed1": "aa", "agreed2": "bb", "split": "aba", "open": "ab", "new": ""}
    )
    use = metrics.overlap_use(project)
    assert use["histogram"] == [
        {"judgments": 0, "comparisons": 1},
        {"judgments": 1, "comparisons": 0},
        {"judgments": 2, "comparisons": 3},
        {"judgments": 3, "comparisons": 1},
    ]
    # Complete: agreed1, agreed2 (2 each) and split (3): 7 judgments where fixed 3 takes 9.
    assert (use["complete"], use["judgments_on_complete"], use["fixed_equivalent"]) == (3, 7, 9)
    assert use["saved"] == 2 and use["saved_share"] == pytest.approx(2 / 9)
    progress = metrics.project_progress(project)["completion"]
    assert progress["done"] == 3
    # Target: 7 on the complete ones + 3 for "open" (2 in, one more) + 2 for "new".
    assert progress["target_slots"] == 12


def test_the_fixed_policy_saves_nothing(project, alice, bob, charlie):
    bulk_comparisons(project, 4, judged_by=[alice, bob, charlie])
    use = metrics.overlap_use(project)
    assert (use["complete"], use["saved"]) == (4, 0)


def test_the_dashboard_shows_the_histogram_and_the_savings_in_constant_queries(
    client, lead, adaptive, django_assert_max_num_queries
):
    project, raters = adaptive
    url = reverse("project_dashboard", args=[project.slug])
    _judge_through_the_queue(project, raters, {"agreed": "aa", "split": "abb"})
    metrics.compute_snapshot(project)
    client.force_login(lead)
    with django_assert_max_num_queries(6) as small:
        html = client.get(url).content.decode()
    assert "Judgments per comparison" in html
    assert "fixed overlap 3 would have taken 6" in html
    assert "1 saved" in html
    assert "adaptive overlap 2 to 3" in html
    assert 'aria-label="Comparisons by number of counted judgments"' in html
    bulk_comparisons(project, 200, judged_by=raters[:2])
    metrics.compute_snapshot(project)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = client.get(url).content.decode()
    use = metrics.overlap_use(project)
    assert use["complete"] > 2
    assert f"fixed overlap 3 would have taken {use['fixed_equivalent']}:" in html
