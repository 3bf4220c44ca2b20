"""The rating domain: projects, comparisons and their responses, leases, judgments, import and
export jobs.

Integrity lives in the database (unique and check constraints), so that no code path, admin
edit or concurrent request can store a second lease of one comparison for one rater, a second
current judgment for one lease, or a value outside an enumeration.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone


class Choice(models.TextChoices):
    """A judgment's verdict, always in canonical order: "a" is the first imported response."""

    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Strength(models.TextChoices):
    SLIGHTLY = "slightly", "Slightly better"
    CLEARLY = "clearly", "Clearly better"
    MUCH = "much", "Much better"


class Flag(models.TextChoices):
    UNSAFE = "unsafe", "Unsafe content"
    CANNOT_JUDGE = "cannot_judge", "Cannot judge"


def count_for_project(qs: models.QuerySet) -> Coalesce:
    """The number of rows of `qs` (filtered on an outer project) as a correlated subquery, 0 if none.

    One subquery per figure keeps a list of projects at one SELECT whatever the row counts:
    joining the counted rows into the outer query would multiply them.
    """
    counted = qs.order_by().values("project").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=models.IntegerField()), 0)


MAX_CRITERIA = 10
MAX_CRITERION_CHARS = 40
MAX_CRITERION_HELP_CHARS = 300


def validate_criteria(value) -> None:
    """A rating scheme's criteria: a list of at most MAX_CRITERIA distinct, non-empty names
    of at most MAX_CRITERION_CHARS characters (the rating page shows one row per name)."""
    example = 'a list of names, e.g. ["helpfulness", "honesty"]'
    if not isinstance(value, list):
        raise ValidationError(f"Criteria must be {example}.", code="criteria")
    if len(value) > MAX_CRITERIA:
        raise ValidationError(f"At most {MAX_CRITERIA} criteria.", code="criteria")
    seen: set[str] = set()
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"Each criterion must be a non-empty name: {example}.")
        if len(name) > MAX_CRITERION_CHARS:
            raise ValidationError(
                f"“{name[:20]}…” is longer than {MAX_CRITERION_CHARS} characters.",
                code="criteria",
            )
        key = name.strip().casefold()
        if key in seen:
            raise ValidationError(f"“{name}” is listed twice.", code="criteria")
        seen.add(key)


def validate_criteria_help(value) -> None:
    """Help texts of a scheme's criteria: {name: text}, each text at most
    MAX_CRITERION_HELP_CHARS characters (the rating page shows it under the criterion)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError("Criteria help must map criterion names to text.", code="criteria")
    for name, text in value.items():
        if len(text) > MAX_CRITERION_HELP_CHARS:
            raise ValidationError(
                f"The help text of “{name}” is longer than {MAX_CRITERION_HELP_CHARS} characters.",
                code="criteria",
            )


class JSONTypeOf(models.Func):
    """The JSON type name of a JSONField's value ("array", "object", …), in the database."""

    output_field = models.CharField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSON_TYPE", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_TYPEOF", **extra)


def start_of_today() -> datetime:
    """Midnight in the site's time zone: where every "done today" count starts."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def made_today() -> Q:
    """Judgments made since start_of_today()."""
    return Q(created_at__gte=start_of_today())


class ProjectQuerySet(models.QuerySet):
    def rateable_by(self, user):
        return self.filter(raters=user)

    def visible_to(self, user):
        """Projects a user may manage: all for superusers, the ones they lead for staff, else none.

        Every lead-facing page (admin, dashboard, export downloads) scopes through this.
        """
        if user.is_superuser:
            return self
        if not user.is_staff:
            return self.none()
        return self.filter(leads=user)

    def with_progress(self):
        """Each project's progress, as subqueries (one SELECT however many rows they count):
        progress_comparisons (regular ones), progress_complete, progress_judgments (counted)
        and progress_target (judgment_target summed). The admin's list and the API read it."""
        regular = Comparison.objects.filter(project=OuterRef("pk")).regular()
        per_project = regular.order_by().values("project")
        judged = per_project.annotate(n=Sum("judged_count")).values("n")
        target = per_project.annotate(n=Sum(judgment_target())).values("n")
        return self.annotate(
            progress_comparisons=count_for_project(regular),
            progress_complete=count_for_project(regular.complete()),
            progress_judgments=Coalesce(Subquery(judged, output_field=models.IntegerField()), 0),
            progress_target=Coalesce(Subquery(target, output_field=models.IntegerField()), 0),
        )

    def reviewable_by(self, user):
        """Projects whose review queue a user may work: all for superusers; for others the
        ones they were given the reviewer role in, and, for staff, the ones they lead."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        who = Q(pk__in=Project.reviewers.through.objects.filter(user=user).values("project"))
        if user.is_staff:
            who |= Q(pk__in=Project.leads.through.objects.filter(user=user).values("project"))
        return self.filter(who)


class TaskType(models.TextChoices):
    """What raters do with a comparison: pick from its first two responses, or rank them all."""

    PAIRWISE = "pairwise", "Pairwise (the first two responses)"
    RANKING = "ranking", "Ranking (all 3 to 9 responses, best first)"


def json_array_or_null(field: str) -> Q:
    """A nullable JSONField holding SQL NULL or a JSON array."""
    return Q(**{f"{field}__isnull": True}) | models.lookups.Exact(JSONTypeOf(field), "array")


class ProjectStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


# The adaptive rule decides on one choice (a, b, tie, both bad); a ranking has no such choice.
RANKING_NEEDS_FIXED = "A ranking project uses the fixed overlap policy."


class OverlapPolicy(models.TextChoices):
    FIXED = "fixed", "Fixed: every comparison gets Overlap judgments"
    ADAPTIVE = "adaptive", "Adaptive: stop once the leading choice cannot be overturned"


class RationaleMode(models.TextChoices):
    OFF = "off", "Off"
    OPTIONAL = "optional", "Optional"
    REQUIRED = "required", "Required"


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.CharField(
        max_length=500, blank=True, help_text="One line shown to raters."
    )
    instructions = models.TextField(blank=True, help_text="Markdown shown above the rating form.")
    status = models.CharField(max_length=16, choices=ProjectStatus, default=ProjectStatus.ACTIVE)
    task_type = models.CharField(
        max_length=16,
        choices=TaskType,
        default=TaskType.PAIRWISE,
        help_text="Ranking projects need 3 to 9 responses on every comparison.",
    )

    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy, default=OverlapPolicy.FIXED
    )
    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Fixed policy: distinct raters who judge each comparison."
    )
    min_overlap = models.PositiveSmallIntegerField(
        default=2, help_text="Adaptive policy: judgments every comparison gets."
    )
    max_overlap = models.PositiveSmallIntegerField(
        default=3,
        help_text="Adaptive policy: judgments at most, while the leading choice could be overturned.",
    )
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long a rater holds a comparison before it is offered to others."
    )
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of picks that are gold comparisons (0 to 1)."
    )

    # The rating scheme. "a" and "b" are always allowed.
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    use_strength = models.BooleanField(default=False)
    criteria = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_criteria],
        help_text='Per-criterion choices, e.g. ["helpfulness", "harmlessness"].',
    )
    criteria_help = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_criteria_help],
        help_text="{criterion name: a line of help shown to raters under it}.",
    )
    rationale = models.CharField(
        max_length=16, choices=RationaleMode, default=RationaleMode.OPTIONAL
    )
    rationale_min_chars = models.PositiveIntegerField(default=0)
    break_reminder_minutes = models.PositiveIntegerField(
        default=0,
        help_text="Remind raters to take a break after this many minutes of rating (0: never).",
    )

    # Rater-quality thresholds (metrics flags and the export's quality filter).
    min_seconds_per_judgment = models.FloatField(
        default=5.0, help_text="Raters whose median time is below this are flagged as too fast."
    )
    gold_accuracy_threshold = models.FloatField(default=0.7)
    position_bias_threshold = models.FloatField(
        default=0.15, help_text="Flag raters whose share of left-hand picks is this far from 0.5."
    )
    show_gold_accuracy_to_raters = models.BooleanField(default=False)
    gold_feedback = models.BooleanField(
        default=False,
        help_text="After a gold comparison, tell the rater whether they matched it, with the "
        "gold's explanation.",
    )

    # What needs a second look (comparisons.review): each rule off when empty or unticked.
    review_min_agreement = models.FloatField(
        null=True,
        blank=True,
        help_text="Review complete comparisons whose agreement (share of votes for the leading "
        "choice) is below this, e.g. 0.67. Empty: off.",
    )
    review_splits = models.BooleanField(
        default=True, help_text="Review complete comparisons whose votes have no majority."
    )
    review_flagged = models.BooleanField(
        default=True, help_text="Review comparisons a rater flagged (unsafe, cannot judge)."
    )
    review_gold_missed = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=2,
        help_text="Review gold comparisons that at least this many raters missed (the gold may "
        "be wrong). Empty: off.",
    )

    raters = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="rating_projects"
    )
    leads = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="led_projects"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="reviewing_projects",
        help_text="Members who may adjudicate at /review/<slug>/ (leads always may).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_gte_1"),
            models.CheckConstraint(
                condition=Q(min_overlap__gte=1, max_overlap__gte=F("min_overlap")),
                name="project_overlap_bounds",
            ),
            models.CheckConstraint(
                condition=Q(overlap_policy__in=OverlapPolicy.values),
                name="project_overlap_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(lease_seconds__gte=30), name="project_lease_gte_30s"
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ProjectStatus.values), name="project_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(rationale__in=RationaleMode.values), name="project_rationale_valid"
            ),
            models.CheckConstraint(
                condition=Q(task_type__in=TaskType.values), name="project_task_type_valid"
            ),
            # The rest of validate_criteria needs Python; the database at least keeps a list.
            models.CheckConstraint(
                condition=models.lookups.Exact(JSONTypeOf("criteria"), "array"),
                name="project_criteria_is_a_list",
            ),
            models.CheckConstraint(
                condition=Q(review_min_agreement__isnull=True)
                | Q(review_min_agreement__gte=0, review_min_agreement__lte=1),
                name="project_review_min_agreement_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("rate_project", args=[self.slug])

    @property
    def is_active(self) -> bool:
        return self.status == ProjectStatus.ACTIVE

    def clean(self) -> None:
        super().clean()
        if self.min_overlap is not None and self.min_overlap < 1:
            raise ValidationError({"min_overlap": "At least 1."})
        if (
            self.min_overlap is not None
            and self.max_overlap is not None
            and self.max_overlap < self.min_overlap
        ):
            raise ValidationError(
                {"max_overlap": "Must be at least the minimum overlap (1 ≤ min ≤ max)."}
            )
        if self.task_type == TaskType.RANKING and self.overlap_policy == OverlapPolicy.ADAPTIVE:
            raise ValidationError({"overlap_policy": RANKING_NEEDS_FIXED})

    def overlap_bounds(self) -> tuple[int, int]:
        """(minimum, maximum) counted judgments per comparison for comparisons.overlap's rule:
        the fixed policy is the rule with both at `overlap`."""
        if self.overlap_policy == OverlapPolicy.ADAPTIVE:
            return self.min_overlap, self.max_overlap
        return self.overlap, self.overlap

    @property
    def initial_slots(self) -> int:
        """open_slots of a new regular comparison: the rule's minimum, leased all at once
        (comparisons.overlap.target of no judgments)."""
        return self.overlap_bounds()[0]

    @property
    def max_judgments(self) -> int:
        """The most counted judgments a comparison may get under the policy."""
        return self.overlap_bounds()[1]

    @property
    def is_ranking(self) -> bool:
        return self.task_type == TaskType.RANKING

    def allowed_choices(self) -> list[str]:
        choices = [Choice.A.value, Choice.B.value]
        if self.allow_tie:
            choices.append(Choice.TIE.value)
        if self.allow_both_bad:
            choices.append(Choice.BOTH_BAD.value)
        return choices

    def unserved_gold_count(self) -> int:
        """Gold comparisons the queue never serves because the gold rate is 0 (no query then
        when it is not): the project page warns, as the import did."""
        if self.gold_rate:
            return 0
        return self.comparisons.filter(gold_choice__isnull=False).count()


def judgment_target() -> models.Case:
    """A regular comparison's share of its project's judgment target, as an expression over
    Comparison rows: the counted judgments of a complete one; else the least it will still
    take (comparisons.overlap.target: the policy's minimum, or one more). Summed, the fixed
    policy's regular comparisons x overlap; for the adaptive policy it grows as work is done.
    """
    low = models.Case(
        models.When(project__overlap_policy=OverlapPolicy.ADAPTIVE, then=F("project__min_overlap")),
        default=F("project__overlap"),
        output_field=models.IntegerField(),
    )
    return models.Case(
        models.When(completed_at__isnull=False, then=F("judged_count")),
        models.When(judged_count__lt=low, then=low),
        default=F("judged_count") + 1,
        output_field=models.IntegerField(),
    )


class ComparisonQuerySet(models.QuerySet):
    def regular(self):
        return self.filter(gold_choice__isnull=True)

    def gold(self):
        return self.filter(gold_choice__isnull=False)

    def complete(self):
        """Regular comparisons with judgments enough under their project's overlap policy
        (comparisons.overlap's rule, recorded by the queue in completed_at)."""
        return self.filter(completed_at__isnull=False)

    def incomplete(self):
        return self.filter(completed_at__isnull=True)


class Comparison(models.Model):
    """One prompt (a chat) and two or more responses; pairwise rating compares the first two.

    Queue counters, kept in step by comparisons.queue inside the same transaction as the row
    they count (F() updates):
      open_slots   comparisons.overlap.target minus (active leases + counted judgments); the
                   pick index covers only rows where it is positive, so finished work costs
                   the pick nothing.
      judged_count counted judgments (progress; "finish what has started" ordering).
      lead_margin  the leading choice's counted judgments minus the runner-up's.
      completed_at when the counted judgments first satisfied the project's overlap rule
                   (null while they do not: the one meaning of "complete"; gold never is).
      lease_count  leases ever handed out (alternates the display order across raters).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    external_id = models.CharField(max_length=200)
    prompt = models.JSONField(help_text="List of {role, content} messages.")
    metadata = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    gold_choice = models.CharField(max_length=16, choices=Choice, null=True, blank=True)
    gold_explanation = models.TextField(
        blank=True,
        default="",
        db_default="",  # rows written by COPY (the benchmarks' seeder) leave it out
        help_text="Why the gold answer is right (shown to raters with gold feedback).",
    )
    review_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a lead last sent it to review by hand."
    )
    # A ranking project's gold answer, as tiers (comparisons.ranking). gold_choice then holds
    # its verdict on a against b, so whatever tells gold apart (the queue's pick, gold turns)
    # works unchanged for both task types.
    gold_ranking = models.JSONField(null=True, blank=True)

    open_slots = models.IntegerField(default=0)
    judged_count = models.IntegerField(default=0)
    lead_margin = models.IntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    lease_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="comparison_external_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(gold_choice__isnull=True) | Q(gold_choice__in=Choice.values),
                name="comparison_gold_choice_valid",
            ),
            models.CheckConstraint(
                condition=Q(judged_count__gte=0), name="comparison_judged_count_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(gold_ranking__isnull=True)
                | (Q(gold_choice__in=["a", "b", "tie"]) & json_array_or_null("gold_ranking")),
                name="comparison_gold_ranking_valid",
            ),
        ]
        indexes = [
            # The queue's pick: open regular comparisons of a project in pick order.
            models.Index(
                F("project"),
                F("priority").desc(),
                F("judged_count").desc(),
                F("id"),
                name="comparison_pick_idx",
                condition=Q(open_slots__gt=0, gold_choice__isnull=True),
            ),
            models.Index(
                fields=["project", "id"],
                name="comparison_gold_idx",
                condition=Q(gold_choice__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_gold(self) -> bool:
        return self.gold_choice is not None


class Response(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="responses")
    position = models.PositiveSmallIntegerField(help_text="0 is response A, 1 is response B.")
    model_name = models.CharField(max_length=200)
    content = models.TextField()

    class Meta:
        ordering = ["comparison_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "position"], name="response_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id}/{'ABCDEFGH'[self.position] if self.position < 8 else self.position}"


class AssignmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=AssignmentStatus.ACTIVE)


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"
    # A lead's actions, not the rater's skips. Released: the comparison went back to the
    # queue, this rater included. Kept away: back to the queue, this rater never again.
    RELEASED = "released", "Released by a lead"
    KEPT_AWAY = "kept_away", "Kept away by a lead"


class Assignment(models.Model):
    """A lease of one comparison to one rater, and the order in which it was shown."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=16, choices=AssignmentStatus, default=AssignmentStatus.ACTIVE
    )
    swapped = models.BooleanField(
        default=False, help_text="Shown as B then A (Response 1 is canonical B)."
    )
    # Ranking projects: the response keys in the order shown (comparisons.ranking.display_order);
    # swapped then says whether b came before a. Empty for pairwise leases.
    shown_order = models.JSONField(null=True, blank=True)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            # A released lease does not count as having had the comparison: it may come back.
            models.UniqueConstraint(
                fields=["comparison", "rater"],
                condition=~Q(status="released"),
                name="assignment_once_per_rater",
            ),
            # A rater holds at most one live lease per project: two racing "next" calls can't both lease.
            models.UniqueConstraint(
                fields=["project", "rater"],
                condition=Q(status="active"),
                name="assignment_one_active_per_rater",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AssignmentStatus.values), name="assignment_status_valid"
            ),
            models.CheckConstraint(
                condition=json_array_or_null("shown_order"), name="assignment_shown_order_list"
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "expires_at"],
                name="assignment_active_expiry_idx",
                condition=Q(status="active"),
            ),
            models.Index(fields=["rater", "project", "status"], name="assignment_rater_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} → {self.comparison}"

    @property
    def display_order(self) -> list[str]:
        if self.shown_order:
            return list(self.shown_order)
        return ["b", "a"] if self.swapped else ["a", "b"]

    def canonical_choice(self, shown_choice: str) -> str:
        """Map a choice made on screen ("1" is the left response) to canonical a/b."""
        left, right = self.display_order
        return {"1": left, "2": right}.get(shown_choice, shown_choice)


class JudgmentQuerySet(models.QuerySet):
    def current(self):
        """The judgments in force: a revision replaces the one it supersedes in every count,
        export and metric, so those read judgments through this."""
        return self.filter(superseded_at__isnull=True)


class Judgment(models.Model):
    """A rater's answer. Never edited in place; never deleted with its rater's account.

    A revision (undo, then submit again) is a new row: the old one is kept and only marked
    superseded, and the database allows one current judgment per assignment.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="judgments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    choice = models.CharField(
        max_length=16, choices=Choice, help_text="For a ranking: its verdict on a against b."
    )
    ranking = models.JSONField(
        null=True, blank=True, help_text='Ranking projects: tiers, best first: [["c"], ["a", "b"]].'
    )
    strength = models.CharField(max_length=16, choices=Strength, null=True, blank=True)
    criteria = models.JSONField(default=dict, blank=True, help_text="{criterion: canonical choice}")
    rationale = models.TextField(blank=True)
    flags = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    swapped = models.BooleanField(
        default=False, help_text="Copied from the lease: display order shown."
    )
    is_gold = models.BooleanField(default=False)
    is_late = models.BooleanField(
        default=False,
        help_text="Submitted after the lease expired and its slot went to another rater.",
    )
    counted = models.BooleanField(default=True, help_text="Counts toward the comparison's overlap.")
    supersedes = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
        help_text="The judgment this revision replaced.",
    )
    superseded_at = models.DateTimeField(
        null=True, blank=True, help_text="When a revision replaced this judgment."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JudgmentQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # One current judgment per lease, whatever the code path: a revision marks the old
            # one superseded in the same transaction as it inserts the new one.
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(superseded_at__isnull=True),
                name="judgment_one_current_per_assignment",
            ),
            models.CheckConstraint(
                condition=Q(choice__in=Choice.values), name="judgment_choice_valid"
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__in=Strength.values),
                name="judgment_strength_valid",
            ),
            models.CheckConstraint(
                condition=~Q(is_late=True, counted=True), name="judgment_late_not_counted"
            ),
            # A ranking's choice is derived from it (a, b or tie), never "both bad".
            models.CheckConstraint(
                condition=Q(ranking__isnull=True)
                | (Q(choice__in=["a", "b", "tie"]) & json_array_or_null("ranking")),
                name="judgment_ranking_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="judgment_project_created_idx"),
            models.Index(fields=["project", "rater"], name="judgment_project_rater_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on {self.comparison}: {self.choice}"


class ReviewVerdict(models.TextChoices):
    """An adjudication's verdict: a canonical choice, or the comparison left out of exports."""

    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"
    EXCLUDE = "exclude", "Excluded (a bad item)"


class AdjudicationQuerySet(models.QuerySet):
    def latest_per_comparison(self):
        """Only the adjudication in force of each comparison: the newest one (a later one
        supersedes an earlier one; both are kept)."""
        newer = Adjudication.objects.filter(
            comparison=OuterRef("comparison"), pk__gt=OuterRef("pk")
        )
        return self.filter(~Exists(newer))


class Adjudication(models.Model):
    """A reviewer's verdict on a comparison. Its own row: it never edits a judgment, and a later
    adjudication of the same comparison supersedes this one without deleting it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="adjudications")
    comparison = models.ForeignKey(
        Comparison, on_delete=models.CASCADE, related_name="adjudications"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    choice = models.CharField(max_length=16, choices=ReviewVerdict)
    note = models.TextField(blank=True)
    majority_choice = models.CharField(
        max_length=16,
        choices=Choice,
        null=True,
        blank=True,
        help_text="The raters' majority when the verdict was given (empty: no majority).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AdjudicationQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(choice__in=ReviewVerdict.values), name="adjudication_choice_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "comparison"], name="adjudication_comparison_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} on {self.comparison}: {self.choice}"

    @property
    def overturned(self) -> bool:
        """Whether the verdict differs from the majority it was given over."""
        return (
            self.majority_choice not in (None, self.choice) and self.choice != ReviewVerdict.EXCLUDE
        )


class ReviewLeaseStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DONE = "done", "Adjudicated"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class ReviewLease(models.Model):
    """A comparison in review held by one reviewer, like a rater's Assignment: at most one live
    lease per comparison and one per reviewer and project, enforced by the database."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_leases")
    comparison = models.ForeignKey(
        Comparison, on_delete=models.CASCADE, related_name="review_leases"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_leases"
    )
    status = models.CharField(
        max_length=16, choices=ReviewLeaseStatus, default=ReviewLeaseStatus.ACTIVE
    )
    swapped = models.BooleanField(default=False, help_text="Shown as B then A.")
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison"],
                condition=Q(status="active"),
                name="reviewlease_one_active_per_comparison",
            ),
            models.UniqueConstraint(
                fields=["project", "reviewer"],
                condition=Q(status="active"),
                name="reviewlease_one_active_per_reviewer",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ReviewLeaseStatus.values), name="reviewlease_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} reviews {self.comparison}"

    @property
    def display_order(self) -> list[str]:
        return ["b", "a"] if self.swapped else ["a", "b"]


class JobStatus(models.TextChoices):
    """The life of a background job (exports and imports)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ExportFormat(models.TextChoices):
    """The export formats (names are a contract): the only list of them, with their traits."""

    TRL = "trl", "TRL preference (JSONL)"
    TRL_PARQUET = "trl-parquet", "TRL preference (Parquet)"
    TRL_KTO = "trl-kto", "TRL KTO unpaired (JSONL)"
    OPENAI_DPO = "openai-dpo", "OpenAI DPO (JSONL)"
    JUDGMENTS = "judgments", "Raw judgments (JSONL)"
    JUDGMENTS_PARQUET = "judgments-parquet", "Raw judgments (Parquet)"
    JUDGMENTS_CSV = "judgments-csv", "Raw judgments (CSV)"
    RANKINGS = "rankings", "Rankings, one per judgment (JSONL)"

    @property
    def is_raw(self) -> bool:
        """One row per judgment, every raw field; the others aggregate votes into preferences."""
        return self in (self.JUDGMENTS, self.JUDGMENTS_PARQUET, self.JUDGMENTS_CSV, self.RANKINGS)

    @property
    def extension(self) -> str:
        if self in (self.TRL_PARQUET, self.JUDGMENTS_PARQUET):
            return "parquet"
        return "csv" if self == self.JUDGMENTS_CSV else "jsonl"


class ExportJob(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=32, choices=ExportFormat)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    row_count = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/", blank=True, max_length=500)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker running the job."
    )
    sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its task last reached the broker; empty while it still has to be sent.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="exportjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=ExportFormat.values), name="exportjob_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.format} #{self.pk}"

    def download_name(self, *, manifest: bool = False) -> str:
        """`<project>-<format>-<date>.<ext>` (the date it finished, in the site's time zone),
        or its `.manifest.json`: a name that says what a downloaded file is."""
        when = timezone.localdate(self.finished_at or self.created_at or timezone.now())
        stem = f"{self.project.slug}-{self.format}-{when.isoformat()}"
        return (
            f"{stem}.manifest.json" if manifest else f"{stem}.{ExportFormat(self.format).extension}"
        )

    def rows_summary(self) -> str:
        """The manifest's counts in a line ("5 rows from 9 judgments; dropped tie 1"), or ""."""
        counts = (self.manifest or {}).get("counts")
        if not counts:
            return ""
        dropped = ", ".join(f"{k} {v}" for k, v in counts.get("rows_dropped", {}).items())
        summary = f"{counts['rows_written']} rows from {counts['judgments']} judgments"
        return f"{summary}; dropped {dropped}" if dropped else summary


class ImportJob(models.Model):
    """An upload too large to import within a request, imported by a Celery job.

    The upload stays in storage (under imports/, never served) until the job has finished; the
    outcome is the import's own: counts, or the first bad lines and how many there were.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)  # as uploaded; never a storage path
    upload = models.FileField(
        upload_to="imports/",
        blank=True,
        max_length=500,
        help_text="The stored upload; emptied once the job has finished and deleted it.",
    )
    skip_existing = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=JobStatus, default=JobStatus.QUEUED)
    total_lines = models.PositiveIntegerField(
        default=0, help_text="Lines in the upload, counted when it was stored."
    )
    lines_read = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    gold_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0, help_text="Bad lines, all of them.")
    errors = models.JSONField(
        default=list, blank=True, help_text="The first bad lines: [{line, message, code}]."
    )
    error = models.TextField(blank=True, help_text="Why the job failed, if not for a bad line.")
    warnings = models.JSONField(
        default=list, blank=True, help_text="The import's warnings (imports.import_warnings)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="importjob_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} import #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class MetricsSnapshot(models.Model):
    """Precomputed agreement, rater quality and leaderboard, so dashboards load in constant time."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="metrics_snapshots")
    computed_at = models.DateTimeField(auto_now_add=True)
    duration_ms = models.PositiveIntegerField(default=0)
    judgment_count = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"
        indexes = [
            models.Index(fields=["project", "-computed_at"], name="metrics_project_latest_idx")
        ]

    def __str__(self) -> str:
        return f"{self.project} metrics at {self.computed_at:%Y-%m-%d %H:%M}"
