"""The adaptive overlap policy in the queue, the policy change, and releases (single-threaded;
the concurrency hammer is in test_queue_concurrency)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from comparisons import overlap, queue
from comparisons.metrics import rater_quality
from comparisons.models import AssignmentStatus, Comparison, Project
from tests.comparisons.test_queue import assert_counters_exact, expire
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory, bulk_comparisons

pytestmark = pytest.mark.django_db


@pytest.fixture
def raters(db):
    return [UserFactory(email=f"r{i}@example.com") for i in range(6)]


def adaptive(raters, low=2, high=3, **fields):
    project = ProjectFactory(overlap_policy="adaptive", min_overlap=low, max_overlap=high, **fields)
    project.raters.add(*raters)
    return project


def judge(rater, project, choice):
    lease = queue.next_assignment(rater, project)
    assert lease is not None, f"{rater} got nothing"
    return queue.submit_judgment(lease, choice=choice)


def test_a_new_comparison_opens_min_overlap_slots(raters):
    project = adaptive(raters, 2, 5)
    c = ComparisonFactory(project=project)
    assert c.open_slots == 2


def test_two_agreeing_judgments_close_a_comparison(raters):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    first, second = (queue.next_assignment(r, project) for r in raters[:2])
    assert first.comparison == second.comparison == c
    assert queue.next_assignment(raters[2], project) is None  # min_overlap leased at once
    queue.submit_judgment(first, choice="a")
    assert queue.next_assignment(raters[2], project) is None  # one still out
    queue.submit_judgment(second, choice="a")
    c.refresh_from_db()
    assert (c.judged_count, c.open_slots, c.lead_margin) == (2, 0, 2)
    assert c.completed_at is not None
    assert Comparison.objects.complete().get() == c
    assert queue.next_assignment(raters[2], project) is None
    assert queue.empty_reason(raters[2], project) == queue.EmptyReason.DONE
    assert_counters_exact(project)


@pytest.mark.parametrize("second", ["b", "tie", "both_bad"])
def test_two_disagreeing_judgments_open_exactly_one_more_slot(raters, second):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    judge(raters[0], project, "a")
    judge(raters[1], project, second)
    c.refresh_from_db()
    assert (c.open_slots, c.completed_at) == (1, None)
    third = queue.next_assignment(raters[2], project)
    assert third.comparison == c
    assert queue.next_assignment(raters[3], project) is None  # exactly one
    queue.submit_judgment(third, choice=second)
    c.refresh_from_db()
    # At max_overlap it is complete, decided or not.
    assert (c.judged_count, c.open_slots) == (3, 0) and c.completed_at is not None
    assert queue.next_assignment(raters[3], project) is None
    assert_counters_exact(project)


@pytest.mark.parametrize(
    ("votes", "stops_at"),
    [
        ("aaa", 3),  # 3-0 with 2 left: decided at min
        ("aaba", 4),  # 2-1, then a: 3-1 with 1 left
        ("ababa", 5),  # 2-2 with 1 left: to the max
        ("abbb", 4),  # 1-3 with 1 left
        ("abcdb", 5),  # c = tie, d = both_bad
    ],
)
def test_min_3_max_5_takes_one_more_at_a_time_while_undecided(raters, votes, stops_at):
    names = {"a": "a", "b": "b", "c": "tie", "d": "both_bad"}
    project = adaptive(raters, 3, 5)
    c = ComparisonFactory(project=project)
    leases = [queue.next_assignment(r, project) for r in raters[:3]]
    assert queue.next_assignment(raters[3], project) is None
    for lease, v in zip(leases, votes[:3], strict=False):
        queue.submit_judgment(lease, choice=names[v])
    for i, v in enumerate(votes[3:], start=3):
        c.refresh_from_db()
        assert c.open_slots == 1 and c.completed_at is None
        lease = queue.next_assignment(raters[i], project)
        assert queue.next_assignment(raters[5], project) is None  # one at a time
        queue.submit_judgment(lease, choice=names[v])
    c.refresh_from_db()
    assert c.judged_count == stops_at and c.completed_at is not None and c.open_slots == 0
    assert_counters_exact(project)


def test_no_comparison_ever_gets_a_lease_it_could_not_use(raters):
    """Every lease handed out is one a judgment could change the outcome with: at lease time
    the comparison is incomplete and its leases plus judgments stay within the rule's target."""
    project = adaptive(raters, 2, 4)
    bulk_comparisons(project, 6)
    choices = ["a", "b", "a", "tie", "a", "b", "b", "a"]
    turn = 0
    for _ in range(40):
        progressed = False
        for rater in raters:
            lease = queue.next_assignment(rater, project)
            if lease is None:
                continue
            progressed = True
            c = Comparison.objects.annotate(
                active=Count("assignments", filter=Q(assignments__status="active"))
            ).get(pk=lease.comparison_id)
            assert c.completed_at is None
            target = overlap.target(c.judged_count, c.lead_margin, minimum=2, maximum=4)
            assert c.active + c.judged_count <= target <= 4
            queue.submit_judgment(lease, choice=choices[turn % len(choices)])
            turn += 1
        if not progressed:
            break
    assert not Comparison.objects.filter(project=project, completed_at__isnull=True).exists()
    assert_counters_exact(project)


def test_skips_and_expiries_give_the_slot_back(raters):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    skipped = queue.next_assignment(raters[0], project)
    queue.skip_assignment(skipped)
    abandoned = queue.next_assignment(raters[1], project)
    expire(abandoned)
    assert queue.reclaim_expired(project=project) == 1
    c.refresh_from_db()
    assert c.open_slots == 2
    judge(raters[2], project, "b")
    judge(raters[3], project, "b")
    # The abandoned lease's late judgment: its slot went to others and the rule is satisfied.
    late = queue.submit_judgment(abandoned, choice="a")
    assert late.is_late and not late.counted
    c.refresh_from_db()
    assert (c.judged_count, c.lead_margin, c.open_slots) == (2, 2, 0)
    assert_counters_exact(project)


def test_a_late_judgment_counts_when_its_slot_is_still_free_and_can_complete(raters):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    judge(raters[0], project, "a")
    lease = queue.next_assignment(raters[1], project)
    expire(lease)
    queue.reclaim_expired(project=project)
    judgment = queue.submit_judgment(lease, choice="a")
    assert judgment.counted and not judgment.is_late
    c.refresh_from_db()
    assert c.completed_at is not None and c.open_slots == 0
    assert_counters_exact(project)


def test_gold_keeps_its_meaning_under_the_adaptive_policy(raters):
    project = adaptive(raters, gold_rate=1.0)
    gold = ComparisonFactory(project=project, gold_choice="a", open_slots=0)
    for rater in raters[:4]:
        judge(rater, project, "a")
    gold.refresh_from_db()
    assert gold.judged_count == 4 and gold.completed_at is None
    assert not Comparison.objects.complete().exists()


def test_query_counts_are_the_fixed_policys(raters, django_assert_max_num_queries):
    counts = {}
    for policy in ("fixed", "adaptive"):
        project = adaptive(raters, slug=f"q-{policy}")
        Project.objects.filter(pk=project.pk).update(overlap_policy=policy)
        for total in (10, 500):
            bulk_comparisons(project, total - project.comparisons.count())
            for rater in raters[:2]:
                judge(rater, project, "a")
            with django_assert_max_num_queries(12) as ctx_next:
                lease = queue.next_assignment(raters[2], project)
            with django_assert_max_num_queries(7) as ctx_submit:
                queue.submit_judgment(lease, choice="b")
            counts[policy, total] = (len(ctx_next), len(ctx_submit))
    assert counts["adaptive", 10] == counts["adaptive", 500] == counts["fixed", 500], counts


# --- the policy change -------------------------------------------------------------------


def _counters(c):
    c.refresh_from_db()
    return c.judged_count, c.open_slots, c.completed_at is not None


def _first(project, **fields):
    """Put one comparison at the top of the pick order."""
    return Comparison.objects.filter(project=project, **fields).update(priority=100)


def test_switching_a_running_project_to_adaptive_recomputes_every_comparison(project):
    alice, bob, charlie = project.raters.order_by("email")
    agreed, split, half, untouched = (ComparisonFactory(project=project) for _ in range(4))
    for rater, comparison, choice in [
        (alice, agreed, "a"),
        (bob, agreed, "a"),
        (alice, split, "a"),
        (bob, split, "b"),
        (charlie, half, "b"),
    ]:
        Comparison.objects.update(priority=0)
        _first(project, pk=comparison.pk)
        lease = queue.next_assignment(rater, project)
        assert lease.comparison == comparison
        queue.submit_judgment(lease, choice=choice)
    Comparison.objects.update(priority=0)
    _first(project, pk=split.pk)
    held = queue.next_assignment(charlie, project)  # a lease in hand through the change
    assert held.comparison == split
    queue.set_overlap_policy(project, overlap_policy="adaptive", min_overlap=2, max_overlap=3)
    assert project.overlap_policy == "adaptive"
    assert _counters(agreed) == (2, 0, True)
    assert _counters(split) == (2, 0, False)  # its one more slot is charlie's lease
    assert _counters(half) == (1, 1, False)
    assert _counters(untouched) == (0, 2, False)
    assert_counters_exact(project)
    # And back: fixed overlap 3 reopens the agreed one.
    queue.set_overlap_policy(project, overlap_policy="fixed", overlap=3)
    assert _counters(agreed) == (2, 1, False)
    assert _counters(untouched) == (0, 3, False)
    assert_counters_exact(project)
    # charlie's lease, in hand through both changes, still counts and completes `split`.
    queue.submit_judgment(held, choice="a")
    assert _counters(split) == (3, 0, True)
    assert_counters_exact(project)


def test_raising_max_overlap_reopens_undecided_complete_comparisons(raters):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    for rater, choice in zip(raters, "abt", strict=False):
        judge(rater, project, {"t": "tie"}.get(choice, choice))
    assert _counters(c) == (3, 0, True)  # at max, undecided
    queue.set_overlap_policy(project, max_overlap=5)
    assert _counters(c) == (3, 1, False)
    queue.set_overlap_policy(project, max_overlap=3)
    assert _counters(c) == (3, 0, True)
    assert_counters_exact(project)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_overlap": 0}, "min_overlap"),
        ({"min_overlap": 4, "max_overlap": 3}, "max_overlap"),
        ({"overlap": 0}, "overlap"),
        ({"overlap_policy": "sometimes"}, "overlap_policy"),
    ],
)
def test_a_bad_policy_change_is_refused_and_changes_nothing(raters, change, field):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    with pytest.raises(ValidationError) as err:
        queue.set_overlap_policy(project, **change)
    assert field in err.value.message_dict
    project.refresh_from_db()
    assert (project.overlap_policy, project.min_overlap, project.max_overlap) == ("adaptive", 2, 3)
    assert _counters(c) == (0, 2, False)


def test_the_model_and_the_database_hold_1_le_min_le_max(raters):
    project = adaptive(raters)
    project.min_overlap, project.max_overlap = 3, 2
    with pytest.raises(ValidationError) as err:
        project.full_clean()
    assert "max_overlap" in err.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(min_overlap=3, max_overlap=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(min_overlap=0)


# --- releases ----------------------------------------------------------------------------


def test_a_released_comparison_comes_back_to_its_rater_in_a_one_rater_project(alice):
    """Regression: a one-rater project said "All done" while a released comparison stayed
    unjudged for good (the release was recorded as the rater's skip)."""
    project = ProjectFactory(overlap=1)
    project.raters.add(alice)
    c = ComparisonFactory(project=project)
    first = queue.next_assignment(alice, project)
    assert queue.release_leases(rater=alice, project=project) == 1
    again = queue.next_assignment(alice, project)
    assert again is not None and again.comparison == c and again.pk != first.pk
    queue.submit_judgment(again, choice="a")
    c.refresh_from_db()
    assert c.completed_at is not None
    first.refresh_from_db()
    assert first.status == AssignmentStatus.RELEASED
    with pytest.raises(ValidationError, match="released"):
        queue.submit_judgment(first, choice="b")
    assert_counters_exact(project)


def test_the_rating_page_offers_a_released_comparison_again(client, alice):
    project = ProjectFactory(overlap=1, slug="solo")
    project.raters.add(alice)
    ComparisonFactory(project=project, prompt=[{"role": "user", "content": "Unjudged prompt"}])
    client.force_login(alice)
    assert "Unjudged prompt" in client.get("/rate/solo/").content.decode()
    queue.release_leases(rater=alice, project=project)
    # The project list still counts it as work left (one active project: straight to it).
    assert client.get("/rate/")["Location"] == "/rate/solo/"
    page = client.get("/rate/solo/").content.decode()
    assert "Unjudged prompt" in page


def test_keeping_a_rater_away_is_its_own_action(raters):
    project = adaptive(raters)
    c = ComparisonFactory(project=project)
    kept = queue.next_assignment(raters[0], project)
    assert queue.release_leases(rater=raters[0], project=project, keep_away=True) == 1
    kept.refresh_from_db()
    assert kept.status == AssignmentStatus.KEPT_AWAY
    assert queue.next_assignment(raters[0], project) is None
    assert queue.next_assignment(raters[1], project).comparison == c
    assert_counters_exact(project)


def test_releases_are_not_the_raters_skips_on_the_dashboard(raters):
    project = adaptive(raters)
    for _ in range(3):
        ComparisonFactory(project=project)
    judge(raters[0], project, "a")
    queue.next_assignment(raters[0], project)
    queue.release_leases(rater=raters[0], project=project)
    queue.next_assignment(raters[0], project)
    queue.release_leases(rater=raters[0], project=project, keep_away=True)
    row = next(r for r in rater_quality(project) if r["id"] == raters[0].pk)
    assert row["skipped"] == 0
    queue.skip_assignment(queue.next_assignment(raters[0], project))
    row = next(r for r in rater_quality(project) if r["id"] == raters[0].pk)
    assert row["skipped"] == 1
