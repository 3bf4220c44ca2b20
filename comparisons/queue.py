"""The assignment queue: who rates what next, leases, judgments, skips.

Every function here claims work atomically and keeps the Comparison counters (open_slots,
judged_count, lease_count) in step with F() updates inside the same transaction as the
Assignment/Judgment rows they count. For a regular comparison the invariant is

    open_slots == project.overlap - active leases - counted judgments

(it may go below zero after a lead lowers the overlap under work already handed out; the
pick index covers only rows where it is positive). Gold comparisons take no slot: any number
of raters may judge them, each at most once.

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
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from comparisons import ranking as rankings
from comparisons import sql
from comparisons.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Flag,
    Judgment,
    Project,
    ProjectStatus,
    RationaleMode,
    Response,
    Strength,
)

RELEASED_REASON = "Released by a project lead."
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


def next_assignment(rater, project: Project) -> Assignment | None:
    """The rater's live lease in the project, else a newly leased comparison, else None.

    - A live lease is returned while the project is paused or archived too (work in hand);
      one past its expiry that nobody reclaimed yet is renewed and returned.
    - A new lease only in an active project: a comparison this rater never had (skips
      included) with an open slot, by priority, then most judgments, then id; on gold turns
      (see _is_gold_turn) a gold comparison they never had, if any is left. Gold is served on
      gold turns only, so once the regular work is done so is the rater.
    - None means nothing is available to this rater now; `empty_reason` says why.
    """
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
    ids = sql.window_candidates(project_id=project.pk, rater_id=rater.pk, window=PICK_WINDOW)
    found = sql.lock_first_free(ids)
    if found is not None:
        return found
    priority = _window_end(project)
    if priority is None:
        return None
    ids = sql.untouched_candidates(
        project_id=project.pk, rater_id=rater.pk, priority=priority, limit=PICK_WINDOW
    )
    return sql.lock_first_free(ids)


def explain_pick(rater, project: Project) -> dict[str, str]:
    """The database's plans of the rater's fast pick (for tests and the benchmark), run in a
    transaction that is rolled back, because the pick locks what it finds."""
    with transaction.atomic():
        plans = sql.explain_pick(project_id=project.pk, rater_id=rater.pk, window=PICK_WINDOW)
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
    return Assignment.objects.create(
        project=project,
        comparison=comparison,
        rater=rater,
        swapped=swapped,
        shown_order=shown_order,
        leased_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
    )


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


def release_leases(*, rater, project: Project | None = None) -> int:
    """Take a rater's active leases away (the admin action); their slots go back to the queue.

    The leases end as skipped with RELEASED_REASON, so a late submit on them is refused and
    the rater is not offered those comparisons again.
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
            status=SKIPPED, skip_reason=RELEASED_REASON, finished_at=now
        )
        _free_slots(r[1] for r in rows)
    return len(rows)


def change_overlap(project: Project, overlap: int) -> None:
    """Set the project's overlap and move every regular comparison's open_slots by the difference.

    Not clamped at 0: open_slots = overlap - active - counted must stay exact, or raising the
    overlap again later would hand out too few (or too many) slots. A negative value means more
    work is in hand than the new overlap asks for; the pick ignores it and it climbs back as
    leases end.
    """
    if overlap < 1:
        raise ValidationError({"overlap": ["Overlap must be at least 1."]})
    with transaction.atomic():
        old = (
            Project.objects.select_for_update(no_key=True)
            .values_list("overlap", flat=True)
            .get(pk=project.pk)
        )
        Project.objects.filter(pk=project.pk).update(overlap=overlap)
        if overlap != old:
            Comparison.objects.filter(project_id=project.pk, gold_choice__isnull=True).update(
                open_slots=F("open_slots") + (overlap - old)
            )
    project.overlap = overlap


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
        missing = [c for c in expected if c not in criteria]
        unknown = [c for c in criteria if c not in expected]
        if missing:
            problems.append(f"Answer every criterion: {', '.join(missing)}.")
        if unknown:
            problems.append(f"Not in this project: {', '.join(map(str, unknown))}.")
        bad = [c for c in expected if c in criteria and criteria[c] not in allowed]
        if bad:
            problems.append(f"Choose one of {', '.join(allowed)} for: {', '.join(bad)}.")
        if problems:
            errors["criteria"] = problems

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
        existing = Judgment.objects.filter(assignment_id=assignment.pk).first()
        if existing is None:
            raise
        return existing


def _submit_in_transaction(assignment: Assignment, answer: dict[str, Any], check) -> Judgment:
    # Locking the lease serializes a double submit and a concurrent reclaim or skip.
    row = sql.lock_lease(assignment.pk)
    if row is None:
        raise Assignment.DoesNotExist(f"Assignment {assignment.pk} does not exist.")
    status, skip_reason, swapped, comparison_id, judgment_id, gold_choice = row
    if judgment_id is None and status == SUBMITTED:
        # We waited on the lock while another submit finished. PostgreSQL re-read the locked
        # row, not the joined judgment (that came from the statement's earlier snapshot), so
        # ask again: this statement sees the committed judgment.
        judgment_id = (
            Judgment.objects.filter(assignment_id=assignment.pk)
            .values_list("pk", flat=True)
            .first()
        )
    if judgment_id is not None:
        return Judgment.objects.get(pk=judgment_id)
    if status == SKIPPED:
        message = (
            "A project lead released this comparison from you; your answer was not recorded."
            if skip_reason == RELEASED_REASON
            else "You skipped this comparison."
        )
        raise ValidationError({NON_FIELD_ERRORS: [message]})
    if status not in (ACTIVE, EXPIRED):
        raise ValidationError({NON_FIELD_ERRORS: ["This assignment is already finished."]})

    # The scheme from the caller's project (loaded with the lease, or fetched here once).
    cleaned = check(assignment.project, **answer)
    is_gold = gold_choice is not None
    # An active lease already holds its slot and gold takes none; a reclaimed lease's judgment
    # counts only if a slot is still free to take back (judged_count counts counted ones).
    judged = Comparison.objects.filter(pk=comparison_id)
    if status == ACTIVE or is_gold:
        counted = bool(judged.update(judged_count=F("judged_count") + 1))
    else:
        counted = bool(
            judged.filter(open_slots__gt=0).update(
                judged_count=F("judged_count") + 1, open_slots=F("open_slots") - 1
            )
        )
    now = timezone.now()
    Assignment.objects.filter(pk=assignment.pk).update(status=SUBMITTED, finished_at=now)
    assignment.status, assignment.finished_at = SUBMITTED, now
    return Judgment.objects.create(
        assignment=assignment,
        project_id=assignment.project_id,
        comparison_id=comparison_id,
        rater_id=assignment.rater_id,
        swapped=swapped,
        is_gold=is_gold,
        is_late=not counted,
        counted=counted,
        **cleaned,
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
        if lease.status == SKIPPED:
            return
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
