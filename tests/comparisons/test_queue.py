"""comparisons.queue, rule by rule (single-threaded; concurrency lives in test_queue_concurrency)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import Count, F, Q
from django.utils import timezone

from comparisons import overlap, queue
from comparisons.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    Project,
    ProjectStatus,
)
from comparisons.tasks import reclaim_expired_leases
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    JudgmentFactory,
    ProjectFactory,
    UserFactory,
    bulk_comparisons,
)

pytestmark = pytest.mark.django_db


def make_comparisons(project, n, **kwargs):
    return [ComparisonFactory(project=project, **kwargs) for _ in range(n)]


def assert_counters_exact(project):
    """For every comparison: judged_count == counted, and for regular ones lead_margin,
    completed_at and open_slots == target - active - counted by comparisons.overlap's rule."""
    project.refresh_from_db()
    low, high = project.overlap_bounds()
    rows = Comparison.objects.filter(project=project).annotate(
        active=Count("assignments", filter=Q(assignments__status="active"), distinct=True),
        counted=Count("judgments", filter=Q(judgments__counted=True), distinct=True),
    )
    for c in rows:
        assert c.judged_count == c.counted, c
        if not c.is_gold:
            choices = list(c.judgments.filter(counted=True).values_list("choice", flat=True))
            margin = overlap.lead_margin(choices)
            assert c.lead_margin == margin, c
            target = overlap.target(c.counted, margin, minimum=low, maximum=high)
            assert c.open_slots == target - c.active - c.counted, c
            complete = overlap.is_complete(c.counted, margin, minimum=low, maximum=high)
            assert (c.completed_at is not None) == complete, c


def expire(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


# --- next_assignment -----------------------------------------------------------------------


def test_it_leases_a_comparison_and_takes_a_slot(project, alice):
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    assert lease.comparison == c
    assert lease.rater == alice
    assert lease.status == AssignmentStatus.ACTIVE
    assert lease.expires_at == lease.leased_at + timedelta(seconds=project.lease_seconds)
    c.refresh_from_db()
    assert (c.open_slots, c.lease_count, c.judged_count) == (2, 1, 0)
    assert_counters_exact(project)


def test_a_refresh_returns_the_same_lease(project, alice):
    make_comparisons(project, 3)
    first = queue.next_assignment(alice, project)
    assert queue.next_assignment(alice, project) == first
    assert Assignment.objects.count() == 1
    assert_counters_exact(project)


def test_it_never_gives_a_rater_the_same_comparison_twice(project, alice):
    c1, c2 = make_comparisons(project, 2)
    lease = queue.next_assignment(alice, project)
    queue.skip_assignment(lease, "unsure")
    lease2 = queue.next_assignment(alice, project)
    queue.submit_judgment(lease2, choice="a")
    assert {lease.comparison_id, lease2.comparison_id} == {c1.pk, c2.pk}
    # Both still have open slots, but alice has seen both (one skipped).
    assert queue.next_assignment(alice, project) is None
    assert queue.empty_reason(alice, project) == "done"


def test_it_respects_the_overlap(alice, bob, charlie):
    project = ProjectFactory(overlap=2)
    project.raters.add(alice, bob, charlie)
    c1, c2 = make_comparisons(project, 2)
    assert queue.next_assignment(alice, project).comparison == c1
    assert queue.next_assignment(bob, project).comparison == c1
    # Two active leases fill c1's overlap even before anyone submits.
    assert queue.next_assignment(charlie, project).comparison == c2
    assert_counters_exact(project)


def test_it_picks_by_priority_then_started_work_then_age(project, alice, bob):
    old, started, newer, urgent = make_comparisons(project, 4)
    Comparison.objects.filter(pk=urgent.pk).update(priority=5)
    # bob judges "started" so it has a judgment and comes before the older untouched one.
    lease = Assignment.objects.create(
        project=project,
        comparison=started,
        rater=bob,
        leased_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    Comparison.objects.filter(pk=started.pk).update(open_slots=2, lease_count=1)
    queue.submit_judgment(lease, choice="a")

    picked = []
    for _ in range(4):
        a = queue.next_assignment(alice, project)
        picked.append(a.comparison_id)
        queue.submit_judgment(a, choice="b")
    assert picked == [urgent.pk, started.pk, old.pk, newer.pk]


def test_it_returns_none_with_the_reason(project, alice):
    ComparisonFactory(project=project)
    outsider = UserFactory(email="outsider@example.com")
    assert queue.next_assignment(outsider, project) is None
    assert queue.empty_reason(outsider, project) == "not_member"

    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    assert queue.next_assignment(alice, project) is None
    assert queue.empty_reason(alice, project) == "paused"

    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.ARCHIVED)
    assert queue.next_assignment(alice, project) is None
    assert queue.empty_reason(alice, project) == "archived"

    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.ACTIVE)
    assert queue.next_assignment(alice, project) is not None


def test_pausing_stops_new_leases_but_work_in_hand_can_be_finished(project, alice, bob):
    make_comparisons(project, 3)
    lease = queue.next_assignment(alice, project)
    # The caller's instance is stale on purpose: pausing must take effect at once.
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    assert project.status == ProjectStatus.ACTIVE

    assert queue.next_assignment(bob, project) is None
    assert queue.empty_reason(bob, project) == "paused"
    assert queue.next_assignment(alice, project) == lease  # still hers to finish
    judgment = queue.submit_judgment(lease, choice="a")
    assert judgment.counted
    assert queue.next_assignment(alice, project) is None
    assert_counters_exact(project)


def test_gold_is_mixed_in_at_the_gold_rate_once_per_rater(alice, bob):
    project = ProjectFactory(overlap=2, gold_rate=0.25)
    project.raters.add(alice, bob)
    regular = make_comparisons(project, 12)
    gold = make_comparisons(project, 2, gold_choice="a")
    slots_before = {g.pk: g.open_slots for g in gold}

    seen = []
    while (a := queue.next_assignment(alice, project)) is not None:
        seen.append(a.comparison)
        queue.submit_judgment(a, choice="a")
    kinds = ["gold" if c.is_gold else "regular" for c in seen]
    # Every 4th lease is gold while gold is left; each gold once.
    assert kinds[:8] == ["regular"] * 3 + ["gold"] + ["regular"] * 3 + ["gold"]
    assert sorted(c.pk for c in seen if c.is_gold) == [g.pk for g in gold]
    assert len(seen) == len(regular) + len(gold)

    # Gold takes no slot: bob gets both golds as well, on the same turns.
    bob_kinds = []
    while (a := queue.next_assignment(bob, project)) is not None:
        bob_kinds.append("gold" if a.comparison.is_gold else "regular")
        queue.submit_judgment(a, choice="b")
    assert bob_kinds == kinds
    for g in gold:
        g.refresh_from_db()
        assert g.open_slots == slots_before[g.pk]
        assert g.judged_count == 2
    assert Judgment.objects.filter(is_gold=True, rater=alice).count() == 2
    assert_counters_exact(project)


def test_gold_without_gold_rate_is_never_served(project, alice):
    ComparisonFactory(project=project, gold_choice="a")
    assert queue.next_assignment(alice, project) is None


def test_display_order_alternates_across_a_comparisons_raters(project, alice, bob, charlie):
    c = ComparisonFactory(project=project)
    orders = [queue.next_assignment(u, project).swapped for u in (alice, bob, charlie)]
    assert orders == [False, True, False]
    assert Assignment.objects.filter(comparison=c, swapped=True).count() == 1


# --- leases and expiry ---------------------------------------------------------------------


def test_an_expired_lease_goes_to_the_next_rater_who_picks(alice, bob):
    project = ProjectFactory(overlap=1, lease_seconds=60)
    project.raters.add(alice, bob)
    c = ComparisonFactory(project=project)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        lease = queue.next_assignment(alice, project)
        assert queue.next_assignment(bob, project) is None
        traveller.shift(timedelta(seconds=61))
        taken = queue.next_assignment(bob, project)
    assert taken.comparison == c
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.EXPIRED
    assert lease.finished_at is not None
    # alice had it once; she is not offered it again.
    assert queue.next_assignment(alice, project) is None
    assert_counters_exact(project)


def test_a_rater_gets_their_own_expired_lease_back_if_nobody_reclaimed_it(project, alice):
    make_comparisons(project, 2)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        lease = queue.next_assignment(alice, project)
        traveller.shift(timedelta(seconds=project.lease_seconds + 5))
        again = queue.next_assignment(alice, project)
        assert again == lease
        assert again.expires_at == timezone.now() + timedelta(seconds=project.lease_seconds)
    assert Assignment.objects.count() == 1
    assert_counters_exact(project)


def test_renew_lease_extends_an_active_lease_only(project, alice):
    make_comparisons(project, 2)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        lease = queue.next_assignment(alice, project)
        traveller.shift(timedelta(seconds=300))
        assert queue.renew_lease(lease) is True
        lease.refresh_from_db()
        assert lease.expires_at == timezone.now() + timedelta(seconds=project.lease_seconds)

        traveller.shift(timedelta(seconds=project.lease_seconds + 1))
        assert queue.reclaim_expired(project=project) == 1
        assert queue.renew_lease(lease) is False
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.EXPIRED
    assert_counters_exact(project)


def test_reclaim_expired_frees_slots_in_every_project(alice, bob):
    p1, p2 = ProjectFactory(lease_seconds=60), ProjectFactory(lease_seconds=60)
    for p in (p1, p2):
        p.raters.add(alice, bob)
        make_comparisons(p, 2)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        leases = [queue.next_assignment(u, p) for u in (alice, bob) for p in (p1, p2)]
        traveller.shift(timedelta(seconds=30))
        assert reclaim_expired_leases.apply().get() == 0
        traveller.shift(timedelta(seconds=31))
        assert reclaim_expired_leases.apply().get() == 4
        assert queue.reclaim_expired() == 0
    for lease in leases:
        lease.refresh_from_db()
        assert lease.status == AssignmentStatus.EXPIRED
    assert_counters_exact(p1)
    assert_counters_exact(p2)


def test_reclaim_gives_back_one_slot_per_expired_lease(project, alice, bob, charlie):
    c = ComparisonFactory(project=project)
    leases = [queue.next_assignment(u, project) for u in (alice, bob, charlie)]
    c.refresh_from_db()
    assert c.open_slots == 0
    expire(leases[0])
    expire(leases[1])
    assert queue.reclaim_expired(project=project) == 2
    c.refresh_from_db()
    assert c.open_slots == 2
    assert_counters_exact(project)


def test_the_beat_entry_for_reclaims_runs_a_task_that_frees_expired_leases(project, alice):
    # Beat sends a task by its name: the entry must name a registered task that does the work.
    from raterhub.celery import app

    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    expire(lease)
    task = app.tasks[app.conf.beat_schedule["reclaim-expired-leases"]["task"]]

    assert task.apply().get() == 1

    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.EXPIRED
    c.refresh_from_db()
    assert c.open_slots == project.overlap
    assert_counters_exact(project)


def test_a_late_submit_counts_when_the_slot_is_still_free(project, alice):
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    expire(lease)
    queue.reclaim_expired()
    judgment = queue.submit_judgment(lease, choice="a")
    assert (judgment.counted, judgment.is_late) == (True, False)
    c.refresh_from_db()
    assert (c.open_slots, c.judged_count) == (2, 1)
    assert_counters_exact(project)


def test_a_late_submit_is_kept_but_not_counted_when_the_slot_was_taken(alice, bob):
    project = ProjectFactory(overlap=1)
    project.raters.add(alice, bob)
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    expire(lease)
    bobs = queue.next_assignment(bob, project)  # reclaims alice's lease and takes the slot
    assert bobs.comparison == c

    late = queue.submit_judgment(lease, choice="b", rationale="took a while")
    assert (late.counted, late.is_late) == (False, True)
    assert late.rationale == "took a while"
    on_time = queue.submit_judgment(bobs, choice="a")
    assert (on_time.counted, on_time.is_late) == (True, False)
    c.refresh_from_db()
    assert (c.open_slots, c.judged_count) == (0, 1)
    assert Judgment.objects.filter(comparison=c).count() == 2
    assert_counters_exact(project)


def test_an_expired_but_unreclaimed_lease_still_counts(project, alice):
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    expire(lease)
    judgment = queue.submit_judgment(lease, choice="a")
    assert judgment.counted and not judgment.is_late
    assert_counters_exact(project)


def test_release_leases_frees_a_raters_leases(project, alice, bob):
    other = ProjectFactory()
    other.raters.add(alice)
    make_comparisons(project, 2)
    make_comparisons(other, 1)
    mine = queue.next_assignment(alice, project)
    elsewhere = queue.next_assignment(alice, other)
    queue.next_assignment(bob, project)

    assert queue.release_leases(rater=alice, project=project) == 1
    mine.refresh_from_db()
    assert mine.status == AssignmentStatus.RELEASED
    elsewhere.refresh_from_db()
    assert elsewhere.status == AssignmentStatus.ACTIVE
    with pytest.raises(ValidationError) as err:
        queue.submit_judgment(mine, choice="a")
    assert "released" in str(err.value.message_dict[NON_FIELD_ERRORS])
    assert queue.release_leases(rater=alice) == 1  # the other project's lease
    assert queue.release_leases(rater=alice) == 0
    assert_counters_exact(project)
    assert_counters_exact(other)


def test_change_overlap_keeps_open_slots_exact(project, alice, bob, charlie):
    c1, c2 = make_comparisons(project, 2)
    gold = ComparisonFactory(project=project, gold_choice="a")
    gold_slots = gold.open_slots
    queue.submit_judgment(queue.next_assignment(alice, project), choice="a")  # c1 judged
    queue.next_assignment(bob, project)  # c1 leased
    queue.change_overlap(project, 5)
    assert project.overlap == 5
    assert_counters_exact(project)

    # Below the work already in hand: c1 is over-served for now and leaves the pick.
    queue.change_overlap(project, 1)
    c1.refresh_from_db()
    assert c1.open_slots == -1
    assert queue.next_assignment(charlie, project).comparison == c2
    assert_counters_exact(project)

    # Raising it again gives exactly the missing slots back (a clamp at 0 would lose one).
    queue.change_overlap(project, 3)
    c1.refresh_from_db()
    assert c1.open_slots == 1
    gold.refresh_from_db()
    assert gold.open_slots == gold_slots
    assert_counters_exact(project)

    with pytest.raises(ValidationError):
        queue.change_overlap(project, 0)


# --- submit_judgment -----------------------------------------------------------------------


def test_submit_stores_the_canonical_choice_and_copies_the_lease(project, alice, bob):
    c = ComparisonFactory(project=project)
    queue.next_assignment(alice, project)
    lease = queue.next_assignment(bob, project)
    assert lease.swapped  # the second lease shows B first
    # bob clicked the left response, which is canonical B.
    judgment = queue.submit_judgment(
        lease, choice=lease.canonical_choice("1"), flags=["unsafe"], duration_ms=4200, rater=bob
    )
    judgment.refresh_from_db()
    assert judgment.choice == "b"
    assert judgment.swapped is True
    assert (judgment.project, judgment.comparison, judgment.rater) == (project, c, bob)
    assert judgment.flags == ["unsafe"]
    assert judgment.duration_ms == 4200
    assert not judgment.is_gold
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SUBMITTED
    assert lease.finished_at is not None
    c.refresh_from_db()
    assert (c.open_slots, c.judged_count) == (1, 1)
    assert_counters_exact(project)


def test_submit_is_idempotent(project, alice):
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    first = queue.submit_judgment(lease, choice="a", rationale="clearer")
    second = queue.submit_judgment(lease, choice="b")
    assert second.pk == first.pk
    assert second.choice == "a"
    assert Judgment.objects.count() == 1
    c.refresh_from_db()
    assert c.judged_count == 1
    assert_counters_exact(project)


def test_submit_refuses_another_raters_assignment(project, alice, bob):
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    with pytest.raises(PermissionDenied):
        queue.submit_judgment(lease, choice="a", rater=bob)
    with pytest.raises(PermissionDenied):
        queue.skip_assignment(lease, rater=bob)
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE


def _scheme_project(alice, **scheme):
    p = ProjectFactory(**scheme)
    p.raters.add(alice)
    ComparisonFactory(project=p)
    return p, queue.next_assignment(alice, p)


def _errors(lease, **answer):
    with pytest.raises(ValidationError) as err:
        queue.submit_judgment(lease, **answer)
    assert not Judgment.objects.exists()
    return err.value.message_dict


@pytest.mark.parametrize(
    ("scheme", "answer", "field"),
    [
        ({}, {"choice": "c"}, "choice"),
        ({"allow_tie": False}, {"choice": "tie"}, "choice"),
        ({"allow_both_bad": False}, {"choice": "both_bad"}, "choice"),
        ({"use_strength": True}, {"choice": "a"}, "strength"),
        ({"use_strength": True}, {"choice": "b", "strength": "hugely"}, "strength"),
        ({}, {"choice": "a", "strength": "much"}, "strength"),
        (
            {"criteria": ["helpful", "honest"]},
            {"choice": "a", "criteria": {"helpful": "sideways"}},
            "criteria",
        ),
        (
            {"criteria": ["helpful"]},
            {"choice": "a", "criteria": {"helpful": "a", "fun": "a"}},
            "criteria",
        ),
        (
            {"criteria": ["helpful"], "allow_tie": False},
            {"choice": "a", "criteria": {"helpful": "tie"}},
            "criteria",
        ),
        ({}, {"choice": "a", "criteria": {"helpful": "a"}}, "criteria"),
        ({"rationale": "off"}, {"choice": "a", "rationale": "because"}, "rationale"),
        ({"rationale": "required"}, {"choice": "a", "rationale": "   "}, "rationale"),
        (
            {"rationale": "required", "rationale_min_chars": 20},
            {"choice": "a", "rationale": "too short"},
            "rationale",
        ),
        (
            {"rationale": "optional", "rationale_min_chars": 20},
            {"choice": "a", "rationale": "too short"},
            "rationale",
        ),
        ({}, {"choice": "a", "flags": ["boring"]}, "flags"),
        ({}, {"choice": "a", "duration_ms": -5}, "duration_ms"),
        ({}, {"choice": "a", "duration_ms": 24 * 3600 * 1000 + 1}, "duration_ms"),
        ({}, {"choice": "a", "rationale": "x" * 10_001}, "rationale"),
        ({}, {"choice": ""}, "choice"),
    ],
)
def test_submit_validates_against_the_scheme(alice, scheme, answer, field):
    _, lease = _scheme_project(alice, **scheme)
    assert field in _errors(lease, **answer)
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE  # nothing changed; the rater can fix it


def test_the_rationale_cap_is_a_setting(alice, settings):
    settings.RATERHUB_RATIONALE_MAX_CHARS = 5
    project = ProjectFactory(slug="capped")
    project.raters.add(alice)
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    with pytest.raises(ValidationError) as raised:
        queue.submit_judgment(lease, choice="a", rationale="123456")
    assert raised.value.message_dict["rationale"] == ["Keep the rationale to 5 characters (6 now)."]
    assert not Judgment.objects.exists()
    assert queue.submit_judgment(lease, choice="a", rationale=" 12345 ").rationale == "12345"


def test_submit_reports_every_problem_at_once(alice):
    _, lease = _scheme_project(alice, use_strength=True, rationale="required", criteria=["x"])
    errors = _errors(lease, choice="a", criteria={"x": "nope"}, flags=["nope"])
    assert set(errors) == {"strength", "criteria", "rationale", "flags"}


@pytest.mark.parametrize(
    ("choice", "given", "stored"),
    [
        ("a", None, {"helpful": "a", "honest": "a"}),
        ("tie", {}, {"helpful": "tie", "honest": "tie"}),
        ("b", {"honest": "a"}, {"helpful": "b", "honest": "a"}),
        ("b", {"helpful": "", "honest": None}, {"helpful": "b", "honest": "b"}),
    ],
)
def test_criteria_not_answered_follow_the_overall_choice(alice, choice, given, stored):
    _, lease = _scheme_project(alice, criteria=["helpful", "honest"])
    judgment = queue.submit_judgment(lease, choice=choice, criteria=given)
    assert judgment.criteria == stored


def test_submit_accepts_a_full_valid_answer(alice):
    _, lease = _scheme_project(
        alice,
        use_strength=True,
        criteria=["helpful", "honest"],
        rationale="required",
        rationale_min_chars=5,
    )
    judgment = queue.submit_judgment(
        lease,
        choice="a",
        strength="clearly",
        criteria={"helpful": "a", "honest": "tie"},
        rationale="  More accurate.  ",
        flags=["cannot_judge", "cannot_judge"],
    )
    judgment.refresh_from_db()
    assert judgment.strength == "clearly"
    assert judgment.criteria == {"helpful": "a", "honest": "tie"}
    assert judgment.rationale == "More accurate."
    assert judgment.flags == ["cannot_judge"]


def test_strength_is_not_asked_for_tie_or_both_bad(alice):
    """Decision: strength grades a preference; for tie/both_bad it is dropped, not required."""
    _, lease = _scheme_project(alice, use_strength=True)
    judgment = queue.submit_judgment(lease, choice="tie", strength="much")
    assert judgment.strength is None
    assert judgment.counted


def test_submit_on_a_skipped_lease_is_refused(project, alice):
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    queue.skip_assignment(lease)
    errors = _errors(lease, choice="a")
    assert "skipped" in errors[NON_FIELD_ERRORS][0]


# --- skip_assignment -----------------------------------------------------------------------


def test_skip_frees_the_slot_and_keeps_the_reason(project, alice, bob):
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    queue.skip_assignment(lease, "Not my language", rater=alice)
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SKIPPED
    assert lease.skip_reason == "Not my language"
    c.refresh_from_db()
    assert c.open_slots == 3
    queue.skip_assignment(lease, "again")  # idempotent
    c.refresh_from_db()
    assert c.open_slots == 3
    assert queue.next_assignment(bob, project).comparison == c
    assert_counters_exact(project)


def test_skipping_an_expired_lease_does_not_free_its_slot_twice(project, alice):
    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    expire(lease)
    queue.reclaim_expired()
    queue.skip_assignment(lease)
    c.refresh_from_db()
    assert c.open_slots == 3
    assert_counters_exact(project)


def test_skip_after_submit_is_refused(project, alice):
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    queue.submit_judgment(lease, choice="a")
    with pytest.raises(ValidationError):
        queue.skip_assignment(lease)
    assert_counters_exact(project)


# --- query counts --------------------------------------------------------------------------


@pytest.mark.parametrize("gold_rate", [0.0, 0.2])
def test_next_and_submit_query_counts_do_not_grow_with_the_data(
    project, alice, bob, django_assert_max_num_queries, gold_rate
):
    Project.objects.filter(pk=project.pk).update(gold_rate=gold_rate)
    counts = {}
    for total in (10, 1000):
        bulk_comparisons(project, total - Comparison.objects.filter(project=project).count())
        ComparisonFactory(project=project, gold_choice="a")
        # Some history and some expired leases for the pick to skip and reclaim.
        for rater in (alice, bob):
            for _ in range(3):
                queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
        expire(queue.next_assignment(bob, project))
        with django_assert_max_num_queries(12) as ctx_next:
            lease = queue.next_assignment(alice, project)
        # Lock lease + comparison, the policy with the counted choices, three writes, savepoint.
        with django_assert_max_num_queries(7) as ctx_submit:
            queue.submit_judgment(lease, choice="a")
        queue.next_assignment(bob, project)
        with django_assert_max_num_queries(2) as ctx_refresh:
            queue.next_assignment(bob, project)  # a refresh: membership + its live lease
        counts[total] = (len(ctx_next), len(ctx_submit), len(ctx_refresh))
        Assignment.objects.filter(rater=bob, status="active").update(status="skipped")
        Comparison.objects.filter(project=project).update(open_slots=project.overlap)
    assert counts[10] == counts[1000], counts


# --- the pick's plan -----------------------------------------------------------------------


def _submitted_history(rater, comparisons) -> None:
    """A submitted lease of each comparison for the rater, in one insert."""
    now = timezone.now()
    Assignment.objects.bulk_create(
        Assignment(
            project_id=c.project_id,
            comparison=c,
            rater=rater,
            status=AssignmentStatus.SUBMITTED,
            leased_at=now,
            expires_at=now,
        )
        for c in comparisons
    )


def _plan_after_history(project, rater, other) -> str:
    from django.db import connection

    bulk_comparisons(project, 2000)
    # Enough history that scanning it would cost more than an index probe.
    _submitted_history(other, Comparison.objects.filter(project=project))
    for _ in range(30):
        queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return queue.explain_pick(rater, project)


def test_the_pick_walks_the_partial_index_on_sqlite(project, alice, bob):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's plan; PostgreSQL has its own test")
    plan = _plan_after_history(project, alice, bob)["window"]
    assert "SEARCH c USING INDEX comparison_pick_idx" in plan
    # "Never had it" is a probe by comparison (released leases don't count, so the probe
    # reads their status: an index search, no longer covering), never a scan.
    assert re.search(r"SEARCH seen USING (COVERING )?INDEX \S+ \(comparison_id=\?", plan), plan
    # The only scan is of the pick window's own rows (at most PICK_WINDOW of them).
    scans = [line for line in plan.splitlines() if " SCAN " in f" {line.split(maxsplit=3)[-1]}"]
    assert scans and all(line.endswith("SCAN w") for line in scans), plan


def _assert_the_pick_probes_by_key(plans: dict[str, str]) -> None:
    # The window comes off the pick index from the top; "never had it" is one index probe by
    # comparison per window row, never a scan of the rater's history; the row taken is locked
    # by primary key, candidate by candidate. No statement has a join whose strategy the
    # planner could choose from statistics.
    window, lock = plans["window"], plans["lock"]
    assert "Index Only Scan using comparison_pick_idx" in window, window
    assert "Index Cond: (comparison_id = w.id)" in window, window
    assert "Index Scan using comparisons_comparison_pkey on comparisons_comparison c" in lock
    assert "Index Cond: (id = k.id)" in lock, lock
    assert "LockRows" in lock, lock
    for plan in (window, lock):
        # (A bitmap probe of the assignment index by comparison_id is a probe by key too.)
        for bad in ("Seq Scan", "Hash", "Merge Join", "Bitmap Heap Scan on comparisons_comp"):
            assert bad not in plan, plan


@pytest.mark.postgres
def test_the_pick_walks_the_partial_index_on_postgresql(project, alice, bob):
    _assert_the_pick_probes_by_key(_plan_after_history(project, alice, bob))


@pytest.mark.postgres
def test_the_pick_probes_no_more_of_the_window_than_it_needs(project, alice, bob):
    # 150 open comparisons alice never had, bob's judged ones on top: the window's first
    # PICK_CANDIDATES rows are all hers to take, so the probes stop there (no sort of the
    # window: its rows come off the index in pick order).
    bulk_comparisons(project, 150, judged_by=[bob])
    plan = queue.explain_pick(alice, project)["window"]
    probes = re.findall(r"Scan on comparisons_assignment seen .* loops=(\d+)\)", plan)
    assert probes == [str(queue.PICK_CANDIDATES)], plan
    assert "Sort" not in plan, plan
    assert queue.next_assignment(alice, project).comparison_id == min(
        Comparison.objects.filter(project=project).values_list("id", flat=True)
    )


@pytest.mark.postgres
def test_the_prepared_pick_keeps_its_plan_when_postgresql_plans_it_generically(project, alice, bob):
    # comparisons.sql prepares its statements, and PostgreSQL may switch a prepared statement
    # to a generic plan (made without the parameters' values) after five runs: the pick must
    # keep its shape then too.
    from django.db import connection

    from comparisons import sql

    _plan_after_history(project, alice, bob)
    ids = sql.window_candidates(
        project_id=project.pk,
        rater_id=alice.pk,
        window=queue.PICK_WINDOW,
        candidates=queue.PICK_CANDIDATES,
    )
    sql.lock_first_free(ids)
    executes = sql._prepared[connection.connection]
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for key, statement, params in (
            (
                "window",
                sql.WINDOW_CANDIDATES,
                sql._window_params(project.pk, alice.pk, queue.PICK_WINDOW, queue.PICK_CANDIDATES),
            ),
            ("lock", sql.LOCK_FIRST_FREE, [ids]),
        ):
            cursor.execute("EXPLAIN (ANALYZE) " + executes[statement], params)
            plans[key] = "\n".join(row[0] for row in cursor.fetchall())
    assert "project_id = $1" in plans["window"], plans["window"]  # planned without the values
    _assert_the_pick_probes_by_key(plans)


@pytest.mark.postgres
def test_the_left_count_probes_by_key_and_stops_at_its_limit(project, alice, bob):
    from django.db import connection

    from comparisons import sql

    _plan_after_history(project, alice, bob)
    since = timezone.now() - timedelta(days=1)
    with connection.cursor() as cursor:
        statement, params = sql._standing_statement(project.pk, alice.pk, since, 5)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + statement, params)
        lines = [row[0] for row in cursor.fetchall()]
    # The count is the statement's InitPlan: its lines are those indented under it.
    start = next(i for i, line in enumerate(lines) if "InitPlan" in line)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if len(lines[i]) - len(lines[i].lstrip()) <= indent
        ),
        len(lines),
    )
    plan = "\n".join(lines[start:end])
    assert "Index Only Scan using comparison_pick_idx" in plan, plan
    assert re.search(r"Index Cond: \(comparison_id = c(_\d+)?\.id\)", plan), plan
    assert "Hash" not in plan and "Seq Scan" not in plan, plan
    # It read no more open comparisons than the limit asks for (not the whole project).
    assert re.search(r"Limit .*actual time=\S+ rows=5 loops=1", plan), plan


def _left(rater, project, limit):
    from comparisons import sql

    return sql.rater_standing(
        project_id=project.pk, rater_id=rater.pk, since=timezone.now(), left_limit=limit
    ).left_count


def test_the_left_count_counts_the_open_comparisons_the_rater_never_had(project, alice, bob):
    # One untouched comparison too: it is counted for both.
    _untouched, bobs, alices, skipped, released, complete = (
        ComparisonFactory(project=project) for _ in range(6)
    )
    ComparisonFactory(project=project, gold_choice="a")  # gold is not in the count
    JudgmentFactory(assignment__comparison=bobs, assignment__rater=bob)
    JudgmentFactory(assignment__comparison=alices, assignment__rater=alice)
    AssignmentFactory(comparison=skipped, rater=alice, status=AssignmentStatus.SKIPPED)
    AssignmentFactory(comparison=released, rater=alice, status=AssignmentStatus.RELEASED)
    Comparison.objects.filter(pk=complete.pk).update(open_slots=0, completed_at=timezone.now())
    # alice: the untouched one, the one she was given back, and bob's (judged, still open).
    assert _left(alice, project, 10) == 3
    # bob: everything open but his own.
    assert _left(bob, project, 10) == 4
    # The limit holds within the unjudged ones (two for alice) and across into the judged.
    assert [_left(alice, project, n) for n in (1, 2, 3)] == [1, 2, 3]
    # The rater's project list counts the same.
    listed = Project.objects.annotate(left=queue.left_for_each_project(alice)).get(pk=project.pk)
    assert listed.left == 3


@pytest.mark.postgres
def test_the_left_count_of_a_rater_far_ahead_reads_no_row_of_their_own_judgments(project, alice):
    from django.db import connection

    from comparisons import sql

    # 300 comparisons alice judged, still open (overlap 3), at the top of the pick order.
    bulk_comparisons(project, 300, judged_by=[alice])
    bulk_comparisons(project, 20)
    assert _left(alice, project, 6) == 6
    with connection.cursor() as cursor:
        statement, params = sql._standing_statement(project.pk, alice.pk, timezone.now(), 6)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + statement, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    lines = plan.splitlines()
    # Each branch reads the pick index; "never had it" is a probe by comparison (the line
    # before its Index Cond carries its loop count).
    for judged in ("= 0", "> 0"):
        assert f"Index Cond: ((project_id = {project.pk}) AND (judged_count {judged}))" in plan
    probes = [
        lines[i - 1] for i, line in enumerate(lines) if "Index Cond: (comparison_id = c_" in line
    ]
    # The unjudged branch found the limit with 6 probes, none of them of alice's 300 rows, and
    # the branch over judged comparisons never ran.
    assert len(probes) == 2 and "loops=6)" in probes[0], plan
    assert "(never executed)" in probes[1], plan


@pytest.mark.postgres
def test_right_after_an_import_the_pick_probes_by_key_with_or_without_statistics(
    project, alice, bob
):
    from django.db import connection

    from comparisons.imports import import_comparisons

    lines = (
        json.dumps({"external_id": f"imp-{i}", "prompt": f"Q{i}?", "responses": [
            {"model": "m-a", "content": "A"}, {"model": "m-b", "content": "B"}]})
        for i in range(3000)
    )  # fmt: skip
    assert import_comparisons(project, lines).created == 3000
    for _ in range(30):
        queue.submit_judgment(queue.next_assignment(alice, project), choice="a")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'comparisons_comparison'::regclass"
        )
        assert cursor.fetchone()[0] >= 3000  # the import analyzed what it wrote
    _assert_the_pick_probes_by_key(queue.explain_pick(alice, project))

    # As if autovacuum had never run: no statistics at all (rolled back with the test).
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pg_statistic WHERE starelid IN "
            "('comparisons_comparison'::regclass, 'comparisons_assignment'::regclass)"
        )
    _assert_the_pick_probes_by_key(queue.explain_pick(alice, project))


@pytest.mark.postgres
def test_the_reclaim_reads_only_active_leases_through_their_index(project, alice, bob):
    from django.db import connection, transaction

    _plan_after_history(project, alice, bob)  # thousands of finished leases to ignore
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    with transaction.atomic():
        plan = queue.expired_queryset(project_id=project.pk, now=timezone.now()).explain()
    # Either partial index on active leases serves it (the planner picks by size); both hold
    # live leases only, so the finished history costs nothing.
    assert "assignment_active_expiry_idx" in plan or "assignment_one_active_per_rater" in plan
    assert "Seq Scan" not in plan


# --- the pick window: a rater far ahead of the others ----------------------------------------


def _judge_next(rater, project, n):
    return [
        queue.submit_judgment(queue.next_assignment(rater, project), choice="a") for _ in range(n)
    ]


def _window_of(monkeypatch, project, *, window, comparisons):
    """A pick window of `window` rows over that many new comparisons; their ids, oldest first."""
    monkeypatch.setattr(queue, "PICK_WINDOW", window)
    bulk_comparisons(project, comparisons)
    return list(
        Comparison.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    )


def _start_far_down(project, rater, comparison_id):
    """The rater judges one comparison out of pick order, as if leased long ago."""
    now = timezone.now()
    lease = Assignment.objects.create(
        project=project, comparison_id=comparison_id, rater=rater, leased_at=now,
        expires_at=now + timedelta(minutes=5),
    )  # fmt: skip
    Comparison.objects.filter(pk=comparison_id).update(open_slots=F("open_slots") - 1)
    queue.submit_judgment(lease, choice="a")


def test_within_the_pick_window_started_work_still_comes_first(project, alice, bob, monkeypatch):
    ids = _window_of(monkeypatch, project, window=5, comparisons=20)
    _judge_next(alice, project, 3)  # ids[0..2]: judged once, still open, top of the order
    _start_far_down(project, bob, ids[15])  # ranks right after them (one judgment)
    assert queue.next_assignment(alice, project).comparison_id == ids[15]


def test_past_a_window_full_of_their_own_work_a_rater_gets_the_oldest_untouched_comparison(
    project, alice, bob, monkeypatch
):
    ids = _window_of(monkeypatch, project, window=5, comparisons=20)
    _judge_next(alice, project, 7)  # ids[0..6]: judged once, still open, top of the order
    _start_far_down(project, bob, ids[15])
    # The window holds only alice's own: she gets the oldest never-judged comparison of that
    # priority instead of a walk through her whole history; bob's started one waits for others.
    assert queue.next_assignment(alice, project).comparison_id == ids[7]
    # Raters who are not ahead still finish what has started first.
    assert queue.next_assignment(bob, project).comparison_id == ids[0]


def test_a_rater_ahead_is_never_told_done_while_started_work_is_left_for_them(
    project, alice, bob, monkeypatch
):
    ids = _window_of(monkeypatch, project, window=3, comparisons=8)
    _judge_next(alice, project, 5)  # ids[0..4]
    _judge_next(bob, project, 8)  # every comparison started: nothing untouched is left
    # The window holds alice's own and nothing is untouched: the exact pick walks on.
    assert queue.next_assignment(alice, project).comparison_id == ids[5]


@pytest.mark.postgres
def test_a_raters_lease_is_read_by_its_key_however_stale_the_statistics(project, bob):
    from django.db import connection

    from comparisons import sql

    bulk_comparisons(project, 2000)
    lease = queue.next_assignment(bob, project)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE comparisons_assignment")  # from when bob had one lease
    _submitted_history(
        bob, Comparison.objects.filter(project=project).exclude(pk=lease.comparison_id)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT TEXT) " + sql.RATER_LEASE, [lease.pk, bob.pk, project.slug]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using comparisons_assignment_pkey on comparisons_assignment" in plan, plan
    assert "Index Cond: (id = " in plan, plan
    for index in ("assignment_rater_idx", "comparisons_assignment_project_id"):
        assert index not in plan, plan
    assert "Seq Scan on comparisons_assignment" not in plan, plan
    assert queue.rater_lease(bob, slug=project.slug, pk=lease.pk) == lease


@pytest.mark.postgres
def test_a_submits_counted_choices_are_read_by_comparison_however_stale_the_statistics(
    project, alice, bob
):
    # Every submit reads the comparison's counted choices (with the overlap policy). Planned
    # generically and without statistics, the read must stay one probe by comparison, not a
    # walk over the project's current judgments, whose number grows with the campaign.
    from django.db import connection

    from comparisons import sql

    judged = bulk_comparisons(project, 2000, judged_by=[alice, bob])
    target = judged[1234]
    choices = Judgment.objects.filter(comparison=target).values_list("choice", flat=True)
    rows = sql.policy_and_counted_choices(project_id=project.pk, comparison_id=target.pk)
    assert sorted(row[4] for row in rows) == sorted(choices)
    executes = sql._prepared[connection.connection]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'comparisons_judgment'::regclass")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(
            "EXPLAIN (ANALYZE) " + executes[sql.POLICY_AND_COUNTED_CHOICES],
            [target.pk, True, project.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Cond: (comparison_id = $1)" in plan, plan
    for index in ("judgment_project", "comparisons_judgment_project_id", "one_current"):
        assert index not in plan, plan
    assert "Seq Scan on comparisons_judgment" not in plan, plan


def test_after_finishing_a_lease_the_one_another_tab_took_is_handed_back(project, alice):
    # The rating views skip the membership read after finishing a lease; the one-active-lease
    # constraint still finds a lease the rater took meanwhile in another tab.
    make_comparisons(project, 3)
    queue.skip_assignment(queue.next_assignment(alice, project))
    other_tab = queue.next_assignment(alice, project)
    assert queue.next_assignment(alice, project, after_finishing=True) == other_tab
    assert Assignment.objects.filter(rater=alice).count() == 2
    assert_counters_exact(project)


def test_after_finishing_a_lease_the_callers_project_status_decides(project, alice):
    make_comparisons(project, 3)
    queue.skip_assignment(queue.next_assignment(alice, project))
    project.status = ProjectStatus.PAUSED  # as this request read it
    assert queue.next_assignment(alice, project, after_finishing=True) is None
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()
