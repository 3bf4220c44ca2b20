"""Ranking projects in the queue: balanced display orders and submit_ranking."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from comparisons import queue
from comparisons.models import AssignmentStatus, Judgment, TaskType
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def ranking_project(k: int = 4, *, overlap: int = 3, raters: int = 3, **fields):
    project = ProjectFactory(task_type=TaskType.RANKING, overlap=overlap, **fields)
    users = [UserFactory() for _ in range(raters)]
    project.raters.add(*users)
    return project, users


def ranked_comparison(project, k: int = 4, **fields):
    return ComparisonFactory(
        project=project,
        responses=[(f"model-{chr(97 + i)}", f"Answer {chr(97 + i)}") for i in range(k)],
        **fields,
    )


@pytest.mark.parametrize("overlap", [3, 4])
def test_each_response_takes_each_position_about_equally_often(overlap):
    project, raters = ranking_project(overlap=overlap, raters=overlap)
    comparisons = [ranked_comparison(project) for _ in range(4)]
    leases = []
    for rater in raters:
        for _ in comparisons:
            lease = queue.next_assignment(rater, project)
            leases.append(lease)
            queue.submit_ranking(lease, ranking=[["a"], ["b"], ["c"], ["d"]])
    assert queue.next_assignment(raters[0], project) is None
    for comparison in comparisons:
        orders = [lease.shown_order for lease in leases if lease.comparison_id == comparison.pk]
        assert len(orders) == overlap
        for order in orders:
            assert sorted(order) == ["a", "b", "c", "d"]
        for position in range(4):
            # With 3 or 4 raters and 4 responses no response is shown twice in one place.
            assert max(Counter(o[position] for o in orders).values()) == 1
        if overlap == 4:
            firsts = {o[0] for o in orders}
            assert firsts == {"a", "b", "c", "d"}
    # swapped keeps its pairwise meaning: b was shown before a.
    for lease in leases:
        assert lease.swapped == (lease.shown_order.index("b") < lease.shown_order.index("a"))


def test_pairwise_leases_have_no_shown_order(project, alice):
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    assert lease.shown_order is None
    assert lease.display_order == ["a", "b"]


def test_submit_ranking_stores_canonical_tiers_and_the_a_b_verdict():
    project, (alice, *_) = ranking_project()
    comparison = ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    judgment = queue.submit_ranking(
        lease,
        ranking=[["c"], ["b", "a"], ["d"]],
        rationale="c is the only correct one",
        flags=["unsafe"],
        duration_ms=5100,
        rater=alice,
    )
    judgment.refresh_from_db()
    assert judgment.ranking == [["c"], ["a", "b"], ["d"]]
    assert judgment.choice == "tie"  # a and b share a tier
    assert (judgment.rationale, judgment.flags, judgment.duration_ms) == (
        "c is the only correct one",
        ["unsafe"],
        5100,
    )
    assert judgment.counted and not judgment.is_late
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SUBMITTED
    comparison.refresh_from_db()
    assert (comparison.judged_count, comparison.open_slots) == (1, 2)


def test_submit_ranking_is_idempotent():
    project, (alice, *_) = ranking_project()
    comparison = ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    first = queue.submit_ranking(lease, ranking=[["b"], ["a"], ["c"], ["d"]])
    second = queue.submit_ranking(lease, ranking=[["d"], ["c"], ["b"], ["a"]])
    assert second.pk == first.pk
    assert second.ranking == [["b"], ["a"], ["c"], ["d"]]
    assert second.choice == "b"
    assert Judgment.objects.count() == 1
    comparison.refresh_from_db()
    assert comparison.judged_count == 1


def _ranking_errors(lease, **answer):
    with pytest.raises(ValidationError) as err:
        queue.submit_ranking(lease, **answer)
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE
    return err.value.message_dict


@pytest.mark.parametrize(
    ("scheme", "answer", "field", "message"),
    [
        ({}, {"ranking": [["a"], ["b"], ["c"]]}, "ranking", "d not ranked"),
        ({}, {"ranking": [["a", "b"], ["c"], ["d"], ["b"]]}, "ranking", "ranked twice"),
        ({}, {"ranking": [["a"], ["b"], ["c"], ["d"], ["e"]]}, "ranking", "'e' names no"),
        ({}, {"ranking": []}, "ranking", "Rank every response"),
        ({}, {"ranking": None}, "ranking", "Rank every response"),
        ({"allow_tie": False}, {"ranking": [["a", "b"], ["c"], ["d"]]}, "ranking", "ties"),
        (
            {"rationale": "required"},
            {"ranking": [["a"], ["b"], ["c"], ["d"]]},
            "rationale",
            "asks for a rationale",
        ),
        ({}, {"ranking": [["a"], ["b"], ["c"], ["d"]], "flags": ["odd"]}, "flags", "Unknown"),
        (
            {},
            {"ranking": [["a"], ["b"], ["c"], ["d"]], "duration_ms": -5},
            "duration_ms",
            "milliseconds",
        ),
    ],
)
def test_submit_ranking_refuses_bad_answers_and_records_nothing(scheme, answer, field, message):
    project, (alice, *_) = ranking_project(**scheme)
    ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    errors = _ranking_errors(lease, **answer)
    assert message in " ".join(errors[field])


def test_submit_ranking_refuses_another_raters_lease():
    project, (alice, bob, _) = ranking_project()
    ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    with pytest.raises(PermissionDenied):
        queue.submit_ranking(lease, ranking=[["a"], ["b"], ["c"], ["d"]], rater=bob)
    assert not Judgment.objects.exists()


def test_a_choice_is_refused_in_a_ranking_project_and_a_ranking_in_a_pairwise_one(project, alice):
    ranking_p, (rater, *_) = ranking_project()
    ranked_comparison(ranking_p)
    lease = queue.next_assignment(rater, ranking_p)
    with pytest.raises(ValidationError) as err:
        queue.submit_judgment(lease, choice="a")
    assert "ranking project" in err.value.message_dict[NON_FIELD_ERRORS][0]

    ComparisonFactory(project=project)
    pairwise_lease = queue.next_assignment(alice, project)
    with pytest.raises(ValidationError) as err:
        queue.submit_ranking(pairwise_lease, ranking=[["a"], ["b"]])
    assert "pairwise project" in err.value.message_dict[NON_FIELD_ERRORS][0]
    assert not Judgment.objects.exists()


def test_a_skipped_ranking_lease_records_nothing():
    project, (alice, *_) = ranking_project()
    ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    queue.skip_assignment(lease)
    with pytest.raises(ValidationError):
        queue.submit_ranking(lease, ranking=[["a"], ["b"], ["c"], ["d"]])
    assert not Judgment.objects.exists()


def test_the_database_refuses_a_ranking_with_a_both_bad_choice():
    project, (alice, *_) = ranking_project()
    ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    judgment = queue.submit_ranking(lease, ranking=[["a"], ["b"], ["c"], ["d"]])
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.filter(pk=judgment.pk).update(choice="both_bad")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.filter(pk=judgment.pk).update(ranking={"a": 1})


@pytest.mark.django_db(transaction=True)
def test_racing_submit_rankings_of_one_lease_record_one_judgment():
    from tests.comparisons.test_queue_concurrency import _race

    project, (alice, *_) = ranking_project()
    comparison = ranked_comparison(project)
    lease = queue.next_assignment(alice, project)
    answer = [["d"], ["c", "b"], ["a"]]
    results, errors = _race(8, lambda: queue.submit_ranking(lease, ranking=answer).pk)
    assert errors == []
    assert len(set(results)) == 1
    assert Judgment.objects.get().ranking == [["d"], ["b", "c"], ["a"]]
    comparison.refresh_from_db()
    assert comparison.judged_count == 1


@pytest.mark.django_db(transaction=True)
def test_raters_racing_for_one_comparison_get_distinct_rows_of_the_square():
    from tests.comparisons.test_queue_concurrency import _race

    project, raters = ranking_project(overlap=4, raters=6)
    comparison = ranked_comparison(project)
    pending = list(raters)
    lock = threading.Lock()

    def take():
        with lock:
            rater = pending.pop()
        lease = queue.next_assignment(rater, project)
        return None if lease is None else tuple(lease.shown_order)

    results, errors = _race(6, take)
    assert errors == []
    orders = [r for r in results if r is not None]
    assert len(orders) == 4  # the overlap: two raters find nothing
    for position in range(4):
        assert len({o[position] for o in orders}) == 4
    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.lease_count) == (0, 4)


def test_a_ranking_project_keeps_the_fixed_overlap_policy(db):
    from django.core.exceptions import ValidationError

    from comparisons import queue
    from comparisons.models import OverlapPolicy
    from tests.factories import ProjectFactory

    project = ProjectFactory(task_type="ranking")
    with pytest.raises(ValidationError, match="fixed overlap policy"):
        queue.set_overlap_policy(project, overlap_policy=OverlapPolicy.ADAPTIVE)
    project.refresh_from_db()
    assert project.overlap_policy == OverlapPolicy.FIXED
    project.overlap_policy = OverlapPolicy.ADAPTIVE
    with pytest.raises(ValidationError, match="fixed overlap policy"):
        project.full_clean()
