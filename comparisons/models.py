"""The rating domain: projects, comparisons and their responses, leases, judgments, exports.

Integrity lives in the database (unique and check constraints), so that no code path, admin
edit or concurrent request can store a second lease of one comparison for one rater, a second
judgment for one lease, or a value outside an enumeration.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.db import connection, models
from django.db.models import Count, F, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse


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


# --- hand-written SQL on the rating page's hot path ----------------------------------------
# A submit runs a dozen statements; for the few that run on every request the ORM spent more
# CPU building the SQL than PostgreSQL spent answering it. These two helpers let such a query
# select whole model rows and still get instances through Django's own value converters.


def select_list(model: type[models.Model], alias: str) -> str:
    """The model's concrete columns, qualified by `alias`, in the order from_row expects."""
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def rater_is_member_sql(project_alias: str) -> str:
    """SQL that holds when the user given as its one parameter rates the project `project_alias`
    (the hand-written form of ProjectQuerySet.rateable_by)."""
    members = Project.raters.field
    return (
        f'EXISTS (SELECT 1 FROM "{members.m2m_db_table()}" m '
        f'WHERE m."{members.m2m_column_name()}" = {project_alias}.id '
        f'AND m."{members.m2m_reverse_name()}" = %s)'
    )


@functools.cache
def _columns(model: type[models.Model]) -> list:
    return [f.get_col(model._meta.db_table) for f in model._meta.concrete_fields]


def from_row(row: tuple, *model_types: type[models.Model]) -> list[models.Model]:
    """Instances of `model_types` from a row that selected each one's select_list in turn."""
    instances, start = [], 0
    for model in model_types:
        cols = _columns(model)
        values = list(row[start : start + len(cols)])
        for i, col in enumerate(cols):
            for convert in connection.ops.get_db_converters(col) + col.get_db_converters(
                connection
            ):
                values[i] = convert(values[i], col, connection)
        instances.append(model.from_db(connection.alias, None, values))
        start += len(cols)
    return instances


@functools.cache
def _insert_sql(model: type[models.Model]) -> tuple[str, list]:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    table, pk = model._meta.db_table, model._meta.pk.column
    return f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) RETURNING "{pk}"', fields


def insert(instance: models.Model) -> models.Model:
    """Save a new instance as Model.save() would (each field's pre_save, such as auto_now_add,
    and its own conversion for the database), from SQL built once per model; sets its pk.

    Sends no model signals; nothing listens to the models it is used for.
    """
    sql, fields = _insert_sql(type(instance))
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


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


class ProjectStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class RationaleMode(models.TextChoices):
    OFF = "off", "Off"
    OPTIONAL = "optional", "Optional"
    REQUIRED = "required", "Required"


class Project(models.Model):
    Status = ProjectStatus

    Rationale = RationaleMode

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.CharField(
        max_length=500, blank=True, help_text="One line shown to raters."
    )
    instructions = models.TextField(blank=True, help_text="Markdown shown above the rating form.")
    status = models.CharField(max_length=16, choices=Status, default=Status.ACTIVE)

    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Distinct raters who judge each comparison."
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
        help_text='Per-criterion choices, e.g. ["helpfulness", "harmlessness"].',
    )
    rationale = models.CharField(max_length=16, choices=Rationale, default=Rationale.OPTIONAL)
    rationale_min_chars = models.PositiveIntegerField(default=0)

    # Rater-quality thresholds (metrics flags and the export's quality filter).
    min_seconds_per_judgment = models.FloatField(
        default=5.0, help_text="Raters whose median time is below this are flagged as too fast."
    )
    gold_accuracy_threshold = models.FloatField(default=0.7)
    position_bias_threshold = models.FloatField(
        default=0.15, help_text="Flag raters whose share of left-hand picks is this far from 0.5."
    )
    show_gold_accuracy_to_raters = models.BooleanField(default=False)

    raters = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="rating_projects"
    )
    leads = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="led_projects"
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
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("rate_project", args=[self.slug])

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def allowed_choices(self) -> list[str]:
        choices = [Choice.A.value, Choice.B.value]
        if self.allow_tie:
            choices.append(Choice.TIE.value)
        if self.allow_both_bad:
            choices.append(Choice.BOTH_BAD.value)
        return choices


class ComparisonQuerySet(models.QuerySet):
    def regular(self):
        return self.filter(gold_choice__isnull=True)

    def gold(self):
        return self.filter(gold_choice__isnull=False)


class Comparison(models.Model):
    """One prompt (a chat) and two or more responses; pairwise rating compares the first two.

    Queue counters, kept in step by comparisons.queue inside the same transaction as the row
    they count (F() updates):
      open_slots   overlap minus (active leases + counted judgments); the pick index covers
                   only rows where it is positive, so finished work costs the pick nothing.
      judged_count counted judgments (progress; "finish what has started" ordering).
      lease_count  leases ever handed out (alternates the display order across raters).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    external_id = models.CharField(max_length=200)
    prompt = models.JSONField(help_text="List of {role, content} messages.")
    metadata = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    gold_choice = models.CharField(max_length=16, choices=Choice, null=True, blank=True)

    open_slots = models.IntegerField(default=0)
    judged_count = models.IntegerField(default=0)
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
        ordering = ["comparison", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "position"], name="response_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison_id}/{'ABCDEFGH'[self.position] if self.position < 8 else self.position}"


class AssignmentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Assignment.Status.ACTIVE)


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A lease of one comparison to one rater, and the order in which it was shown."""

    Status = AssignmentStatus

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.ACTIVE)
    swapped = models.BooleanField(
        default=False, help_text="Shown as B then A (Response 1 is canonical B)."
    )
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "rater"], name="assignment_once_per_rater"
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
        return ["b", "a"] if self.swapped else ["a", "b"]

    def canonical_choice(self, shown_choice: str) -> str:
        """Map a choice made on screen ("1" is the left response) to canonical a/b."""
        left, right = self.display_order
        return {"1": left, "2": right}.get(shown_choice, shown_choice)


class Judgment(models.Model):
    """A rater's answer. Never edited in place; never deleted with its rater's account."""

    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgment")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    choice = models.CharField(max_length=16, choices=Choice)
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
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
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="judgment_project_created_idx"),
            models.Index(fields=["project", "rater"], name="judgment_project_rater_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on {self.comparison}: {self.choice}"


class ExportStatus(models.TextChoices):
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

    @property
    def is_raw(self) -> bool:
        """One row per judgment, every raw field; the others aggregate votes into preferences."""
        return self in (self.JUDGMENTS, self.JUDGMENTS_PARQUET, self.JUDGMENTS_CSV)

    @property
    def extension(self) -> str:
        if self in (self.TRL_PARQUET, self.JUDGMENTS_PARQUET):
            return "parquet"
        return "csv" if self == self.JUDGMENTS_CSV else "jsonl"


class ExportJob(models.Model):
    Status = ExportStatus

    Format = ExportFormat

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=32, choices=Format)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status, default=Status.QUEUED)
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
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExportStatus.values), name="exportjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=ExportFormat.values), name="exportjob_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.format} #{self.pk}"


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
