"""What the API reads and writes. Field names are a contract (DESIGN.md, "Token API")."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.models import Webhook, WebhookEvent
from api.webhooks import check_webhook_url
from comparisons.models import (
    RANKING_NEEDS_FIXED,
    Comparison,
    ExportFormat,
    ExportJob,
    ImportJob,
    JobStatus,
    OverlapPolicy,
    Project,
    TaskType,
)


class ProgressSerializer(serializers.Serializer):
    comparisons = serializers.IntegerField()
    complete = serializers.IntegerField()
    judgments = serializers.IntegerField()
    target = serializers.IntegerField()


class ProjectSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    # The database's check constraints, as validation (an IntegrityError would be a 500).
    overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    min_overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    max_overlap = serializers.IntegerField(min_value=1, max_value=100, required=False)
    reviewers = serializers.ListField(
        child=serializers.EmailField(),
        required=False,
        write_only=True,  # read back by to_representation
        help_text="E-mails of members (raters) given the reviewer role; leads always review.",
    )
    lease_seconds = serializers.IntegerField(min_value=30, max_value=7 * 24 * 3600, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    rationale_min_chars = serializers.IntegerField(min_value=0, max_value=10_000, required=False)
    min_seconds_per_judgment = serializers.FloatField(min_value=0, max_value=3600, required=False)
    gold_accuracy_threshold = serializers.FloatField(min_value=0, max_value=1, required=False)
    position_bias_threshold = serializers.FloatField(min_value=0, max_value=0.5, required=False)

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "description",
            "instructions",
            "status",
            "task_type",
            "overlap_policy",
            "overlap",
            "min_overlap",
            "max_overlap",
            "lease_seconds",
            "gold_rate",
            "allow_tie",
            "allow_both_bad",
            "use_strength",
            "criteria",
            "rationale",
            "rationale_min_chars",
            "min_seconds_per_judgment",
            "gold_accuracy_threshold",
            "position_bias_threshold",
            "reviewers",
            "created_at",
            "updated_at",
            "progress",
        ]
        read_only_fields = ["created_at", "updated_at"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, project: Project) -> dict:
        # The annotations of Project.objects.with_progress() (the views read projects with it).
        return {
            "comparisons": project.progress_comparisons,
            "complete": project.progress_complete,
            "judgments": project.progress_judgments,
            "target": project.progress_target,
        }

    def to_representation(self, project: Project) -> dict:
        data = super().to_representation(project)
        data["reviewers"] = sorted(user.email for user in project.reviewers.all())
        return data

    def validate(self, attrs: dict) -> dict:
        # 1 <= min_overlap <= max_overlap over the values the project will have (Project.clean).
        low = attrs.get("min_overlap", getattr(self.instance, "min_overlap", 2))
        high = attrs.get("max_overlap", getattr(self.instance, "max_overlap", 3))
        if high < low:
            raise serializers.ValidationError(
                {"max_overlap": ["Must be at least the minimum overlap (1 ≤ min ≤ max)."]}
            )
        task_type = attrs.get("task_type", getattr(self.instance, "task_type", TaskType.PAIRWISE))
        policy = attrs.get("overlap_policy", getattr(self.instance, "overlap_policy", None))
        if task_type == TaskType.RANKING and policy == OverlapPolicy.ADAPTIVE:
            raise serializers.ValidationError({"overlap_policy": [RANKING_NEEDS_FIXED]})
        return attrs

    def validate_reviewers(self, emails: list[str]) -> list:
        """The users named: each must already be a rater of this project (so a lead can name
        only people of their own projects, and an unknown address says no more than that)."""
        if self.instance is None:
            raise serializers.ValidationError("Add raters first; set reviewers with PATCH.")
        members = {u.email.lower(): u for u in self.instance.raters.all()}
        missing = [e for e in emails if e.lower() not in members]
        if missing:
            raise serializers.ValidationError(
                f"Not a rater of this project: {', '.join(sorted(missing))}."
            )
        return [members[e.lower()] for e in emails]

    def validate_criteria(self, value):
        # PostgreSQL's jsonb cannot store NUL; the model's validator checks the rest.
        if isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
            raise serializers.ValidationError("Criterion names may not contain NUL characters.")
        return value

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["slug"].read_only = True  # URLs and scripts use it: fixed once created
            fields["task_type"].read_only = True  # its comparisons were imported for it
        return fields


class ResponseItemSerializer(serializers.Serializer):
    model = serializers.CharField()
    content = serializers.CharField()


class ComparisonSerializer(serializers.ModelSerializer):
    responses = serializers.SerializerMethodField()
    gold = serializers.CharField(source="gold_choice", allow_null=True)
    judgments = serializers.IntegerField(
        source="judged_count", help_text="Counted judgments (late ones are not counted)."
    )

    class Meta:
        model = Comparison
        fields = [
            "id",
            "external_id",
            "prompt",
            "responses",
            "metadata",
            "priority",
            "gold",
            "judgments",
            "created_at",
        ]

    @extend_schema_field(ResponseItemSerializer(many=True))
    def get_responses(self, comparison: Comparison) -> list[dict]:
        return [{"model": r.model_name, "content": r.content} for r in comparison.responses.all()]


class UploadResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped = serializers.IntegerField()


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    message = serializers.CharField()


class UploadErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = LineErrorSerializer(many=True)
    error_count = serializers.IntegerField()


class JobCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    url = serializers.URLField()


class ImportJobSerializer(serializers.ModelSerializer):
    created = serializers.IntegerField(source="created_count")
    skipped = serializers.IntegerField(source="skipped_count")
    lines_read = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "total_lines",
            "lines_read",
            "created",
            "skipped",
            "error_count",
            "errors",
            "error",
            "created_at",
            "finished_at",
        ]

    def get_lines_read(self, job: ImportJob) -> int:
        from comparisons.imports import import_job_progress

        return import_job_progress(job)

    @extend_schema_field(LineErrorSerializer(many=True))
    def get_errors(self, job: ImportJob) -> list[dict]:
        return [{"line": e["line"], "message": e["message"]} for e in job.errors]


class JudgmentSerializer(serializers.Serializer):
    """The fields of the `judgments` export."""

    judgment_id = serializers.IntegerField()
    comparison_id = serializers.IntegerField()
    external_id = serializers.CharField()
    model_a = serializers.CharField(allow_blank=True, help_text="The model of response a.")
    model_b = serializers.CharField(allow_blank=True, help_text="The model of response b.")
    rater = serializers.CharField(help_text="Pseudonymous, stable within the project.")
    choice = serializers.CharField()
    display_order = serializers.CharField()
    strength = serializers.CharField(allow_null=True)
    criteria = serializers.DictField(child=serializers.CharField())
    rationale = serializers.CharField(allow_blank=True)
    flags = serializers.ListField(child=serializers.CharField())
    duration_ms = serializers.IntegerField(allow_null=True)
    is_gold = serializers.BooleanField()
    gold_choice = serializers.CharField(allow_null=True)
    is_late = serializers.BooleanField()
    counted = serializers.BooleanField()
    shown_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    adjudication = serializers.CharField(
        allow_null=True, help_text="The comparison's verdict in force (or exclude), if any."
    )


class ExportRequestSerializer(serializers.Serializer):
    """For the schema: `format` plus any options of comparisons.exports.OPTIONS."""

    format = serializers.ChoiceField(choices=ExportFormat.choices)


class ExportJobSerializer(serializers.ModelSerializer):
    rows = serializers.IntegerField(source="row_count", allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = ["id", "format", "status", "progress", "rows", "manifest", "download_url", "error"]

    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != JobStatus.SUCCEEDED or not job.file:
            return None
        url = reverse("api:export_download", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class MetricsSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    judgment_count = serializers.IntegerField()
    agreement = serializers.JSONField()
    raters = serializers.JSONField()
    leaderboard = serializers.JSONField()


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), allow_empty=False
    )

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "secret", "created_at"]
        read_only_fields = ["id", "secret", "created_at"]

    def validate_url(self, value: str) -> str:
        check_webhook_url(value)
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value))
