"""The queue under real concurrency: many raters in threads, each with its own DB connection.

Each worker thread takes a rater from a shared pool and loops next -> submit, with some skips,
some abandoned leases (moved past their expiry, sometimes submitted late after the slot went to
someone else), releases by a lead and explicit reclaims. At the end every comparison must have
exactly the counted judgments its project's overlap rule asks for (fixed: `overlap`; adaptive:
up to the first count at which the leading choice can no longer be overturned), nobody judged
anything twice, no worker saw an error or deadlock, and no rater was ever told "done" while a
comparison was available to them (released leases do not count as having had it).

"Available" is checked exactly, not by timing: before each next() we note, for every comparison
open to the rater, its (lease_count, judged_count). Those are the only ways a slot is taken, so if
after a None answer the comparison is still open with the same pair, it was open the whole time.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import deque
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from comparisons import overlap, queue
from comparisons.models import Assignment, AssignmentStatus, Comparison, Judgment
from tests.factories import ProjectFactory, UserFactory, bulk_comparisons

WALL_CLOCK_LIMIT = 300  # seconds: a stuck run fails with a message instead of hanging CI


def _seed(n_raters: int, n_comparisons: int, overlap: int, **policy):
    project = ProjectFactory(slug=f"conc-{n_raters}-{n_comparisons}", overlap=overlap, **policy)
    raters = [UserFactory(email=f"conc{i}@example.com") for i in range(n_raters)]
    project.raters.add(*raters)
    bulk_comparisons(project, n_comparisons, priority=lambda i: i % 3)
    return project, raters


def _had(rater) -> Exists:
    """The rater had the comparison: a lease of it that a lead did not release."""
    return Exists(
        Assignment.objects.filter(comparison=OuterRef("pk"), rater=rater).exclude(
            status=AssignmentStatus.RELEASED
        )
    )


def _open_to(rater, project) -> dict[int, tuple[int, int]]:
    return {
        pk: (leases, judged)
        for pk, leases, judged in Comparison.objects.regular()
        .filter(project=project, open_slots__gt=0)
        .exclude(_had(rater))
        .values_list("pk", "lease_count", "judged_count")
    }


def _finished_for(rater, project) -> bool:
    """Nothing can ever come to this rater again: every comparison still missing judgments
    has been theirs once."""
    return (
        not Comparison.objects.regular()
        .incomplete()
        .filter(project=project)
        .exclude(_had(rater))
        .exists()
    )


def _run(project, raters, n_threads: int, *, seed: int):
    pool = deque(raters)
    pool_lock = threading.Lock()
    errors: list[str] = []
    wrong_empty: list[str] = []
    stats = {"late": 0, "skipped": 0, "released": 0, "abandoned": 0, "submitted": 0}
    deadline = time.monotonic() + WALL_CLOCK_LIMIT

    def work_as(rater, rng: random.Random) -> bool:
        """One rater's session until the queue answers None; True when they are finished."""
        abandoned = None
        while time.monotonic() < deadline:
            before = _open_to(rater, project)
            lease = queue.next_assignment(rater, project)
            if lease is None:
                after = _open_to(rater, project)
                missed = [pk for pk, v in before.items() if after.get(pk) == v]
                if missed:
                    wrong_empty.append(f"{rater.email} told empty; open to them: {missed[:5]}")
                if abandoned is not None:
                    stats["late"] += not queue.submit_judgment(abandoned, choice="a").counted
                return _finished_for(rater, project)
            if abandoned is not None and abandoned.pk != lease.pk:
                # The abandoned lease was reclaimed meanwhile: submit it late now.
                stats["late"] += not queue.submit_judgment(abandoned, choice="b").counted
            abandoned = None
            roll = rng.random()
            if roll < 0.08:
                queue.skip_assignment(lease, "skip", rater=rater)
                stats["skipped"] += 1
            elif roll < 0.11:
                # A lead releases the lease: the comparison goes back, this rater included.
                queue.release_leases(rater=rater, project=project)
                stats["released"] += 1
            elif roll < 0.14:
                # Walk away: the lease runs out; sometimes someone reclaims it at once.
                Assignment.objects.filter(pk=lease.pk).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )
                stats["abandoned"] += 1
                if rng.random() < 0.5:
                    queue.reclaim_expired(project=project)
                abandoned = lease
            else:
                choice = rng.choice(["a", "a", "a", "b", "tie", "both_bad"])
                judgment = queue.submit_judgment(lease, choice=choice, rater=rater)
                assert judgment.counted
                stats["submitted"] += 1
        errors.append(f"{rater.email}: still working at the wall-clock limit")
        return True

    def worker(index: int):
        rng = random.Random(seed * 1000 + index)
        try:
            while True:
                with pool_lock:
                    if not pool:
                        return
                    rater = pool.popleft()
                if not work_as(rater, rng):
                    with pool_lock:
                        pool.append(rater)  # others still hold leases that may come back
                    time.sleep(0.005)  # pacing only: let the holders finish
        except Exception:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, wrong_empty, stats


def _assert_final_state(project, errors, wrong_empty, stats):
    """Every comparison stopped exactly where the project's rule says (fixed: at overlap;
    adaptive: at the first complete prefix of its counted judgments, never past the max), with
    its counters exact, and nobody judged anything twice."""
    assert errors == []
    assert wrong_empty == []
    low, high = project.overlap_bounds()
    rows = Comparison.objects.filter(project=project).annotate(
        counted=Count("judgments", filter=Q(judgments__counted=True), distinct=True),
        active=Count("assignments", filter=Q(assignments__status="active"), distinct=True),
    )
    votes: dict[int, list[str]] = {}
    for cid, choice in (
        Judgment.objects.filter(project=project, counted=True)
        .order_by("id")  # the order they were counted in: under the comparison's row lock
        .values_list("comparison_id", "choice")
    ):
        votes.setdefault(cid, []).append(choice)
    for c in rows:
        seq = votes.get(c.pk, [])
        assert (c.counted, c.judged_count, c.open_slots, c.active) == (len(seq), len(seq), 0, 0), c
        assert low <= len(seq) <= high, (c, seq)
        assert c.completed_at is not None, c
        assert c.lead_margin == overlap.lead_margin(seq), (c, seq)
        # Complete now, and at no earlier count: no comparison stopped at 2 disagreeing or got
        # a third after 2 agreed (for min 2, max 3).
        for k in range(len(seq) + 1):
            done = overlap.is_complete(k, overlap.lead_margin(seq[:k]), minimum=low, maximum=high)
            assert done == (k == len(seq)), (c, seq, k)
    # Nobody judged or was assigned a comparison twice (the DB forbids the latter; check anyway).
    assert not (
        Judgment.objects.values("rater", "comparison")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    assert not (
        Assignment.objects.exclude(status=AssignmentStatus.RELEASED)
        .values("rater", "comparison")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    assert not Judgment.objects.filter(is_late=True, counted=True).exists()
    # The run exercised the paths it claims to.
    assert stats["skipped"] > 0 and stats["abandoned"] > 0 and stats["released"] > 0
    assert Assignment.objects.filter(status=AssignmentStatus.SKIPPED).exists()
    assert Assignment.objects.filter(status=AssignmentStatus.RELEASED).exists()
    assert Judgment.objects.filter(project=project).count() >= low * rows.count()
    return votes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_queue_is_exact_under_16_threads_on_postgresql():
    project, raters = _seed(n_raters=30, n_comparisons=300, overlap=3)
    errors, wrong_empty, stats = _run(project, raters, n_threads=16, seed=1)
    _assert_final_state(project, errors, wrong_empty, stats)


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_exact_under_4_threads():
    """On SQLite (the default database): immediate transactions serialize the writers."""
    project, raters = _seed(n_raters=10, n_comparisons=60, overlap=3)
    errors, wrong_empty, stats = _run(project, raters, n_threads=4, seed=2)
    _assert_final_state(project, errors, wrong_empty, stats)


ADAPTIVE = {"overlap_policy": "adaptive", "min_overlap": 2, "max_overlap": 3}


def _assert_both_stops_happened(votes):
    # Both kinds of stop happened: at 2 (agreed) and at 3 (a third after a split).
    assert {len(v) for v in votes.values()} == {2, 3}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_adaptive_queue_is_exact_under_16_threads_on_postgresql():
    project, raters = _seed(n_raters=30, n_comparisons=300, overlap=3, **ADAPTIVE)
    errors, wrong_empty, stats = _run(project, raters, n_threads=16, seed=3)
    _assert_both_stops_happened(_assert_final_state(project, errors, wrong_empty, stats))


@pytest.mark.django_db(transaction=True)
def test_the_adaptive_queue_is_exact_under_4_threads():
    project, raters = _seed(n_raters=10, n_comparisons=60, overlap=3, **ADAPTIVE)
    errors, wrong_empty, stats = _run(project, raters, n_threads=4, seed=4)
    _assert_both_stops_happened(_assert_final_state(project, errors, wrong_empty, stats))


def _race(n: int, fn) -> tuple[list, list[str]]:
    """Run fn() in n threads released together; return their results and any errors."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(fn())
        except Exception:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_racing_submits_of_one_lease_record_one_judgment():
    project, (rater,) = _seed(n_raters=1, n_comparisons=3, overlap=3)
    lease = queue.next_assignment(rater, project)
    results, errors = _race(8, lambda: queue.submit_judgment(lease, choice="a", rater=rater).pk)
    assert errors == []
    assert len(set(results)) == 1
    assert Judgment.objects.count() == 1
    assert Comparison.objects.get(pk=lease.comparison_id).judged_count == 1


@pytest.mark.django_db(transaction=True)
def test_racing_nexts_of_one_rater_share_one_lease():
    project, (rater,) = _seed(n_raters=1, n_comparisons=20, overlap=3)
    results, errors = _race(8, lambda: queue.next_assignment(rater, project).pk)
    assert errors == []
    assert len(set(results)) == 1
    assert Assignment.objects.count() == 1
    assert sum(Comparison.objects.values_list("open_slots", flat=True)) == 20 * 3 - 1
