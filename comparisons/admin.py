"""The lead admin: projects with progress, comparisons, read-only judgments, leases, the import page.

Scoping: a non-superuser staff user (a project lead) sees only the projects they lead, and only
the comparisons, assignments and judgments of those projects (`Project.objects.visible_to`).
Every changelist runs a constant number of queries: progress comes from subquery annotations,
related rows from `list_select_related`, and the list filters list visible projects in one query.

The "Export…" project action opens a small form and queues one ExportJob per selected project;
the ExportJob list shows each job's status with a progress cell that polls itself (htmx) until
the job has finished, then offers the file and its manifest. An import upload of more than
RATERHUB_IMPORT_SYNC_MAX_LINES lines becomes an ImportJob, shown the same way.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import User
from comparisons.admin_cells import short_when, when_column
from comparisons.exports import OPTIONS, ExportError, create_export_job, validate_options
from comparisons.import_views import render_import_status
from comparisons.imports import (
    count_lines,
    create_import_job,
    discard_import_upload,
    import_comparisons,
)
from comparisons.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Comparison,
    ExportFormat,
    ExportJob,
    ImportJob,
    Judgment,
    OverlapPolicy,
    Project,
    ProjectStatus,
    Response,
)
from comparisons.project_form import ProjectAdminForm
from comparisons.queue import OVERLAP_FIELDS, release_leases, set_overlap_policy
from comparisons.review import send_to_review
from comparisons.tasks import run_import, send_export, send_on_commit

admin.site.site_header = "RaterHub admin"
admin.site.site_title = "RaterHub admin"
admin.site.index_title = "Projects, comparisons and raters"
admin.site.site_url = "/rate/"
# The app list beside every page took 300 of a 1280 px screen, and clipped the lists' last
# columns; the breadcrumbs and the index page already lead everywhere it does.
admin.site.enable_nav_sidebar = False

# --- helpers ------------------------------------------------------------------------------


def visible_projects(request: HttpRequest) -> QuerySet[Project]:
    return Project.objects.visible_to(request.user)


def _scope_to_visible_projects(request: HttpRequest, qs: QuerySet) -> QuerySet:
    """Rows of projects the user may manage; superusers see everything without a join."""
    if request.user.is_superuser:
        return qs
    return qs.filter(project__in=visible_projects(request).values("pk"))


def _progress_bar(done: int, total: int) -> str:
    if not total:
        return format_html('<span class="rh-muted">{}</span>', "nothing to judge")
    percent = min(100, round(100 * done / total))
    return format_html(
        '<progress value="{}" max="{}" title="{}%">{}%</progress> {} / {} ({}%)',
        min(done, total),
        total,
        percent,
        percent,
        done,
        total,
        percent,
    )


class VisibleProjectFilter(admin.RelatedFieldListFilter):
    """The project filter, listing only the projects this user may manage (one query)."""

    def field_choices(self, field, request, model_admin):
        return [(p.pk, str(p)) for p in visible_projects(request).only("pk", "name")]


class ProjectRaterFilter(admin.SimpleListFilter):
    """Filter by rater, listing the raters of the projects this user may manage (one query)."""

    title = "rater"
    parameter_name = "rater"

    def lookups(self, request, model_admin):
        raters = User.objects.filter(
            rating_projects__in=visible_projects(request).values("pk")
        ).distinct()
        return [(str(u.pk), u.email) for u in raters.only("pk", "email")]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(rater_id=self.value())
        return queryset


# --- projects -----------------------------------------------------------------------------


class ImportForm(forms.Form):
    file = forms.FileField(
        label="JSONL file",
        help_text="One comparison per line (see the import format in the README).",
    )
    skip_existing = forms.BooleanField(
        required=False,
        help_text="Skip lines whose external_id is already in the project instead of "
        "rejecting the file.",
    )


def _set_status(queryset: QuerySet[Project], status: str) -> int:
    return queryset.exclude(status=status).update(status=status, updated_at=timezone.now())


@admin.action(description="Pause selected projects (stop new leases)", permissions=["change"])
def pause_projects(modeladmin, request, queryset):
    n = _set_status(queryset, ProjectStatus.PAUSED)
    modeladmin.message_user(request, f"Paused {n} project(s).", messages.SUCCESS)


@admin.action(description="Resume selected projects", permissions=["change"])
def resume_projects(modeladmin, request, queryset):
    n = _set_status(queryset, ProjectStatus.ACTIVE)
    modeladmin.message_user(request, f"Resumed {n} project(s).", messages.SUCCESS)


@admin.action(description="Archive selected projects", permissions=["change"])
def archive_projects(modeladmin, request, queryset):
    n = _set_status(queryset, ProjectStatus.ARCHIVED)
    modeladmin.message_user(request, f"Archived {n} project(s).", messages.SUCCESS)


# The export options' own definition (comparisons.exports.OPTIONS), each kind as a form field.
_OPTION_FIELDS = {
    "choice": lambda o: forms.ChoiceField(choices=[(c, c) for c in o.choices], initial=o.default),
    "datetime": lambda o: forms.DateTimeField(required=False),
    "count": lambda o: forms.IntegerField(required=False, min_value=1),
    "fraction": lambda o: forms.FloatField(required=False, min_value=0, max_value=1),
    "flag": lambda o: forms.BooleanField(required=False),
    "emails": lambda o: forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E-mail addresses, separated by commas or new lines.",
    ),
}


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=ExportFormat.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for option in OPTIONS:
            field = _OPTION_FIELDS[option.kind](option)
            field.help_text = " ".join(filter(None, [option.help, field.help_text]))
            self.fields[option.name] = field

    def export_options(self) -> dict:
        """The options as given, in the JSON form a job stores (empty ones left out)."""
        data = {o.name: self.cleaned_data.get(o.name) for o in OPTIONS}
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in data.items()
            if value not in (None, "", False)
        }

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                validate_options(cleaned["format"], **self.export_options())
            except ExportError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


@admin.action(description="Export…", permissions=["view"])
def export_projects(modeladmin, request, queryset):
    if not request.user.has_perm("comparisons.add_exportjob"):
        raise PermissionDenied
    projects = list(queryset)  # already scoped to the projects this user may manage
    if "apply" in request.POST:
        form = ExportForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    for project in projects:
                        job = create_export_job(
                            project=project,
                            format=form.cleaned_data["format"],
                            requested_by=request.user,
                            options=form.export_options(),
                        )
                        transaction.on_commit(partial(send_export, job.pk))
            except ExportError as exc:
                # A format one of the projects cannot have (rankings of a pairwise project):
                # no job for any of them, and the form says why.
                form.add_error("format", f"{project.name}: {exc}")
            else:
                modeladmin.message_user(
                    request, f"Queued {len(projects)} export(s).", messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:comparisons_exportjob_changelist"))
    else:
        form = ExportForm()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Export preferences",
        "opts": modeladmin.model._meta,
        "projects": projects,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/comparisons/export_form.html", context)


MAX_PREVIEW_CHARS = 100_000  # instructions longer than this preview their beginning


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm  # criteria as rows (name, help text)
    change_form_template = "admin/comparisons/project/change_form.html"
    list_display = (
        "name",
        "slug",
        "status",
        "overlap_display",
        "comparisons_progress",
        "judgments_progress",
    )
    list_filter = ("status",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("raters", "leads", "reviewers")
    readonly_fields = ("created_by", "created_at", "updated_at")
    actions = [pause_projects, resume_projects, archive_projects, export_projects]
    # (label, admin URL name taking the project pk): links on the project's change page.
    project_links: list[tuple[str, str]] = [
        ("Import comparisons", "admin:comparisons_project_import"),
        ("Dashboard", "project_dashboard_by_pk"),
    ]
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "instructions", "status")}),
        (
            "Queue",
            {
                "fields": (
                    "overlap_policy",
                    "overlap",
                    ("min_overlap", "max_overlap"),
                    "lease_seconds",
                    "gold_rate",
                    "break_reminder_minutes",
                ),
                "description": "Fixed: every comparison gets Overlap judgments. Adaptive: Min "
                "overlap, then one more at a time while the leading choice could still be "
                "overturned, up to Max overlap. Changing these recomputes every comparison's "
                "open slots from the judgments it already has.",
            },
        ),
        (
            "Rating scheme",
            {
                "fields": (
                    "task_type",
                    "allow_tie",
                    "allow_both_bad",
                    "use_strength",
                    "criteria",
                    "rationale",
                    "rationale_min_chars",
                )
            },
        ),
        (
            "Rater quality",
            {
                "classes": ("collapse",),
                "fields": (
                    "min_seconds_per_judgment",
                    "gold_accuracy_threshold",
                    "position_bias_threshold",
                    "show_gold_accuracy_to_raters",
                    "gold_feedback",
                ),
            },
        ),
        (
            "Review",
            {
                "classes": ("collapse",),
                "description": "What goes to the review queue at /review/&lt;slug&gt;/.",
                "fields": (
                    "review_min_agreement",
                    "review_splits",
                    "review_flagged",
                    "review_gold_missed",
                ),
            },
        ),
        ("People", {"fields": ("leads", "raters", "reviewers")}),
        ("History", {"classes": ("collapse",), "fields": readonly_fields}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Comparisons were imported (and judged) for one task type: 3-9 responses ranked, or
        # two compared. Switching under them would leave leases and judgments of the other kind.
        if obj is not None and obj.comparisons.exists():
            return (*self.readonly_fields, "task_type")
        return self.readonly_fields

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name in ("raters", "leads", "reviewers"):
            # The autocompletes list UserAdmin's scoped queryset; the form accepts no one
            # else either, or a lead could post the id of another lead's rater.
            kwargs["queryset"] = User.objects.visible_to(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=visible_projects(request).values("pk"))
            .with_progress()
        )

    @admin.display(description="Overlap")
    def overlap_display(self, obj: Project) -> str:
        if obj.overlap_policy == OverlapPolicy.ADAPTIVE:
            return f"adaptive {obj.min_overlap} to {obj.max_overlap}"
        return str(obj.overlap)

    @admin.display(description="Comparisons complete")
    def comparisons_progress(self, obj: Project) -> str:
        return _progress_bar(obj.progress_complete, obj.progress_comparisons)

    @admin.display(description="Judgments / target")
    def judgments_progress(self, obj: Project) -> str:
        return _progress_bar(obj.progress_judgments, obj.progress_target)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            return
        changed = [name for name in OVERLAP_FIELDS if name in form.changed_data]
        if changed:
            # The queue owns open_slots and completed_at: save everything else with the old
            # overlap settings, then let set_overlap_policy write the new ones and recompute
            # every comparison under them.
            new = {name: getattr(obj, name) for name in OVERLAP_FIELDS}
            for name in OVERLAP_FIELDS:
                setattr(obj, name, form.initial[name])
            super().save_model(request, obj, form, change)
            set_overlap_policy(obj, **{name: new[name] for name in changed})
            return
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change and not request.user.is_superuser:
            # A lead who creates a project leads it; otherwise it would vanish from their admin.
            form.instance.leads.add(request.user)

    class Media:
        js = ("django_htmx/htmx-2.min.js",)  # the instructions' preview button
        css = {"all": ("css/pygments.css",)}  # code in the preview, highlighted as raters see it

    def get_urls(self):
        return [
            path(
                "preview-instructions/",
                self.admin_site.admin_view(self.preview_instructions_view),
                name="comparisons_project_preview_instructions",
            ),
            path(
                "<path:object_id>/import/",
                self.admin_site.admin_view(self.import_view),
                name="comparisons_project_import",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "project_links": [
                (label, reverse(url_name, args=[object_id]))
                for label, url_name in self.project_links
            ],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            idle = obj.unserved_gold_count()
            context["project_warnings"] = (
                [
                    f"This project has {idle:,} gold comparison{pluralize(idle)} but a gold "
                    "rate of 0: raters are never served them, and the list's progress counts "
                    "leave them out. Set a gold rate above 0 to use them."
                ]
                if idle
                else []
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def preview_instructions_view(self, request: HttpRequest) -> HttpResponse:
        """The instructions being edited, rendered as the rating page renders them (htmx)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        if not request.htmx:  # a panel of the change form, not a page
            return HttpResponseRedirect(reverse("admin:comparisons_project_changelist"))
        text = request.POST.get("instructions", "")[:MAX_PREVIEW_CHARS]
        return TemplateResponse(
            request, "admin/comparisons/project/_instructions_preview.html", {"text": text}
        )

    def import_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        project = self.get_object(request, object_id)  # scoped by get_queryset: None if hidden
        if project is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, project):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            form = ImportForm(request.POST, request.FILES)
            job = self._queue_large_import(request, project, form) if form.is_valid() else None
            if job is not None:
                return HttpResponseRedirect(
                    reverse("admin:comparisons_importjob_change", args=[job.pk])
                )
            if form.is_valid():
                result = self._run_import(project, form)
                if result.ok:
                    self.message_user(
                        request,
                        f"Imported {result.created} comparison(s)"
                        f"{f', skipped {result.skipped} existing' if result.skipped else ''}.",
                        messages.SUCCESS,
                    )
                    for warning in result.warnings:
                        self.message_user(request, warning, messages.WARNING)
                else:
                    self.message_user(
                        request,
                        f"The file was rejected: {result.error_count} bad line(s). Nothing was imported.",
                        messages.ERROR,
                    )
        else:
            form = ImportForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": project,
            "project": project,
            "form": form,
            "result": result,
            "sync_max_lines": settings.RATERHUB_IMPORT_SYNC_MAX_LINES,
            "title": f"Import comparisons into {project}",
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/comparisons/project/import.html", context)

    def _queue_large_import(
        self, request: HttpRequest, project: Project, form: ImportForm
    ) -> ImportJob | None:
        """A job for an upload too long to import within the request (gunicorn's timeout);
        None for one short enough, which the page imports at once."""
        upload = form.cleaned_data["file"]
        lines = count_lines(upload)
        if lines <= settings.RATERHUB_IMPORT_SYNC_MAX_LINES:
            return None
        job = create_import_job(
            project=project,
            source=upload,
            skip_existing=form.cleaned_data["skip_existing"],
            requested_by=request.user,
            total_lines=lines,
        )
        send_on_commit(run_import, job.pk)  # a broker that is down leaves the job queued
        self.message_user(
            request,
            f"The file has {lines:,} lines: it is being imported in the background, all or "
            "nothing as always. This page shows its progress, then the result.",
            messages.INFO,
        )
        return job

    @staticmethod
    def _run_import(project: Project, form: ImportForm):
        # The upload itself, not iter(upload): the importer reads a file object a bounded
        # piece at a time, while an UploadedFile's own iteration joins a line of any length.
        return import_comparisons(
            project, form.cleaned_data["file"], skip_existing=form.cleaned_data["skip_existing"]
        )


# --- comparisons --------------------------------------------------------------------------


class GoldFilter(admin.SimpleListFilter):
    title = "gold"
    parameter_name = "gold"

    def lookups(self, request, model_admin):
        return [("yes", "Gold"), ("no", "Regular")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(gold_choice__isnull=False)
        if self.value() == "no":
            return queryset.filter(gold_choice__isnull=True)
        return queryset


class PriorityFilter(admin.SimpleListFilter):
    # Fixed buckets rather than a DISTINCT over the whole table.
    title = "priority"
    parameter_name = "priority"

    def lookups(self, request, model_admin):
        return [("high", "Raised (> 0)"), ("normal", "Normal (0)"), ("low", "Lowered (< 0)")]

    def queryset(self, request, queryset):
        lookup = {"high": "priority__gt", "normal": "priority", "low": "priority__lt"}.get(
            self.value() or ""
        )
        return queryset.filter(**{lookup: 0}) if lookup else queryset


class FullyJudgedFilter(admin.SimpleListFilter):
    title = "complete"
    parameter_name = "fully_judged"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.complete()
        if self.value() == "no":
            return queryset.regular().incomplete()
        return queryset


class ResponseInline(admin.StackedInline):
    model = Response
    extra = 0
    min_num = 2
    fields = ("position", "model_name", "content")


@admin.action(description="Send selected comparisons to review", permissions=["view"])
def send_comparisons_to_review(modeladmin, request, queryset):
    # The changelist is scoped to the lead's projects, and so is the queryset it hands over.
    n = send_to_review(_scope_to_visible_projects(request, queryset))
    modeladmin.message_user(request, f"Sent {n} comparison(s) to review.", messages.SUCCESS)


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = (
        "external_id",
        "project",
        "prompt_excerpt",
        "is_gold",
        "priority",
        "judged_count",
        "open_slots",
        "created_at_short",
    )
    list_select_related = ("project",)
    list_filter = (
        ("project", VisibleProjectFilter),
        GoldFilter,
        PriorityFilter,
        FullyJudgedFilter,
    )
    search_fields = ("external_id", "prompt")
    inlines = [ResponseInline]
    actions = [send_comparisons_to_review]
    readonly_fields = (
        "open_slots",
        "judged_count",
        "lead_margin",
        "completed_at",
        "lease_count",
        "review_requested_at",
        "created_at",
    )
    fields = (
        "project",
        "external_id",
        "prompt",
        "metadata",
        "priority",
        "gold_choice",
        "gold_explanation",
        *readonly_fields,
    )
    list_per_page = 100
    created_at_short = when_column("created_at", "Created")
    show_full_result_count = False  # skip a second COUNT over the whole (unfiltered) table

    def get_queryset(self, request):
        return _scope_to_visible_projects(request, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = visible_projects(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # Moving a comparison between projects would corrupt both projects' counters, and
        # turning gold on or off would strand its open slots (gold is picked separately).
        if obj is not None:
            return ("project", "gold_choice", *self.readonly_fields)
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change and obj.gold_choice is None:
            # As an import would: a new regular comparison has the policy's minimum open.
            obj.open_slots = obj.project.initial_slots
        super().save_model(request, obj, form, change)

    @admin.display(description="Prompt")
    def prompt_excerpt(self, obj: Comparison) -> str:
        prompt = obj.prompt
        if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict):
            text = str(prompt[-1].get("content", ""))
        else:
            text = str(prompt)
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="Gold", boolean=True)
    def is_gold(self, obj: Comparison) -> bool:
        return obj.gold_choice is not None


# --- judgments (read-only) ----------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the admin shows but never adds, edits or deletes (judgments are never lost)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Judgment)
class JudgmentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "project",
        "comparison",
        "rater",
        # Choice and strength as one answer, the four booleans as words, the time in seconds:
        # twelve columns did not fit a 1280 px screen.
        "answer",
        "marks",
        "seconds",
        "created_at_short",
    )
    list_select_related = ("project", "comparison", "rater")
    list_filter = (
        ("project", VisibleProjectFilter),
        ProjectRaterFilter,
        "choice",
        "is_late",
        "is_gold",
        "counted",
    )
    search_fields = ("comparison__external_id", "rater__email")
    ordering = ("-id",)
    list_per_page = 100
    show_full_result_count = False
    created_at_short = when_column("created_at", "Created")

    def get_queryset(self, request):
        return _scope_to_visible_projects(request, super().get_queryset(request))

    @admin.display(description="Answer", ordering="choice")
    def answer(self, obj: Judgment) -> str:
        strength = f", {obj.get_strength_display().lower()}" if obj.strength else ""
        return f"{obj.get_choice_display()}{strength}"

    @admin.display(description="Marks")
    def marks(self, obj: Judgment) -> str:
        words = [
            word
            for word, on in (
                ("gold", obj.is_gold),
                ("late", obj.is_late),
                ("not counted", not obj.counted),
                ("shown B first", obj.swapped),
                ("superseded", obj.superseded_at is not None),
            )
            if on
        ]
        return ", ".join(words) or "—"

    @admin.display(description="Time (s)", ordering="duration_ms")
    def seconds(self, obj: Judgment) -> str:
        return "—" if obj.duration_ms is None else f"{obj.duration_ms / 1000:.1f}"


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyAdmin):
    """Reviewers' verdicts, every one kept: the latest of a comparison is the one in force."""

    list_display = (
        "id",
        "project",
        "comparison",
        "reviewer",
        "choice",
        "majority_choice",
        "created_at_short",
    )
    created_at_short = when_column("created_at", "When")
    list_select_related = ("project", "comparison", "reviewer")
    list_filter = (("project", VisibleProjectFilter), "choice")
    search_fields = ("comparison__external_id", "reviewer__email", "note")
    ordering = ("-id",)
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request):
        return _scope_to_visible_projects(request, super().get_queryset(request))


# --- assignments (leases) -----------------------------------------------------------------


class LeaseStateFilter(admin.SimpleListFilter):
    title = "lease"
    parameter_name = "lease"

    def lookups(self, request, model_admin):
        return [("live", "Active, not expired"), ("overdue", "Active, past expiry")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(status=AssignmentStatus.ACTIVE, expires_at__gt=now)
        if self.value() == "overdue":
            return queryset.filter(status=AssignmentStatus.ACTIVE, expires_at__lte=now)
        return queryset


@admin.action(
    description="Release the active leases of the selected assignments' raters",
    permissions=["release"],
)
def release_active_leases(modeladmin, request, queryset):
    _release(modeladmin, request, queryset, keep_away=False)


@admin.action(
    description="Release the active leases of the selected assignments' raters and keep "
    "those raters away from these comparisons",
    permissions=["release"],
)
def keep_raters_away(modeladmin, request, queryset):
    _release(modeladmin, request, queryset, keep_away=True)


def _release(modeladmin, request, queryset, *, keep_away: bool) -> None:
    pairs = list(
        queryset.filter(status=AssignmentStatus.ACTIVE)
        .order_by()
        .values_list("rater_id", "project_id")
        .distinct()
    )
    raters = User.objects.in_bulk({rater_id for rater_id, _ in pairs})
    projects = Project.objects.in_bulk({project_id for _, project_id in pairs})
    released = 0
    for rater_id, project_id in pairs:
        released += release_leases(
            rater=raters[rater_id], project=projects[project_id], keep_away=keep_away
        )
    done = "kept their raters away from" if keep_away else "gave back to the queue"
    modeladmin.message_user(
        request, f"Released {released} active lease(s): {done} their comparisons.", messages.SUCCESS
    )


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "project",
        "comparison",
        "rater",
        "swapped",
        "leased_at_short",
        # The status with the time a live lease has left: one column where two were clipped.
        "lease_left",
    )
    list_select_related = ("project", "comparison", "rater")
    list_filter = (
        ("project", VisibleProjectFilter),
        LeaseStateFilter,
        "status",
        ProjectRaterFilter,
    )
    search_fields = ("comparison__external_id", "rater__email")
    actions = [release_active_leases, keep_raters_away]
    list_per_page = 100
    show_full_result_count = False
    leased_at_short = when_column("leased_at", "Leased")

    def get_queryset(self, request):
        return _scope_to_visible_projects(request, super().get_queryset(request))

    def has_release_permission(self, request) -> bool:
        # Releasing changes the queue, not the assignment's history: leads may do it.
        return request.user.has_perm("comparisons.change_project")

    @admin.display(description="Status · Lease left", ordering="status")
    def lease_left(self, obj: Assignment) -> str:
        if obj.status != AssignmentStatus.ACTIVE:
            return obj.get_status_display()
        seconds = int((obj.expires_at - timezone.now()).total_seconds())
        if seconds <= 0:
            return "Active, expired"
        return f"Active, {seconds // 60}m {seconds % 60:02d}s left"


# --- exports ------------------------------------------------------------------------------


class JobAdmin(ReadOnlyAdmin):
    """Export and import jobs: the lead's projects' only, a status cell that polls (htmx), and
    only superusers delete one, with its file."""

    class Media:
        js = ("django_htmx/htmx-2.min.js",)

    def discard_file(self, job) -> None:
        raise NotImplementedError

    def get_queryset(self, request):
        return _scope_to_visible_projects(request, super().get_queryset(request))

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def delete_model(self, request, obj):
        self.discard_file(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            self.discard_file(job)
        super().delete_queryset(request, queryset)


@admin.register(ExportJob)
class ExportJobAdmin(JobAdmin):
    list_display = (
        "id",
        "project",
        "format",
        # The status cell polls itself until the job ends and then shows the rows too, so
        # nothing on the row stays stale ("Rows —" next to Succeeded) until a reload.
        "progress_cell",
        "requested",
    )
    list_select_related = ("project", "requested_by")
    list_filter = (("project", VisibleProjectFilter), "status", "format")
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = (
        "project",
        "format",
        "options",
        "progress_cell",
        "counts",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "sha256",
        "error",
        "manifest_json",
    )
    fields = readonly_fields

    def discard_file(self, job: ExportJob) -> None:
        job.file.delete(save=False)

    @admin.display(description="Status")
    def progress_cell(self, obj: ExportJob) -> str:
        return render_to_string("admin/comparisons/export_progress.html", {"job": obj})

    @admin.display(description="Requested", ordering="created_at")
    def requested(self, obj: ExportJob) -> str:
        # Who and when in one cell: two columns of their own were clipped at 1280 px.
        return format_html("{}<br>{}", obj.requested_by or "—", short_when(obj.created_at))

    @admin.display(description="Rows")
    def counts(self, obj: ExportJob) -> str:
        return obj.rows_summary() or "—"

    @admin.display(description="Manifest")
    def manifest_json(self, obj: ExportJob) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.manifest, indent=2, ensure_ascii=False))


# --- imports -------------------------------------------
# An upload of more than RATERHUB_IMPORT_SYNC_MAX_LINES lines becomes an ImportJob (the import
# page redirects to it); the list and the job's page show a status cell that polls itself
# (htmx) until the job has finished, then the counts or every reported bad line.


@admin.register(ImportJob)
class ImportJobAdmin(JobAdmin):
    change_form_template = "admin/comparisons/importjob/change_form.html"
    list_display = ("number", "project", "filename", "status_cell", "created_at_short")
    list_select_related = ("project",)
    list_filter = (("project", VisibleProjectFilter), "status")
    list_per_page = 50
    created_at_short = when_column("created_at", "Created")
    show_full_result_count = False
    readonly_fields = (
        "project",
        "filename",
        "skip_existing",
        "requested_by",
        "created_at",
    )  # the status below the fields shows the times, which change while the page is open
    fields = readonly_fields

    def discard_file(self, job: ImportJob) -> None:
        discard_import_upload(job)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)  # scoped: None for someone else's job
        if job is not None:
            extra_context = {
                **(extra_context or {}),
                "import_status": render_import_status(job, detail=True),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Job", ordering="pk")
    def number(self, obj: ImportJob) -> str:
        return f"#{obj.pk}"

    @admin.display(description="Status")
    def status_cell(self, obj: ImportJob) -> str:
        return render_import_status(obj, detail=False)
