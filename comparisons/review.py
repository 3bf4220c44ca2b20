"""Review and adjudication: the comparisons that need a second look, reviewers' leases on them,
and the verdicts (Adjudication rows) that exports use in place of the vote.

What needs review is set per project (Project.review_*); each rule:
  - split: a complete comparison whose votes have no majority (exports.verdicts.aggregate);
  - low agreement: a complete comparison whose leading choice has less than
    review_min_agreement of the votes (the agreement of exports.verdicts);
  - flagged: any judgment with a flag (unsafe, cannot judge), complete or not;
  - gold missed: a gold comparison that at least review_gold_missed raters answered otherwise
    (the gold itself may be wrong); gold is never "complete" (every rater may get it), so the
    misses count as they come;
  - hand-sent: a lead sent it (send_to_review, the admin action), complete or not.
The vote rules read counted judgments only, as the exports do. A comparison leaves the queue
with its first adjudication; sending it by hand again puts it back until the next one.

Leases follow the rater queue's guarantees (comparisons.queue): the database allows one live
lease per comparison and one per reviewer and project (ReviewLease's unique constraints); the
pick locks the first free candidate with `FOR NO KEY UPDATE SKIP LOCKED` on PostgreSQL, so two
reviewers never wait on each other or take the same item; on SQLite the immediate transactions
serialize it. A lease past its expiry goes to the next reviewer who asks.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from comparisons.exports.source import votes_by_comparison
from comparisons.exports.verdicts import aggregate
from comparisons.metrics.stats import EPS
from comparisons.models import (
    Adjudication,
    Choice,
    Comparison,
    Judgment,
    MetricsSnapshot,
    Project,
    ReviewLease,
    ReviewLeaseStatus,
    ReviewVerdict,
)

ACTIVE = ReviewLeaseStatus.ACTIVE
PICK_WINDOW = 20  # candidates read per pick; the lock takes the first free one of them
PICK_ATTEMPTS = 5


# --- who reviews ---------------------------------------------------------------------------


def may_review(user, project: Project) -> bool:
    return Project.objects.reviewable_by(user).filter(pk=project.pk).exists()


# --- the queue -----------------------------------------------------------------------------


def _count(qs: QuerySet) -> Coalesce:
    """The rows of `qs` (filtered on an outer comparison) as a correlated count, 0 if none."""
    counted = qs.order_by().values("comparison").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=models.IntegerField()), 0)


def _disputed(project: Project, complete: QuerySet[Comparison]) -> QuerySet:
    """The ids of complete regular comparisons whose counted votes are split (no majority) or whose
    leading choice has less than project.review_min_agreement of them.

    The rules are the exports' (exports.verdicts: `aggregate`'s majority is a choice with more
    than half of the votes, a verdict's agreement the share of votes for its choice), counted
    here by the database so that the queue stays one query at any size; test_review checks the
    two agree on every vote pattern of three and four raters.
    """
    counted = Q(judgments__counted=True)
    per_choice = [
        Count("judgments", filter=counted & Q(judgments__choice=c)) for c in Choice.values
    ]
    votes = (
        complete.regular()
        .values("pk")
        .annotate(votes=Count("judgments", filter=counted), top=Greatest(*per_choice))
        .filter(votes__gt=0)
    )
    rule = Q(pk__in=[])
    if project.review_splits:
        rule |= Q(votes__gte=F("top") * 2)
    if project.review_min_agreement is not None:
        rule |= Q(top__lt=F("votes") * (project.review_min_agreement - EPS))
    return votes.filter(rule).values("pk")


def _awaiting_verdict() -> Q:
    """Never adjudicated, or sent to review by hand after its latest adjudication."""
    adjudications = Adjudication.objects.filter(comparison=OuterRef("pk"))
    last = adjudications.order_by("-created_at").values("created_at")[:1]
    return ~Q(Exists(adjudications)) | Q(review_requested_at__gt=Subquery(last))


def review_queue(project: Project) -> QuerySet[Comparison]:
    """The project's comparisons that need review (module docstring), hand-sent ones first,
    then by priority and age."""
    comparisons = Comparison.objects.filter(project=project)
    complete = comparisons.complete()
    reasons = Q(review_requested_at__isnull=False)
    if project.review_flagged:
        # Every flag there is (unsafe, cannot judge) asks for a look.
        flagged = Judgment.objects.filter(comparison=OuterRef("pk")).exclude(flags=[])
        reasons |= Q(Exists(flagged))
    if project.review_gold_missed:
        missed = Judgment.objects.filter(comparison=OuterRef("pk")).exclude(
            choice=OuterRef("gold_choice")
        )
        gold = comparisons.gold().annotate(missed=_count(missed))
        reasons |= Q(pk__in=gold.filter(missed__gte=project.review_gold_missed).values("pk"))
    if project.review_splits or project.review_min_agreement is not None:
        reasons |= Q(pk__in=_disputed(project, complete))
    return (
        comparisons.filter(reasons)
        .filter(_awaiting_verdict())
        .order_by(F("review_requested_at").desc(nulls_last=True), "-priority", "id")
    )


def send_to_review(comparisons: QuerySet[Comparison]) -> int:
    """A lead's hand: put these comparisons in their projects' review queues (the admin action)."""
    return comparisons.update(review_requested_at=timezone.now())


# --- leases --------------------------------------------------------------------------------


def _live(project: Project, reviewer) -> ReviewLease | None:
    return (
        ReviewLease.objects.select_related("comparison")
        .filter(project=project, reviewer=reviewer, status=ACTIVE)
        .first()
    )


def _taken(now) -> Exists:
    """Another live lease on the outer comparison."""
    return Exists(
        ReviewLease.objects.filter(comparison=OuterRef("pk"), status=ACTIVE, expires_at__gt=now)
    )


def next_review(reviewer, project: Project) -> ReviewLease | None:
    """The reviewer's live lease in the project, else a newly leased comparison from the review
    queue (one they did not skip and nobody else holds), else None. None too for a user who
    may not review the project."""
    if not may_review(reviewer, project):
        return None
    now = timezone.now()
    lease = _live(project, reviewer)
    if lease is not None:
        if lease.expires_at > now:
            return lease
        # Lapsed: the reviewer takes their turn in the queue like anyone else.
        ReviewLease.objects.filter(pk=lease.pk, status=ACTIVE).update(
            status=ReviewLeaseStatus.EXPIRED, finished_at=now
        )
    skipped = ReviewLease.objects.filter(
        comparison=OuterRef("pk"), reviewer=reviewer, status=ReviewLeaseStatus.SKIPPED
    )
    for _ in range(PICK_ATTEMPTS):
        candidates = list(
            review_queue(project)
            .filter(~Q(_taken(now)), ~Q(Exists(skipped)))
            .values_list("pk", flat=True)[:PICK_WINDOW]
        )
        if not candidates:
            return None
        try:
            with transaction.atomic():
                lease = _lease_first_free(reviewer, project, candidates, now=now)
        except _Changed:
            continue
        except IntegrityError:
            # A racing pick leased the same row first (or this reviewer's other tab did): the
            # unique constraints rolled ours back. Look again.
            lease = _live(project, reviewer)
            if lease is not None:
                return lease
            continue
        if lease is not None:
            return lease
    return None


class _Changed(Exception):
    """The locked row was adjudicated or leased since it was read; roll back and look again."""


def _lease_first_free(
    reviewer, project: Project, candidates: list[int], *, now
) -> ReviewLease | None:
    # Lock one row: the first candidate nobody else holds locked right now.
    comparison = (
        Comparison.objects.filter(pk__in=candidates)
        .filter(~Q(_taken(now)))
        .order_by(F("review_requested_at").desc(nulls_last=True), "-priority", "id")
        .select_for_update(skip_locked=True, no_key=True)
        .first()
    )
    if comparison is None:
        return None
    # Whoever adjudicates or leases it holds this lock until they commit, so a statement run
    # now (a fresh snapshot) sees what they did; the locking read's snapshot may predate it.
    still_free = (
        Comparison.objects.filter(pk=comparison.pk)
        .filter(_awaiting_verdict(), ~Q(_taken(now)))
        .exists()
    )
    if not still_free:
        raise _Changed
    ReviewLease.objects.filter(comparison=comparison, status=ACTIVE).update(
        status=ReviewLeaseStatus.EXPIRED, finished_at=now
    )
    return ReviewLease.objects.create(
        project=project,
        comparison=comparison,
        reviewer=reviewer,
        # Half the reviewers see the pair the other way round, as raters do.
        swapped=(comparison.pk + reviewer.pk) % 2 == 1,
        leased_at=now,
        expires_at=now + timedelta(seconds=project.lease_seconds),
    )


def skip_review(lease: ReviewLease) -> None:
    """Give the item back; this reviewer is not offered it again."""
    ReviewLease.objects.filter(pk=lease.pk, status=ACTIVE).update(
        status=ReviewLeaseStatus.SKIPPED, finished_at=timezone.now()
    )
    lease.status = ReviewLeaseStatus.SKIPPED


# --- verdicts ------------------------------------------------------------------------------


def majority_choice(comparison: Comparison) -> str | None:
    """The raters' majority on the comparison (counted judgments), or None without one."""
    votes = Judgment.objects.filter(comparison=comparison, counted=True).order_by("id")
    for cid, cast in votes_by_comparison(votes):
        verdicts, _ = aggregate(cid, cast, "majority")
        return verdicts[0].choice if verdicts else None
    return None


def adjudicate(comparison: Comparison, *, reviewer, choice: str, note: str = "") -> Adjudication:
    """Record a reviewer's verdict on a comparison: a choice of the project's scheme, or
    "exclude" (leave it out of exports). A new row that supersedes earlier ones; no judgment
    is touched. The reviewer's lease on the comparison, if any, ends.

    Raises PermissionDenied for someone who may not review the project, ValidationError (keys
    "choice", "note") for a verdict outside the scheme or an overlong note.
    """
    project = comparison.project
    if not may_review(reviewer, project):
        raise PermissionDenied("Only the project's reviewers and leads adjudicate.")
    errors: dict[str, list[str]] = {}
    allowed = [*project.allowed_choices(), ReviewVerdict.EXCLUDE.value]
    if choice not in allowed:
        errors["choice"] = [f"Choose one of: {', '.join(allowed)}."]
    note = (note or "").strip()
    longest = settings.RATERHUB_RATIONALE_MAX_CHARS
    if len(note) > longest:
        errors["note"] = [f"Keep the note to {longest:,} characters ({len(note):,} now)."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        adjudication = Adjudication.objects.create(
            project=project,
            comparison=comparison,
            reviewer=reviewer,
            choice=choice,
            note=note,
            majority_choice=majority_choice(comparison),
        )
        ReviewLease.objects.filter(comparison=comparison, reviewer=reviewer, status=ACTIVE).update(
            status=ReviewLeaseStatus.DONE, finished_at=adjudication.created_at
        )
    return adjudication


def adjudicate_lease(lease: ReviewLease, *, choice: str, note: str = "") -> Adjudication | None:
    """The review page's submit: adjudicate the lease's comparison once. A second submit of
    the same lease (a double click, a retried request) records nothing and returns None."""
    with transaction.atomic():
        # The comparison's lock first, as the pick takes it: a pick waiting on it (or skipping
        # it) then sees this verdict once it is committed.
        Comparison.objects.select_for_update(no_key=True).filter(pk=lease.comparison_id).first()
        current = ReviewLease.objects.select_for_update(no_key=True).get(pk=lease.pk)
        if current.status not in (ACTIVE, ReviewLeaseStatus.EXPIRED):
            return None
        if current.status == ReviewLeaseStatus.EXPIRED and (
            ReviewLease.objects.filter(comparison_id=lease.comparison_id, status=ACTIVE)
            .exclude(reviewer_id=lease.reviewer_id)
            .exists()
        ):
            raise ValidationError(
                {NON_FIELD_ERRORS: ["Your time on this item ran out and another reviewer has it."]}
            )
        adjudication = adjudicate(
            lease.comparison, reviewer=lease.reviewer, choice=choice, note=note
        )
        if current.status == ReviewLeaseStatus.EXPIRED:  # adjudicate ended an active one
            ReviewLease.objects.filter(pk=lease.pk).update(
                status=ReviewLeaseStatus.DONE, finished_at=adjudication.created_at
            )
    lease.status = ReviewLeaseStatus.DONE
    return adjudication


# --- what the review page and the dashboard read ---------------------------------------------


def quality_by_rater(project: Project) -> dict[int, float | None]:
    """Each rater's quality score from the latest metrics snapshot (one query, one JSON key)."""
    raters = (
        MetricsSnapshot.objects.filter(project=project)
        .order_by("-computed_at", "-id")
        .values_list("data__raters", flat=True)
        .first()
    )
    if isinstance(raters, str):  # some backends hand back the JSON text of a key lookup
        raters = json.loads(raters)
    return {row["id"]: row.get("quality") for row in raters or []}


def review_summary(project: Project) -> dict:
    """The dashboard's review figures: the backlog, verdicts per reviewer, and how often a
    verdict overturned the raters' majority (over choices given where there was one;
    exclusions are counted apart)."""
    adjudications = Adjudication.objects.filter(project=project)
    # An exclusion drops the item rather than overturning its label: it counts in neither.
    over_majority = Q(majority_choice__isnull=False) & ~Q(choice=ReviewVerdict.EXCLUDE)
    overturned = over_majority & ~Q(choice=F("majority_choice"))
    per_reviewer = list(
        adjudications.order_by()
        .values("reviewer__email")
        .annotate(
            verdicts=Count("pk"),
            excluded=Count("pk", filter=Q(choice=ReviewVerdict.EXCLUDE)),
            overturned=Count("pk", filter=overturned),
            over_majority=Count("pk", filter=over_majority),
        )
        .order_by("-verdicts", "reviewer__email")
    )
    totals = adjudications.aggregate(
        verdicts=Count("pk"),
        overturned=Count("pk", filter=overturned),
        over_majority=Count("pk", filter=over_majority),
    )
    over = totals["over_majority"]
    return {
        "backlog": review_queue(project).count(),
        "verdicts": totals["verdicts"],
        "overturned": totals["overturned"],
        "overturn_rate": totals["overturned"] / over if over else None,
        "per_reviewer": [
            {
                "reviewer": row["reviewer__email"],
                "verdicts": row["verdicts"],
                "excluded": row["excluded"],
                "overturned": row["overturned"],
                "overturn_rate": row["overturned"] / row["over_majority"]
                if row["over_majority"]
                else None,
            }
            for row in per_reviewer
        ],
    }
