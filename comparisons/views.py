"""The rating pages. Thin: access checks, the form, and the queue's functions.

Every action view answers an htmx request with the panel for what comes next (the page's
"panel" partial, so it is defined once) and a plain form post with a redirect to the page,
so the same flow works without JavaScript.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from comparisons import metrics, queue, rendering
from comparisons.forms import MAX_DURATION_MS, JudgmentForm
from comparisons.models import (
    Assignment,
    Comparison,
    Judgment,
    Project,
    Response,
    count_for_project,
    from_row,
    rater_is_member_sql,
    select_list,
)

LATE_NOTICE = (
    "Saved, but it came in late: your time on that comparison had run out and it had already "
    "gone to another rater, so your answer is kept but does not count toward its total."
)
SKIPPED_NOTICE = "Skipped. Here is the next one."
NOT_RECORDED_NOTICE = (
    "That comparison was skipped or taken back by a project lead, so the answer was not recorded."
)


def _get_project_for_rater(request: HttpRequest, slug: str) -> Project:
    """The project if the user may rate it; a 404 otherwise, so non-members learn nothing."""
    try:
        return Project.objects.rateable_by(request.user).get(slug=slug)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None


def _get_assignment_for_rater(request: HttpRequest, slug: str, pk: int) -> Assignment:
    """The only way views load an assignment: the user's own, in a project they still rate.

    One hand-written statement (the lease with its project, membership checked in the same
    query): it runs on every submit, skip and heartbeat. The comparison loads on first use.
    """
    sql = (
        f"SELECT {select_list(Assignment, 'a')}, {select_list(Project, 'p')} "
        f'FROM "{Assignment._meta.db_table}" a '
        f'JOIN "{Project._meta.db_table}" p ON p.id = a.project_id '
        f"WHERE a.id = %s AND a.rater_id = %s AND p.slug = %s AND {rater_is_member_sql('p')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk, request.user.pk, slug, request.user.pk])
        row = cursor.fetchone()
    if row is None:
        raise Http404("No such assignment.")
    assignment, project = from_row(row, Assignment, Project)
    assignment.project = project
    return assignment


def _start_of_today() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _progress_annotations(rater, project: Project) -> dict[str, Coalesce]:
    mine = Judgment.objects.filter(project=project, rater=rater)
    return {
        "done_total": count_for_project(mine),
        "done_today": count_for_project(mine.filter(created_at__gte=_start_of_today())),
    }


def _progress(rater, project: Project) -> dict[str, int]:
    """The rater's judgments in the project, today and in total. Hand-written: every panel."""
    sql = (
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN created_at >= %s THEN 1 ELSE 0 END), 0) "
        f'FROM "{Judgment._meta.db_table}" WHERE project_id = %s AND rater_id = %s'
    )
    today = connection.ops.adapt_datetimefield_value(_start_of_today())
    with connection.cursor() as cursor:
        cursor.execute(sql, [today, project.pk, rater.pk])
        total, done_today = cursor.fetchone()
    return {"total": total, "today": done_today}


@login_required
@require_GET
def rate_index(request: HttpRequest) -> HttpResponse:
    user = request.user
    projects = list(
        Project.objects.rateable_by(user)
        .exclude(status=Project.Status.ARCHIVED)
        .annotate(
            **_progress_annotations(user, OuterRef("pk")),
            # Open regular comparisons this rater has not been given yet.
            left=count_for_project(
                Comparison.objects.regular().filter(project=OuterRef("pk"), open_slots__gt=0)
                .filter(~Exists(Assignment.objects.filter(comparison=OuterRef("pk"), rater=user)))
            ),
            has_lease=Exists(
                Assignment.objects.active().filter(project=OuterRef("pk"), rater=user)
            ),
        )
    )  # fmt: skip
    for p in projects:
        if p.status == Project.Status.PAUSED:
            p.rater_status = "paused"
        elif p.left or p.has_lease:
            p.rater_status = "active"
        else:
            p.rater_status = "done"
    active = [p for p in projects if p.rater_status == "active"]
    # One active project: straight to work. "?list=1" (the rating page links it) shows the list.
    if len(active) == 1 and "list" not in request.GET:
        return redirect(active[0].get_absolute_url())
    # Gold accuracy comes from the latest metrics snapshot (two queries, whatever the size).
    show_gold = any(p.show_gold_accuracy_to_raters for p in projects)
    if show_gold:
        summary = metrics.rater_summary(user, projects)
        for p in projects:
            p.gold_accuracy = summary[p.pk]["gold_accuracy"]
            p.gold_n = summary[p.pk]["gold_n"]
    return render(
        request, "comparisons/rate_index.html", {"projects": projects, "show_gold": show_gold}
    )


def _panel_context(request: HttpRequest, project: Project, assignment: Assignment | None, **extra):
    ctx = {
        "project": project,
        "assignment": assignment,
        "state": None,
        "progress": _progress(request.user, project),
        **extra,
    }
    if assignment is None:
        ctx["state"] = queue.empty_reason(request.user, project)
        return ctx
    comparison = assignment.comparison
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT position, content FROM "{Response._meta.db_table}" '
            "WHERE comparison_id = %s AND position IN (0, 1)",
            [comparison.pk],
        )
        by_position = dict(cursor.fetchall())
    shown = [by_position[0 if side == "a" else 1] for side in assignment.display_order]
    prompt = comparison.prompt
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    # Every text of the comparison rendered (or fetched from the shared cache) in one go.
    html = rendering.render_many([m["content"] for m in prompt] + shown)
    turns, answers = html[: len(prompt)], html[len(prompt) :]
    ctx.update(
        comparison=comparison,
        prompt=[{"role": m["role"], "html": h} for m, h in zip(prompt, turns, strict=True)],
        responses=[
            {
                "label": f"Response {i}",
                "html": h,
                "chars": len(content),
                "words": len(content.split()),
            }
            for i, (content, h) in enumerate(zip(shown, answers, strict=True), start=1)
        ],
        form=extra.get("form") or JudgmentForm(project=project),
    )
    return ctx


def _render_panel(request: HttpRequest, ctx: dict, *, status: int = 200) -> HttpResponse:
    """The panel alone for htmx, the whole page otherwise."""
    template = "comparisons/rate.html#panel" if request.htmx else "comparisons/rate.html"
    return render(request, template, ctx, status=status)


def _next_panel(request: HttpRequest, project: Project, *, notice: str = "") -> HttpResponse:
    """After a submit or skip: the next panel for htmx; a redirect for a plain form post."""
    if not request.htmx:
        if notice:
            messages.info(request, notice)
        return redirect(project.get_absolute_url(), permanent=False)
    # The queue reads the project's status fresh, so a pause since page load is honoured.
    assignment = queue.next_assignment(request.user, project)
    response = _render_panel(request, _panel_context(request, project, assignment, notice=notice))
    url = project.get_absolute_url()
    return push_url(response, f"{url}?a={assignment.pk}" if assignment else url)


@login_required
@require_GET
def rate_project(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_rater(request, slug)
    # In a paused project the queue still returns work in hand (a live lease) but nothing new.
    assignment = queue.next_assignment(request.user, project)
    # Always the full page, also for htmx history restores (the page sets hx-history="false").
    return render(request, "comparisons/rate.html", _panel_context(request, project, assignment))


def _duration_ms(form: JudgmentForm, assignment: Assignment) -> int:
    """Time on the comparison: the page's own clock if it sent one, else since the lease began."""
    sent = form.cleaned_data.get("duration_ms")
    if sent is not None:
        return sent
    elapsed = (timezone.now() - assignment.leased_at).total_seconds() * 1000
    return max(0, min(int(elapsed), MAX_DURATION_MS))


@login_required
@require_POST
def rate_submit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_rater(request, slug, pk)
    project = assignment.project
    if assignment.status == Assignment.Status.SKIPPED:
        # Skipped here or released by a lead: nothing to record; move on and say so.
        return _next_panel(request, project, notice=NOT_RECORDED_NOTICE)
    form = JudgmentForm(request.POST, project=project)
    if form.is_valid():
        data = form.cleaned_data
        try:
            judgment = queue.submit_judgment(
                assignment,
                choice=assignment.canonical_choice(data["choice"]),
                strength=data.get("strength") or None,
                criteria={
                    name: assignment.canonical_choice(value)
                    for name, value in form.shown_criteria().items()
                },
                rationale=data.get("rationale", ""),
                flags=data.get("flags", []),
                duration_ms=_duration_ms(form, assignment),
                rater=request.user,
            )
        except ValidationError as exc:
            for field, errors in _error_dict(exc).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return _next_panel(request, project, notice=LATE_NOTICE if judgment.is_late else "")
    # 422 keeps what was typed on screen; htmx is configured (rate.html) to swap it in.
    ctx = _panel_context(request, project, assignment, form=form)
    return _render_panel(request, ctx, status=422)


def _error_dict(exc: ValidationError) -> dict[str | None, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            (None if field == NON_FIELD_ERRORS else field): [m for e in errors for m in e.messages]
            for field, errors in exc.error_dict.items()
        }
    return {None: exc.messages}


@login_required
@require_POST
def rate_skip(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_rater(request, slug, pk)
    reason = request.POST.get("reason", "").strip()[:500]
    # Already submitted (a double action) raises; then there is nothing to do but move on.
    with contextlib.suppress(ValidationError):
        queue.skip_assignment(assignment, reason=reason, rater=request.user)
    return _next_panel(request, assignment.project, notice=SKIPPED_NOTICE)


@login_required
@require_POST
def rate_heartbeat(request: HttpRequest, slug: str, pk: int) -> JsonResponse:
    """Renews the lease while the rater is active; 409 tells the page the lease has lapsed."""
    assignment = _get_assignment_for_rater(request, slug, pk)
    renewed = queue.renew_lease(assignment)
    return JsonResponse(
        {"renewed": renewed, "expires_at": assignment.expires_at.isoformat()},
        status=200 if renewed else 409,
    )
