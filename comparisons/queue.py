"""The assignment queue: who rates what next, leases, judgments, skips.

Every function here claims work atomically and keeps the Comparison counters (open_slots,
judged_count, lead_margin, completed_at, lease_count) in step inside the same transaction as
the Assignment/Judgment rows they count. For a regular comparison the invariant is

    open_slots == target - active leases - counted judgments

where target is comparisons.overlap.target of its counted judgments under the project's
policy: `overlap` for the fixed policy; for the adaptive one `min_overlap` until those are
in, then one more at a time while the leading choice could still be overturned, so the queue
never leases a slot that could not change the outcome. Leases, skips, expiries and releases
move open_slots by one; a counted judgment moves it by the change of target, and sets
completed_at when it completes the comparison. (open_slots may go below zero after a lead
tightens the policy under work already handed out; the pick index covers only rows where it
is positive.) Gold comparisons take no slot: any number of raters may judge them, each at
most once, and they are never "complete".

Concurrency: on PostgreSQL the pick reads candidates off the partial index comparison_pick_idx
(comparisons.sql), then locks the first free one by primary key with `FOR NO KEY UPDATE SKIP
LOCKED`, so raters never wait on each other; when that finds nothing it looks again, waiting
for one locked row at a time (_pick_exact), so a rater is never told "done" while a row someone
held for a moment still had a slot for them. On SQLite the settings open every transaction
with BEGIN IMMEDIATE, so queue writes serialize; the conditional `open_slots > 0` UPDATE with
its row count is the guard either way. The unique constraints on Assignment are the last line
against a racing double "next".
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from comparisons import overlap, sql
from comparisons import ranking as rankings
from comparisons.models import (
    RANKING_NEEDS_FIXED,
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Flag,
    Judgment,
    OverlapPolicy,
    Project,
    ProjectStatus,
    RationaleMode,
    Response,
    Strength,
    start_of_today,
)

RECLAIM_BATCH = 500
# Exact picks retry while the rows they waited for keep changing under them; each retry means
# someone else made progress, so this bound is only reached in a stampede. Then: None ("done"
# for now), and the next request looks again.
EXACT_ATTEMPTS = 20
# Time spent on one comparison: a day at most (the page's clock or the lease's age).
MAX_DURATION_MS = 24 * 3600 * 1000

ACTIVE = AssignmentStatus.ACTIVE
SUBMITTED = AssignmentStatus.SUBMITTED
SKIPPED = AssignmentStatus.SKIPPED
EXPIRED = AssignmentStatus.EXPIRED
RELEASED = AssignmentStatus.RELEASED
KEPT_AWAY = AssignmentStatus.KEPT_AWAY


class EmptyReason(models.TextChoices):
    """Why next_assignment returned None."""

    NOT_MEMBER = "not_member", "Not a rater of this project"
    PAUSED = "paused", "The project is paused"
    ARCHIVED = "archived", "The project is closed"
    DONE = "done", "Nothing left for this rater now"


# --- reads -------------------------------------------------------------------------------


def _membership(rater, project: Project) -> tuple[str, int, float, int | None] | None:
    """(status, lease_seconds, gold_rate, live lease id) fresh from the database in one query,
    or None if the rater is not a member.

    Fresh, so that a lead pausing the project stops new leases at once even for a caller
    holding an old Project instance.
    """
    return sql.membership(project_id=project.pk, rater_id=rater.pk)


def response_texts(comparison: Comparison) -> list[str]:
    """The comparison's responses, in import order (a, b, c, …): what the rating pages show."""
    return sql.response_texts(comparison.pk)


def rater_lease(rater, *, slug: str, pk: int) -> Assignment | None:
    """The rater's own lease `pk`, with its project, if that project has slug `slug` and they
    are still one of its raters; else None. What the rating views load a lease by."""
    return sql.rater_lease(assignment_id=pk, rater_id=rater.pk, slug=slug)


def empty_reason(rater, project: Project) -> EmptyReason:
    """Why next_assignment returned None."""
    row = _membership(rater, project)
    if row is None:
        return EmptyReason.NOT_MEMBER
    if row[0] == ProjectStatus.PAUSED:
        return EmptyReason.PAUSED
    if row[0] == ProjectStatus.ARCHIVED:
        return EmptyReason.ARCHIVED
    return EmptyReason.DONE


# "N left for you" is exact up to this many; past it the pages say "100+". The count costs one
# index probe per comparison counted on every rating request: an exact one 232 ms at 120k
# comparisons, capped at 1,000 still 2.3 ms of database CPU (the largest statement of a
# submit), at 100 about 0.25 ms. The exact figure matters as the end nears, where it is exact.
LEFT_COUNT_CAP = 100


def left_for_each_project(rater):
    """Standing.left as an annotation of a Project queryset (the rater's project list)."""
    return sql.untouched_count_per_project(rater_id=rater.pk, limit=LEFT_COUNT_CAP + 1)


def left_label(left: int) -> str:
    """The rater's count as the pages show it: exact up to LEFT_COUNT_CAP, then "100+"."""
    return f"{LEFT_COUNT_CAP:,}+" if left > LEFT_COUNT_CAP else f"{left:,}"


def _live_lease(rater, project: Project, *, now: datetime, lease_seconds: int) -> Assignment | None:
    lease = (
        Assignment.objects.select_related("comparison")
        .filter(project=project, rater=rater, status=ACTIVE)
        .order_by()
        .first()
    )
    if lease is None or lease.expires_at > now:
        return lease
    # Past its expiry but still active means nobody reclaimed it, so its slot is still held:
    # hand it back renewed rather than burn the comparison for this rater. The status check
    # loses cleanly to a reclaim that got there first.
    expires_at = now + timedelta(seconds=lease_seconds)
    if not Assignment.objects.filter(pk=lease.pk, status=ACTIVE).update(expires_at=expires_at):
        return None
    lease.expires_at = expires_at
    return lease


# --- next_assignment ---------------------------------------------------------------------


def next_assignment(rater, project: Project, *, after_finishing: bool = False) -> Assignment | None:
    """The rater's live lease in the project, else a newly leased comparison, else None.

    - A live lease is returned while the project is paused or archived too (work in hand);
      one past its expiry that nobody reclaimed yet is renewed and returned.
    - A new lease only in an active project: a comparison this rater never had (skips
      included) with an open slot, by priority, then most judgments, then id; on gold turns
      (see _is_gold_turn) a gold comparison they never had, if any is left. Gold is served on
      gold turns only, so once the regular work is done so is the rater.
    - None means nothing is available to this rater now; `empty_reason` says why.

    `after_finishing`: the caller loaded `project` in this request with the rater's lease
    (rater_lease: their membership checked, the project's row read) and has just finished that
    lease (submitted or skipped it). Then neither is read again: the rater holds no live lease,
    and one that another tab took meanwhile is still handed back (the one-active-lease
    constraint stops the new one).
    """
    if after_finishing:
        row = (project.status, project.lease_seconds, project.gold_rate, None)
    else:
        row = _membership(rater, project)
        if row is None:
            return None
    status, lease_seconds, gold_rate, live_id = row
    now = timezone.now()
    if live_id is not None:
        lease = _live_lease(rater, project, now=now, lease_seconds=lease_seconds)
        if lease is not None:
            return lease
    if status != ProjectStatus.ACTIVE:
        return None

    lease = _lease_new(
        rater, project, lease_seconds=lease_seconds, gold_rate=gold_rate, exact=False
    )
    if lease is None:
        # Nothing found for this rater: now the pick needs the slots of expired leases, so
        # reclaim them (beat reclaims the rest every minute). The blocking reclaim commits on
        # its own: a pick that waits must hold no locks. The fast pick looked no further than
        # its window, and on PostgreSQL SKIP LOCKED may have passed over rows another
        # transaction held only for a moment, so pick once more through the whole order,
        # waiting for such rows: "done" is then exact. Neither runs while there is work in
        # reach, which is the common case.
        _reclaim(project_id=project.pk, now=now, skip_locked=False)
        lease = _lease_new(
            rater, project, lease_seconds=lease_seconds, gold_rate=gold_rate, exact=True
        )
    return lease


def _is_gold_turn(rater, project: Project, gold_rate: float) -> bool:
    """Deterministic mix: gold on the leases where floor(n * gold_rate) steps up.

    With gold_rate 0.1 the 10th, 20th, … lease of each rater is gold (when gold is left),
    so every rater sees the same share and tests can predict it.
    """
    if gold_rate <= 0:
        return False
    n = Assignment.objects.filter(rater=rater, project=project).count()
    eps = 1e-9  # 10 * 0.1 must count as 1.0
    return math.floor((n + 1) * gold_rate + eps) > math.floor(n * gold_rate + eps)


def _lease_new(
    rater, project: Project, *, lease_seconds: int, gold_rate: float, exact: bool
) -> Assignment | None:
    for _ in range(EXACT_ATTEMPTS if exact else 3):
        try:
            with transaction.atomic():
                return _lease_in_transaction(
                    rater, project, lease_seconds=lease_seconds, gold_rate=gold_rate, exact=exact
                )
        except _RowChanged:
            continue  # rolled back, which released the row; look again
        except IntegrityError:
            # A racing "next" of the same rater (double click, two tabs) leased first; the
            # unique constraints rolled ours back. Give this request that lease too.
            lease = _live_lease(rater, project, now=timezone.now(), lease_seconds=lease_seconds)
            if lease is not None:
                return lease
    return None


# A rater who works ahead of the others meets their own judged, still open comparisons at the
# top of the pick order (their judgments put them there: "finish what has started"), and with
# nobody else finishing them that set grows with every judgment. So the fast pick reads at most
# PICK_WINDOW rows down the order; past those it takes the oldest untouched comparison of the
# window's last priority (no one ever had it, so neither did this rater). Only the exact pick,
# when the fast one found nothing, walks further.
PICK_WINDOW = 100
# How many of the rater's candidates a pick reads (of the window, or else of the untouched
# ones): the lock takes the first that no other transaction holds at that instant, which is
# almost always the first (a lease's transaction holds its row for milliseconds).
PICK_CANDIDATES = 10
# The partial index comparison_pick_idx's order (and, in comparisons.sql, its condition).
PICK_ORDER = ("-priority", "-judged_count", "id")


def _open_regular(project: Project):
    return Comparison.objects.filter(project=project, open_slots__gt=0, gold_choice__isnull=True)


def _window_end(project: Project) -> int | None:
    """The priority of the pick window's last row, or None if the window holds every open row."""
    return sql.window_end(project_id=project.pk, window=PICK_WINDOW)


def _pick(rater, project: Project) -> Comparison | None:
    """The first open comparison for the rater that nobody else holds locked right now, within
    the pick window; else the oldest untouched one at the window's last priority."""
    ids = sql.window_candidates(
        project_id=project.pk, rater_id=rater.pk, window=PICK_WINDOW, candidates=PICK_CANDIDATES
    )
    found = sql.lock_first_free(ids)
    if found is not None:
        return found
    priority = _window_end(project)
    if priority is None:
        return None
    ids = sql.untouched_candidates(
        project_id=project.pk, rater_id=rater.pk, priority=priority, limit=PICK_CANDIDATES
    )
    return sql.lock_first_free(ids)


def explain_pick(rater, project: Project) -> dict[str, str]:
    """The database's plans of the rater's fast pick (for tests and the benchmark), run in a
    transaction that is rolled back, because the pick locks what it finds."""
    with transaction.atomic():
        plans = sql.explain_pick(
            project_id=project.pk, rater_id=rater.pk, window=PICK_WINDOW, candidates=PICK_CANDIDATES
        )
        transaction.set_rollback(True)
    return plans


class _RowChanged(Exception):
    """The exact pick waited for a row that no longer fits; roll back to release it."""


def _pick_exact(rater, project: Project) -> Comparison | None:
    """The first open comparison for the rater, waiting for its lock if another holds it.

    A plain read names the candidate (it sees rows others hold locked), then we lock that one
    row and nothing else. A scan that waits row by row would keep every row it waited for
    and found changed, and two such scans deadlock; one row at a time, holding nothing else
    while waiting, cannot.
    """
    candidate = sql.first_open(project_id=project.pk, rater_id=rater.pk)
    if candidate is None:
        return None
    # One row by primary key, waited for: the only plan there is.
    comparison = _open_regular(project).filter(pk=candidate).select_for_update(no_key=True).first()
    if comparison is None:
        raise _RowChanged
    return comparison


def _lease_in_transaction(
    rater, project: Project, *, lease_seconds: int, gold_rate: float, exact: bool
) -> Assignment | None:
    if _is_gold_turn(rater, project, gold_rate):
        gold_id = sql.first_gold(project_id=project.pk, rater_id=rater.pk)
        if gold_id is not None:
            # Gold takes no slot; lease_count only alternates its display order.
            gold = Comparison.objects.get(pk=gold_id)
            Comparison.objects.filter(pk=gold_id).update(lease_count=F("lease_count") + 1)
            return _create_lease(
                rater, project, gold, lease_seconds=lease_seconds, nth=gold.lease_count
            )

    for _ in range(3):
        comparison = (_pick_exact if exact else _pick)(rater, project)
        if comparison is None:
            return None
        # The row is locked on PostgreSQL and writes are serialized on SQLite, so this cannot
        # miss; the condition and row count still guard the invariant if either assumption breaks.
        if sql.take_slot(comparison.pk):
            comparison.open_slots -= 1
            nth = comparison.lease_count
            comparison.lease_count += 1
            return _create_lease(rater, project, comparison, lease_seconds=lease_seconds, nth=nth)
    return None


def _create_lease(
    rater, project: Project, comparison: Comparison, *, lease_seconds: int, nth: int
) -> Assignment:
    """The comparison's `nth` lease (from 0) to the rater; alternate leases show the responses
    in the other order, so both orders appear (rankings: rows of a balanced Latin square)."""
    now = timezone.now()
    swapped, shown_order = nth % 2 == 1, None
    if project.is_ranking:
        count = Response.objects.filter(comparison=comparison).count()
        shown_order = rankings.display_order(count, nth=nth, seed=comparison.pk)
        swapped = shown_order.index("b") < shown_order.index("a")
    lease = Assignment(
        project=project,
        comparison=comparison,
        rater=rater,
        swapped=swapped,
        shown_order=shown_order,
        leased_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
    )
    sql.insert(lease)
    return lease


# --- leases ------------------------------------------------------------------------------


def renew_lease(assignment: Assignment) -> bool:
    """Heartbeat: extend an active lease by the project's lease_seconds. False if it is gone.

    A lease past its expiry that no one has reclaimed yet still holds its slot, so it renews.
    """
    lease_seconds = (
        Project.objects.filter(pk=assignment.project_id)
        .values_list("lease_seconds", flat=True)
        .get()
    )
    expires_at = timezone.now() + timedelta(seconds=lease_seconds)
    renewed = Assignment.objects.filter(pk=assignment.pk, status=ACTIVE).update(
        expires_at=expires_at
    )
    if renewed:
        assignment.expires_at = expires_at
    return bool(renewed)


def _free_slots(comparison_ids: Iterable[int]) -> None:
    """Give one slot back per occurrence of a comparison id (gold takes none)."""
    counts = Counter(comparison_ids)
    # Lock them all in id order first: two reclaims freeing overlapping sets must not wait on
    # each other in a cycle (deadlock).
    list(
        Comparison.objects.filter(id__in=sorted(counts))
        .order_by("id")
        .select_for_update(no_key=True)
        .values_list("id", flat=True)
    )
    by_count: dict[int, list[int]] = defaultdict(list)
    for comparison_id, n in counts.items():
        by_count[n].append(comparison_id)
    for n, ids in by_count.items():
        Comparison.objects.filter(id__in=ids, gold_choice__isnull=True).update(
            open_slots=F("open_slots") + n
        )


def expired_queryset(*, project_id: int | None, now: datetime, skip_locked: bool = True):
    """One batch of (id, comparison_id) of active leases past their expiry, locked.

    Served by a partial index on active leases (assignment_active_expiry_idx, or the planner's
    pick of the same size), so its cost follows the number of live leases, not the history. SKIP LOCKED passes over leases a
    submit (or another reclaim) is handling right now.
    """
    expired = Assignment.objects.filter(status=ACTIVE, expires_at__lte=now)
    if project_id is not None:
        expired = expired.filter(project_id=project_id)
    return (
        expired.order_by("id")
        .select_for_update(skip_locked=skip_locked, no_key=True)
        .values_list("id", "comparison_id")[:RECLAIM_BATCH]
    )


def _reclaim(*, project_id: int | None, now: datetime, skip_locked: bool) -> int:
    """Expire one batch of leases past their expiry and free their slots, in one transaction.

    Called outside any transaction (a pick that found nothing, beat); inside one it would join it.
    """
    with transaction.atomic(savepoint=False):
        rows = list(expired_queryset(project_id=project_id, now=now, skip_locked=skip_locked))
        if not rows:
            return 0
        Assignment.objects.filter(id__in=[r[0] for r in rows]).update(
            status=EXPIRED, finished_at=now
        )
        _free_slots(r[1] for r in rows)
    return len(rows)


def reclaim_expired(*, project: Project | None = None) -> int:
    """Expire every lease past its expiry (one project or all) and free the slots; the count."""
    now = timezone.now()
    total = 0
    while True:
        n = _reclaim(project_id=project.pk if project else None, now=now, skip_locked=True)
        total += n
        if n < RECLAIM_BATCH:
            return total


def release_leases(*, rater, project: Project | None = None, keep_away: bool = False) -> int:
    """Take a rater's active leases away (the admin actions); their slots go back to the queue.

    Released leases end as RELEASED: the comparison is open to everyone again, this rater
    included (the once-per-rater constraint does not count released leases). With
    `keep_away` they end as KEPT_AWAY instead, and this rater is never offered those
    comparisons again. Neither is the rater's skip, and a late submit on either is refused.
    """
    now = timezone.now()
    with transaction.atomic():
        leases = Assignment.objects.filter(rater=rater, status=ACTIVE)
        if project is not None:
            leases = leases.filter(project=project)
        rows = list(
            leases.order_by("id").select_for_update(no_key=True).values_list("id", "comparison_id")
        )
        if not rows:
            return 0
        Assignment.objects.filter(id__in=[r[0] for r in rows]).update(
            status=KEPT_AWAY if keep_away else RELEASED, finished_at=now
        )
        _free_slots(r[1] for r in rows)
    return len(rows)


def _bounds_and_choices(project_id: int, comparison_id: int) -> tuple[tuple[int, int], list[str]]:
    """The project's (minimum, maximum) for comparisons.overlap, and the comparison's counted
    choices, in one query."""
    rows = sql.policy_and_counted_choices(project_id=project_id, comparison_id=comparison_id)
    policy, fixed, low, high, _ = rows[0]
    bounds = (low, high) if policy == OverlapPolicy.ADAPTIVE else (fixed, fixed)
    return bounds, [row[4] for row in rows if row[4] is not None]


# The project settings set_overlap_policy owns: changing one recomputes every comparison.
OVERLAP_FIELDS = ("overlap_policy", "overlap", "min_overlap", "max_overlap")


def set_overlap_policy(
    project: Project,
    *,
    overlap_policy: str | None = None,
    overlap: int | None = None,
    min_overlap: int | None = None,
    max_overlap: int | None = None,
) -> None:
    """Change the project's overlap settings (any left None keep their value) and recompute
    every regular comparison's open_slots and completed_at in one set-based UPDATE.

    Recompute rather than refuse: a lead who raises max_overlap because agreement is low, or
    switches a running project to adaptive, gets the new rule applied to the judgments already
    in. Comparisons newly complete keep (or get, now) completed_at; ones the new rule reopens
    lose it. open_slots is target - active leases - counted, exactly, so work already handed
    out beyond the new target leaves it negative until those leases end.
    """
    with transaction.atomic():
        current = Project.objects.select_for_update(no_key=True).get(pk=project.pk)
        changed = {
            "overlap_policy": current.overlap_policy if overlap_policy is None else overlap_policy,
            "overlap": current.overlap if overlap is None else overlap,
            "min_overlap": current.min_overlap if min_overlap is None else min_overlap,
            "max_overlap": current.max_overlap if max_overlap is None else max_overlap,
        }
        errors: dict[str, list[str]] = {}
        if changed["overlap_policy"] not in OverlapPolicy.values:
            errors["overlap_policy"] = [f"Choose one of: {', '.join(OverlapPolicy.values)}."]
        if changed["overlap"] < 1:
            errors["overlap"] = ["Overlap must be at least 1."]
        if changed["min_overlap"] < 1:
            errors["min_overlap"] = ["The minimum overlap must be at least 1."]
        elif changed["max_overlap"] < changed["min_overlap"]:
            errors["max_overlap"] = ["Must be at least the minimum overlap (1 ≤ min ≤ max)."]
        if current.is_ranking and changed["overlap_policy"] == OverlapPolicy.ADAPTIVE:
            errors["overlap_policy"] = [RANKING_NEEDS_FIXED]
        if errors:
            raise ValidationError(errors)
        for name, value in changed.items():
            setattr(current, name, value)
        Project.objects.filter(pk=project.pk).update(**changed)
        regular = Comparison.objects.filter(project_id=project.pk, gold_choice__isnull=True)
        # Lock them first (in id order, as the reclaim does), so that every lease, skip and
        # submit on them has either committed (and this statement's snapshot sees it) or not
        # started its own change of their counters (and applies it on top of ours).
        list(regular.order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
        low, high = current.overlap_bounds()
        n = F("judged_count")
        complete = Q(judged_count__gte=low) & (
            Q(judged_count__gte=high) | Q(lead_margin__gt=Value(high) - n)
        )
        active = (
            Assignment.objects.filter(comparison=OuterRef("pk"), status=ACTIVE)
            .order_by()
            .values("comparison")
            .annotate(k=Count("pk"))
            .values("k")
        )
        in_hand = Coalesce(Subquery(active, output_field=models.IntegerField()), 0)
        # comparisons.overlap.target, as SQL: n when complete, else max(low, n + 1).
        target = Case(
            When(complete, then=n),
            When(judged_count__lt=low, then=Value(low)),
            default=n + 1,
        )
        regular.update(
            open_slots=target - n - in_hand,
            completed_at=Case(
                When(complete, then=Coalesce(F("completed_at"), Value(timezone.now()))),
                default=None,
            ),
        )
    for name, value in changed.items():
        setattr(project, name, value)


def change_overlap(project: Project, overlap: int) -> None:
    """Set the fixed policy's overlap (see set_overlap_policy)."""
    set_overlap_policy(project, overlap=overlap)


# --- judgments and skips -----------------------------------------------------------------


def _check_owner(assignment: Assignment, rater) -> None:
    if rater is not None and rater.pk != assignment.rater_id:
        raise PermissionDenied("This assignment belongs to another rater.")


def check_answer(
    project: Project,
    *,
    choice: Any,
    strength: Any = None,
    criteria: Any = None,
    rationale: Any = "",
    flags: Any = (),
    duration_ms: Any = None,
) -> dict[str, Any]:
    """The one rule set of an answer: check it against the project's scheme and return it
    cleaned, or raise ValidationError with every problem (keys: the argument names).

    Strength applies to a preference only: it is required for "a"/"b" when the project uses it,
    and ignored (stored empty) for "tie"/"both_bad", where "how much better" has no meaning.
    """
    errors: dict[str, list[str]] = {}
    allowed = project.allowed_choices()
    if not choice:
        errors["choice"] = ["Choose which response is better."]
    elif choice not in allowed:
        errors["choice"] = [f"Choose one of: {', '.join(allowed)}."]

    cleaned_strength = strength or None
    if choice in (Choice.TIE, Choice.BOTH_BAD):
        cleaned_strength = None
    elif not project.use_strength:
        if cleaned_strength is not None:
            errors["strength"] = ["This project does not rate strength."]
    elif cleaned_strength is None:
        errors["strength"] = ["Say how much better the chosen response is."]
    elif cleaned_strength not in Strength.values:
        errors["strength"] = [f"Choose one of: {', '.join(Strength.values)}."]

    criteria = criteria or {}
    expected = list(project.criteria or [])
    if not isinstance(criteria, dict):
        errors["criteria"] = ["Criteria must map each criterion to a choice."]
    else:
        problems = []
        unknown = [c for c in criteria if c not in expected]
        if unknown:
            problems.append(f"Not in this project: {', '.join(map(str, unknown))}.")
        given = {c: criteria[c] for c in expected if criteria.get(c) not in (None, "")}
        bad = [c for c, v in given.items() if v not in allowed]
        if bad:
            problems.append(f"Choose one of {', '.join(allowed)} for: {', '.join(bad)}.")
        if problems:
            errors["criteria"] = problems
        # A criterion not answered follows the overall choice ("same as overall" on the page),
        # so a rater answers only the criteria where they judge differently.
        criteria = {c: given.get(c, choice) for c in expected}

    notes = _check_notes(project, errors, rationale=rationale, flags=flags, duration_ms=duration_ms)
    if project.is_ranking:
        errors[NON_FIELD_ERRORS] = ["This is a ranking project: submit a ranking, not a choice."]
    if errors:
        raise ValidationError(errors)
    return {"choice": choice, "strength": cleaned_strength, "criteria": criteria, **notes}


def _check_notes(
    project: Project, errors: dict[str, list[str]], *, rationale: Any, flags: Any, duration_ms: Any
) -> dict[str, Any]:
    """What every answer may carry besides its verdict (rationale, flags, time spent), checked
    against the project: the problems go into `errors`, the cleaned values are returned."""
    rationale = (rationale or "").strip() if isinstance(rationale, str) else rationale
    longest = settings.RATERHUB_RATIONALE_MAX_CHARS
    if not isinstance(rationale, str):
        errors["rationale"] = ["The rationale must be text."]
    elif project.rationale == RationaleMode.OFF:
        if rationale:
            errors["rationale"] = ["This project does not collect a rationale."]
    elif len(rationale) > longest:
        errors["rationale"] = [
            f"Keep the rationale to {longest:,} characters ({len(rationale):,} now)."
        ]
    else:
        required = project.rationale == RationaleMode.REQUIRED
        minimum = max(project.rationale_min_chars, 1 if required else 0)
        if (required or rationale) and len(rationale) < minimum:
            errors["rationale"] = [
                "This project asks for a rationale."
                if not rationale
                else f"Write at least {minimum} characters ({len(rationale)} so far)."
            ]

    if isinstance(flags, str):
        flags = [flags]
    cleaned_flags = list(dict.fromkeys(flags or ()))
    unknown_flags = [f for f in cleaned_flags if f not in Flag.values]
    if unknown_flags:
        errors["flags"] = [f"Unknown flag: {', '.join(map(str, unknown_flags))}."]

    if duration_ms is not None:
        try:
            duration_ms = int(duration_ms)
        except (TypeError, ValueError):
            duration_ms = -1
        if not 0 <= duration_ms <= MAX_DURATION_MS:
            errors["duration_ms"] = [
                f"Time spent must be a whole number of milliseconds, at most {MAX_DURATION_MS}."
            ]

    return {"rationale": rationale, "flags": cleaned_flags, "duration_ms": duration_ms}


def check_ranking(
    project: Project,
    *,
    keys: list[str],
    ranking: Any,
    rationale: Any = "",
    flags: Any = (),
    duration_ms: Any = None,
) -> dict[str, Any]:
    """The rule set of a ranking answer over the response `keys`: every response ranked
    exactly once, ties only where the project allows them (allow_tie), plus the notes'
    rules; the cleaned answer (choice: the ranking's verdict on a against b) or ValidationError."""
    errors: dict[str, list[str]] = {}
    tiers = None
    if not project.is_ranking:
        errors[NON_FIELD_ERRORS] = ["This is a pairwise project: submit a choice, not a ranking."]
    elif not keys:
        errors[NON_FIELD_ERRORS] = ["This comparison was leased before the project ranked."]
    else:
        try:
            tiers = rankings.check_tiers(ranking, keys, allow_ties=project.allow_tie)
        except rankings.RankingError as exc:
            errors["ranking"] = [str(exc)]
    notes = _check_notes(project, errors, rationale=rationale, flags=flags, duration_ms=duration_ms)
    if errors:
        raise ValidationError(errors)
    return {"choice": rankings.pair_choice(tiers), "ranking": tiers, **notes}


def submit_judgment(
    assignment: Assignment,
    *,
    choice: str,
    strength: str | None = None,
    criteria: dict[str, str] | None = None,
    rationale: str = "",
    flags: Iterable[str] = (),
    duration_ms: int | None = None,
    rater=None,
) -> Judgment:
    """Record the rater's answer (canonical order) for a lease and return the judgment.

    Idempotent: a second call for the same assignment returns the first judgment. A submit on
    an expired lease counts if its slot is still free (or can be re-taken); otherwise it is kept
    with is_late=True, counted=False, and the caller should tell the rater so.
    Raises PermissionDenied if `rater` is given and does not own the assignment, and
    ValidationError (a dict of field -> messages) for invalid input or a skipped/released lease.
    """
    _check_owner(assignment, rater)
    answer = {
        "choice": choice,
        "strength": strength,
        "criteria": criteria,
        "rationale": rationale,
        "flags": flags,
        "duration_ms": duration_ms,
    }
    return _submit(assignment, answer, check_answer)


def submit_ranking(
    assignment: Assignment,
    *,
    ranking: list[list[str]],
    rationale: str = "",
    flags: Iterable[str] = (),
    duration_ms: int | None = None,
    rater=None,
) -> Judgment:
    """Record a rater's ranking of a ranking project's comparison: tiers over the response
    keys a, b, c, … (import order), best first, e.g. [["c"], ["a", "b"], ["d"]].

    Every response must be ranked exactly once (ties only if the project allows them). Same
    contract as submit_judgment: idempotent (a second call returns the first judgment), late
    submits kept uncounted, PermissionDenied for another rater's lease, ValidationError for
    invalid input. The judgment's choice is the ranking's verdict on a against b.
    """
    _check_owner(assignment, rater)
    keys = sorted(assignment.shown_order or [])
    answer = {
        "ranking": ranking,
        "rationale": rationale,
        "flags": flags,
        "duration_ms": duration_ms,
    }
    return _submit(assignment, answer, lambda project, **a: check_ranking(project, keys=keys, **a))


def _submit(assignment: Assignment, answer: dict[str, Any], check) -> Judgment:
    try:
        with transaction.atomic():
            return _submit_in_transaction(assignment, answer, check)
    except IntegrityError:
        # The one-judgment-per-assignment constraint caught a race the lock should have
        # prevented; the judgment that won is the answer.
        existing = Judgment.objects.current().filter(assignment_id=assignment.pk).first()
        if existing is None:
            raise
        return existing


def _submit_in_transaction(assignment: Assignment, answer: dict[str, Any], check) -> Judgment:
    # Locking the lease serializes a double submit and a concurrent reclaim or skip; locking
    # its comparison with it (lease first, as every other path locks them) serializes the
    # counting of judgments on one comparison. Locked rows are read at their latest version.
    lease = sql.lock_lease(assignment.pk)
    if lease.judgment_id is None and lease.status == SUBMITTED:
        # We waited on the lock while another submit finished. PostgreSQL re-read the locked
        # row, not the subquery's judgment (that came from the statement's earlier snapshot),
        # so ask again: this statement sees the committed judgment.
        lease.judgment_id = (
            Judgment.objects.current()
            .filter(assignment_id=assignment.pk)
            .values_list("pk", flat=True)
            .first()
        )
    if lease.judgment_id is not None:
        return Judgment.objects.get(pk=lease.judgment_id)
    if lease.status in (RELEASED, KEPT_AWAY):
        raise ValidationError(
            {
                NON_FIELD_ERRORS: [
                    "A project lead released this comparison from you; your answer was not recorded."
                ]
            }
        )
    if lease.status == SKIPPED:
        raise ValidationError({NON_FIELD_ERRORS: ["You skipped this comparison."]})
    if lease.status not in (ACTIVE, EXPIRED):
        raise ValidationError({NON_FIELD_ERRORS: ["This assignment is already finished."]})

    # The scheme from the caller's project (loaded with the lease, or fetched here once).
    cleaned = check(assignment.project, **answer)
    is_gold = lease.comparison.gold_choice is not None
    if is_gold:
        # Gold takes no slot and is never "complete": every judgment of it counts.
        Comparison.objects.filter(pk=lease.comparison_id).update(judged_count=F("judged_count") + 1)
        counted = True
    else:
        counted = _count_judgment(
            lease.comparison,
            project_id=assignment.project_id,
            choice=cleaned["choice"],
            holds_slot=lease.status == ACTIVE,
        )
    now = timezone.now()
    sql.finish_lease(assignment_id=assignment.pk, status=SUBMITTED, finished_at=now)
    assignment.status, assignment.finished_at = SUBMITTED, now
    judgment = Judgment(
        assignment=assignment,
        project_id=assignment.project_id,
        comparison_id=lease.comparison_id,
        rater_id=assignment.rater_id,
        swapped=lease.swapped,
        is_gold=is_gold,
        is_late=not counted,
        counted=counted,
        **cleaned,
    )
    sql.insert(judgment)
    return judgment


def _count_judgment(
    comparison: Comparison, *, project_id: int, choice: str, holds_slot: bool
) -> bool:
    """Count a judgment of a regular comparison (locked by the caller), if it may count;
    whether it does.

    An active lease already holds its slot; a reclaimed lease's judgment counts only if a slot
    is still free to take back. Counting moves open_slots by the change of the rule's target,
    keeps lead_margin, and sets completed_at when the rule is first satisfied.
    """
    if not holds_slot and comparison.open_slots <= 0:
        return False
    # With the row locked, this statement (a new snapshot on PostgreSQL) sees every counted
    # judgment, and the policy a concurrent set_overlap_policy committed before letting go.
    (low, high), choices = _bounds_and_choices(project_id, comparison.pk)
    n, margin = comparison.judged_count, comparison.lead_margin
    new_margin = overlap.lead_margin([*choices, choice])
    before = overlap.target(n, margin, minimum=low, maximum=high)
    after = overlap.target(n + 1, new_margin, minimum=low, maximum=high)
    # A lease that holds its slot moves from "active" to "counted": only the target moves.
    # A late one takes a free slot as it is counted.
    change = after - before - (0 if holds_slot else 1)
    completed_at = comparison.completed_at
    if completed_at is None and overlap.is_complete(n + 1, new_margin, minimum=low, maximum=high):
        completed_at = timezone.now()
    sql.count_judgment(
        comparison_id=comparison.pk,
        lead_margin=new_margin,
        slot_change=change,
        completed_at=completed_at,
    )
    return True


# --- revisions (Undo) --------------------------------------------------------------------

# How long after a judgment its rater may reopen it for revision (Undo).
UNDO_SECONDS = 300
UNDO_TOO_LATE = (
    "This judgment can no longer be changed: its few minutes for a revision have passed or its "
    "comparison has all the judgments it needs."
)


def comparison_still_open(comparison) -> Exists:
    """True while the comparison (an id, or an OuterRef to one) has fewer judgments than its
    project asks for, as an expression to annotate: until then a judgment on it may still be
    revised (no aggregate has had reason to take it as final)."""
    return ~Exists(Comparison.objects.complete().filter(pk=comparison))


def _with_still_open(judgments: models.QuerySet[Judgment]) -> models.QuerySet[Judgment]:
    return judgments.annotate(still_open=comparison_still_open(OuterRef("comparison_id")))


def _revisable(judgment: Judgment, now: datetime) -> bool:
    """Current, recent and on an open comparison (`judgment` from _with_still_open)."""
    return (
        judgment.superseded_at is None
        and judgment.created_at >= now - timedelta(seconds=UNDO_SECONDS)
        and judgment.still_open
    )


@dataclass(frozen=True)
class Standing:
    """A rater's standing in a project, as the rating panel shows it."""

    total: int  # judgments in force
    today: int  # of those, made today (models.start_of_today)
    undoable: Judgment | None  # the one they may still revise (undoable_judgment)
    # Open comparisons they were never given (a released lease gives one back), counted up to
    # LEFT_COUNT_CAP + 1 (so a caller can tell "more than the cap"); None unless asked for.
    left: int | None = None


def standing(rater, project: Project, *, with_left: bool = False) -> Standing:
    """The rater's Standing in the project, in one query (`left` too if `with_left`)."""
    last = sql.rater_standing(
        project_id=project.pk,
        rater_id=rater.pk,
        since=start_of_today(),
        left_limit=LEFT_COUNT_CAP + 1 if with_left else None,
    )
    revisable = last.pk is not None and _revisable(last, timezone.now())
    return Standing(
        total=last.total,
        today=last.today,
        undoable=last if revisable else None,
        left=last.left_count if with_left else None,
    )


def undoable_judgment(rater, project: Project) -> Judgment | None:
    """The rater's last judgment in the project if they may still revise it: made less than
    UNDO_SECONDS ago, on a comparison that is still open."""
    return standing(rater, project).undoable


def revise_judgment(
    judgment: Judgment,
    *,
    choice: str,
    strength: str | None = None,
    criteria: dict[str, str] | None = None,
    rationale: str = "",
    flags: Iterable[str] = (),
    duration_ms: int | None = None,
    rater=None,
) -> Judgment:
    """Replace a judgment with the rater's revision and return the revision.

    The old judgment is kept and marked superseded (never edited otherwise); the revision takes
    its place in every count, export and metric (`Judgment.objects.current()`), with the same
    counted/late standing, so the comparison's counters do not move. Allowed while the old one
    is revisable (see undoable_judgment); `duration_ms` (this visit) adds to the old one's.
    Idempotent: a second call for an already revised judgment returns the revision in force.
    Raises PermissionDenied for another rater's judgment, ValidationError otherwise.
    """
    if rater is not None and rater.pk != judgment.rater_id:
        raise PermissionDenied("This judgment belongs to another rater.")
    with transaction.atomic():
        # Locking the lease serializes a double submit of one revision (and a late first submit).
        Assignment.objects.select_for_update(no_key=True).filter(pk=judgment.assignment_id).get()
        old = _with_still_open(Judgment.objects.select_related("project")).get(pk=judgment.pk)
        if old.superseded_at is not None:
            return Judgment.objects.current().get(assignment_id=old.assignment_id)
        now = timezone.now()
        if not _revisable(old, now):
            raise ValidationError({NON_FIELD_ERRORS: [UNDO_TOO_LATE]})
        cleaned = check_answer(
            old.project,
            choice=choice,
            strength=strength,
            criteria=criteria,
            rationale=rationale,
            flags=flags,
            duration_ms=duration_ms,
        )
        # The time on the comparison: both visits, or the first alone if this one is unknown.
        if old.duration_ms is not None:
            more = cleaned["duration_ms"] or 0
            cleaned["duration_ms"] = min(old.duration_ms + more, MAX_DURATION_MS)
        Judgment.objects.filter(pk=old.pk).update(superseded_at=now)
        revision = Judgment.objects.create(
            assignment_id=old.assignment_id,
            project_id=old.project_id,
            comparison_id=old.comparison_id,
            rater_id=old.rater_id,
            swapped=old.swapped,
            is_gold=old.is_gold,
            is_late=old.is_late,
            counted=old.counted,
            supersedes=old,
            **cleaned,
        )
        if old.counted and not old.is_gold and revision.choice != old.choice:
            _recount(old.comparison_id, project_id=old.project_id)
    return revision


def _recount(comparison_id: int, *, project_id: int) -> None:
    """After a counted judgment's choice changed (a revision), bring the comparison's
    lead_margin, open_slots and completed_at in step with its current judgments, in the
    caller's transaction. The number of counted judgments has not moved; under the adaptive
    policy the margin may now decide it, or no longer close it."""
    comparison = Comparison.objects.select_for_update(no_key=True).get(pk=comparison_id)
    (low, high), choices = _bounds_and_choices(project_id, comparison_id)
    n, margin = comparison.judged_count, overlap.lead_margin(choices)
    before = overlap.target(n, comparison.lead_margin, minimum=low, maximum=high)
    after = overlap.target(n, margin, minimum=low, maximum=high)
    complete = overlap.is_complete(n, margin, minimum=low, maximum=high)
    Comparison.objects.filter(pk=comparison_id).update(
        lead_margin=margin,
        open_slots=F("open_slots") + (after - before),
        completed_at=(comparison.completed_at or timezone.now()) if complete else None,
    )


def skip_assignment(assignment: Assignment, reason: str = "", *, rater=None) -> None:
    """Give the comparison back: its slot returns to the queue and this rater never gets it again."""
    _check_owner(assignment, rater)
    now = timezone.now()
    with transaction.atomic():
        lease = (
            Assignment.objects.select_related("comparison")
            .select_for_update(of=("self",))
            .get(pk=assignment.pk)
        )
        if lease.status in (SKIPPED, RELEASED, KEPT_AWAY):
            return  # already given back (a lead's release is not turned into the rater's skip)
        if lease.status == SUBMITTED:
            raise ValidationError({NON_FIELD_ERRORS: ["This comparison was already submitted."]})
        Assignment.objects.filter(pk=lease.pk).update(
            status=SKIPPED, skip_reason=(reason or "")[:500], finished_at=now
        )
        if lease.status == ACTIVE and not lease.comparison.is_gold:
            # An expired lease's slot was already freed by the reclaim.
            Comparison.objects.filter(pk=lease.comparison_id).update(open_slots=F("open_slots") + 1)
    assignment.status, assignment.finished_at = SKIPPED, now
    assignment.skip_reason = (reason or "")[:500]
