"""The rating pages. Thin: access checks, the form, and the queue's functions.

Every action view answers an htmx request with the panel for what comes next (the page's
"panel" partial, so it is defined once) and a plain form post with a redirect to the page,
so the same flow works without JavaScript.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url

from comparisons import metrics, queue, ranking, rendering
from comparisons.forms import JudgmentForm, RankingForm
from comparisons.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Judgment,
    Project,
    ProjectStatus,
    count_for_project,
    made_today,
)

LATE_NOTICE = (
    "Saved, but it came in late: your time on that comparison had run out and it had already "
    "gone to another rater, so your answer is kept but does not count toward its total."
)
SKIPPED_NOTICE = "Skipped. Here is the next one."
REVISED_NOTICE = "Changed: your revised answer replaces the earlier one."
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
    """The only way views load an assignment: the user's own, in a project they still rate,
    with its project; the comparison loads on first use."""
    assignment = queue.rater_lease(request.user, slug=slug, pk=pk)
    if assignment is None:
        raise Http404("No such assignment.")
    return assignment


@login_required
@require_GET
def rate_index(request: HttpRequest) -> HttpResponse:
    user = request.user
    mine = Judgment.objects.current().filter(project=OuterRef("pk"), rater=user)
    projects = list(
        Project.objects.rateable_by(user)
        .exclude(status=ProjectStatus.ARCHIVED)
        .annotate(
            done_total=count_for_project(mine),
            done_today=count_for_project(mine.filter(made_today())),
            left=queue.left_for_each_project(user),
            has_lease=Exists(
                Assignment.objects.active().filter(project=OuterRef("pk"), rater=user)
            ),
        )
    )  # fmt: skip
    for p in projects:
        p.left += int(p.has_lease)  # the comparison in hand is left too, as the page counts it
        p.left_label = queue.left_label(p.left)
        if p.status == ProjectStatus.PAUSED:
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


def _panel_context(
    request: HttpRequest,
    project: Project,
    assignment: Assignment | None,
    *,
    revising: Judgment | None = None,
    with_diff: bool = False,
    **extra,
):
    """What the panel shows: the comparison and its form (or why there is none), progress,
    and the Undo link. `revising`: the judgment reopened for revision (its assignment's panel).
    `with_diff`: the word diff of the responses too, asked for by the diff view only (its cost
    grows with the product of the lengths, so no ordinary page load pays it)."""
    ctx = {
        "project": project,
        "assignment": assignment,
        "state": None,
        "states": queue.EmptyReason,
        "revising": revising,
        **extra,
    }
    # "N left" is shown beside a comparison of a pairwise project only.
    shows_left = assignment is not None and not project.is_ranking
    standing = queue.standing(request.user, project, with_left=shows_left)
    ctx["progress"] = {"total": standing.total, "today": standing.today}
    if revising is None:
        ctx["undoable"] = standing.undoable
    if assignment is None:
        ctx["state"] = queue.empty_reason(request.user, project)
        return ctx
    if project.is_ranking:
        ctx.update(_ranking_context(project, assignment, form=extra.get("form")))
        return ctx
    live = assignment.status == AssignmentStatus.ACTIVE
    ctx["left"] = queue.left_label(standing.left + (1 if live else 0))
    comparison = assignment.comparison
    sources = queue.response_texts(comparison)
    shown = [sources[0 if side == "a" else 1] for side in assignment.display_order]
    turns, answers = rendering.render_conversation(comparison.prompt, shown)
    # Counts and the diff view from the text the rater sees, not from the Markdown source.
    texts = [rendering.plain_text(h) for h in answers]
    diff = rendering.word_diff(*texts) if with_diff and len(texts) == 2 else None
    revise_url = reverse("rate_revise", args=[project.slug, revising.pk]) if revising else ""
    form = extra.get("form")
    if form is None:
        initial = JudgmentForm.initial_from(revising, assignment) if revising else None
        form = JudgmentForm(project=project, initial=initial)
    ctx.update(
        # Highlighted code needs pygments.css; a panel without any does not fetch it.
        has_code=any("<pre" in h for h in [*(t["html"] for t in turns), *answers]),
        comparison=comparison,
        prompt=turns,
        responses=[
            {
                "label": f"Response {i}",
                "html": h,
                "chars": len(text),
                "words": len(text.split()),
                "diff": diff[i - 1] if diff else None,
            }
            for i, (text, h) in enumerate(zip(texts, answers, strict=True), start=1)
        ],
        form=form,
        form_action=revise_url or reverse("rate_submit", args=[project.slug, assignment.pk]),
        with_diff=diff is not None,
        diffable=len(texts) == 2 and rendering.diffable(*texts),
        page_url=revise_url or project.get_absolute_url(),
        rationale_max=settings.RATERHUB_RATIONALE_MAX_CHARS,
    )
    return ctx


def _render_panel(request: HttpRequest, ctx: dict, *, status: int = 200) -> HttpResponse:
    """The panel alone for htmx, the whole page otherwise."""
    page = _page(ctx["project"])
    template = f"{page}#panel" if request.htmx else page
    return render(request, template, ctx, status=status)


def _gold_feedback(project: Project, assignment: Assignment, judgment: Judgment) -> dict | None:
    """What the rater learns after judging a gold comparison, where the project says so: whether
    they matched the gold answer (shown on the side they saw it) and its explanation."""
    if not (project.gold_feedback and judgment.is_gold):
        return None
    comparison = assignment.comparison
    gold = comparison.gold_choice
    side = assignment.display_order.index(gold) + 1 if gold in ("a", "b") else None
    return {
        "matched": judgment.choice == gold,
        "answer": f"Response {side}" if side else dict(Choice.choices)[gold],
        "explanation": comparison.gold_explanation,
    }


def _next_panel(
    request: HttpRequest,
    project: Project,
    *,
    notice: str = "",
    gold_feedback: dict | None = None,
    after_finishing: bool = False,
) -> HttpResponse:
    """After a submit or skip: the next panel for htmx; a redirect for a plain form post.
    `after_finishing`: as for queue.next_assignment (the request loaded `project` with the
    rater's lease by _get_assignment_for_rater and finished that lease)."""
    if not request.htmx:
        if notice:
            messages.info(request, notice)
        if gold_feedback:
            matched = "matched" if gold_feedback["matched"] else "did not match"
            messages.info(
                request,
                f"That was a gold comparison: you {matched} its answer ({gold_feedback['answer']})."
                + (f" {gold_feedback['explanation']}" if gold_feedback["explanation"] else ""),
            )
        return redirect(project.get_absolute_url(), permanent=False)
    # The project's status is as fresh as this request, so a pause since page load is honoured.
    assignment = queue.next_assignment(request.user, project, after_finishing=after_finishing)
    ctx = _panel_context(request, project, assignment, notice=notice, gold_feedback=gold_feedback)
    response = _render_panel(request, ctx)
    url = project.get_absolute_url()
    return push_url(response, f"{url}?a={assignment.pk}" if assignment else url)


@login_required
@require_GET
def rate_project(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_rater(request, slug)
    # In a paused project the queue still returns work in hand (a live lease) but nothing new.
    assignment = queue.next_assignment(request.user, project)
    ctx = _panel_context(request, project, assignment, with_diff=_wants_diff(request))
    # The full page, also for htmx history restores (the page sets hx-history="false"); the
    # diff view alone asks for the panel (rate.js takes the diff out of it).
    if request.htmx and ctx.get("with_diff"):
        return _render_panel(request, ctx)
    return render(request, _page(project), ctx)


def _wants_diff(request: HttpRequest) -> bool:
    """Whether the request asks for the word diff of the responses (?diff=1, the D view)."""
    return request.GET.get("diff") == "1"


def _page_clock(request: HttpRequest) -> int | None:
    """The page's own time on the comparison, if it sent a usable one (a whole number of
    milliseconds, at most a day)."""
    sent = request.POST.get("duration_ms", "")
    return int(sent) if sent.isdigit() and int(sent) <= queue.MAX_DURATION_MS else None


def _duration_ms(request: HttpRequest, assignment: Assignment) -> int:
    """Time on the comparison: the page's clock, else the time since the lease began, capped
    the same."""
    sent = _page_clock(request)
    if sent is not None:
        return sent
    elapsed = (timezone.now() - assignment.leased_at).total_seconds() * 1000
    return max(0, min(int(elapsed), queue.MAX_DURATION_MS))


@login_required
@require_POST
def rate_submit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_rater(request, slug, pk)
    project = assignment.project
    if assignment.status in (
        AssignmentStatus.SKIPPED,
        AssignmentStatus.RELEASED,
        AssignmentStatus.KEPT_AWAY,
    ):
        # Skipped here or released by a lead: nothing to record; move on and say so.
        return _next_panel(request, project, notice=NOT_RECORDED_NOTICE, after_finishing=True)
    if project.is_ranking:
        return _rank_submit(request, assignment)
    form = JudgmentForm(request.POST, project=project)
    form.is_valid()  # the form checks nothing; the queue's rules decide below
    try:
        judgment = queue.submit_judgment(
            assignment,
            **form.answer(assignment),
            duration_ms=_duration_ms(request, assignment),
            rater=request.user,
        )
    except ValidationError as exc:
        form.add_answer_errors(exc)
    else:
        return _next_panel(
            request,
            project,
            notice=LATE_NOTICE if judgment.is_late else "",
            gold_feedback=_gold_feedback(project, assignment, judgment),
            after_finishing=True,
        )
    # 422 keeps what was typed on screen; htmx is configured (rate.html) to swap it in.
    ctx = _panel_context(request, project, assignment, form=form)
    return _render_panel(request, ctx, status=422)


def _get_judgment_for_rater(request: HttpRequest, slug: str, pk: int) -> Judgment:
    """The user's own judgment, in a project they still rate; a 404 otherwise."""
    judgment = (
        Judgment.objects.select_related("project", "assignment")
        .filter(pk=pk, rater=request.user, project__slug=slug)
        .filter(project__in=Project.objects.rateable_by(request.user))
        .first()
    )
    if judgment is None:
        raise Http404("No such judgment.")
    return judgment


@login_required
@require_http_methods(["GET", "POST"])
def rate_revise(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Undo: GET shows the rater's judgment again, as they left it, for revision (nothing is
    changed until they submit); POST records the revision, which supersedes it."""
    judgment = _get_judgment_for_rater(request, slug, pk)
    project, assignment = judgment.project, judgment.assignment
    assignment.project = project
    if request.method == "GET":
        if (
            judgment.superseded_at is not None
            or queue.undoable_judgment(request.user, project) != judgment
        ):
            if request.htmx:
                return _next_panel(request, project, notice=queue.UNDO_TOO_LATE)
            messages.info(request, queue.UNDO_TOO_LATE)
            return redirect(project.get_absolute_url())
        ctx = _panel_context(
            request, project, assignment, revising=judgment, with_diff=_wants_diff(request)
        )
        return _render_panel(request, ctx)
    form = JudgmentForm(request.POST, project=project)
    form.is_valid()  # the queue's rules decide, as for a first submit
    try:
        queue.revise_judgment(
            judgment,
            **form.answer(assignment),
            # Only the page's clock: the lease's age would count the first visit twice.
            duration_ms=_page_clock(request),
            rater=request.user,
        )
    except ValidationError as exc:
        if NON_FIELD_ERRORS in exc.message_dict and len(exc.message_dict) == 1:
            # Too late to revise: the first judgment stands; move on and say so.
            return _next_panel(request, project, notice=queue.UNDO_TOO_LATE)
        form.add_answer_errors(exc)
    else:
        return _next_panel(request, project, notice=REVISED_NOTICE)
    ctx = _panel_context(request, project, assignment, revising=judgment, form=form)
    return _render_panel(request, ctx, status=422)


@login_required
@require_POST
def rate_skip(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    assignment = _get_assignment_for_rater(request, slug, pk)
    reason = request.POST.get("reason", "").strip()[:500]
    # Already submitted (a double action) raises; then there is nothing to do but move on.
    with contextlib.suppress(ValidationError):
        queue.skip_assignment(assignment, reason=reason, rater=request.user)
    return _next_panel(request, assignment.project, notice=SKIPPED_NOTICE, after_finishing=True)


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


# --- ranking projects --------------------------------------------------------------------


def _page(project: Project) -> str:
    return "comparisons/rank.html" if project.is_ranking else "comparisons/rate.html"


def _ranking_context(project: Project, assignment: Assignment, *, form=None) -> dict:
    """Every response of the comparison, in the order this lease shows them."""
    comparison = assignment.comparison
    by_key = dict(zip(ranking.KEYS, queue.response_texts(comparison), strict=False))
    shown = [by_key[key] for key in assignment.display_order]
    turns, answers = rendering.render_conversation(comparison.prompt, shown)
    # Counts from the text the rater sees, not from the Markdown source.
    texts = [rendering.plain_text(h) for h in answers]
    form = form or RankingForm(project=project, count=len(shown))
    return {
        "comparison": comparison,
        "prompt": turns,
        "responses": [
            {
                "n": n,
                "label": f"Response {n}",
                "html": h,
                "chars": len(text),
                "words": len(text.split()),
                "rank": form.rank_value(n),
            }
            for n, (text, h) in enumerate(zip(texts, answers, strict=True), start=1)
        ],
        "form": form,
        "rationale_max": settings.RATERHUB_RATIONALE_MAX_CHARS,
    }


def _rank_submit(request: HttpRequest, assignment: Assignment) -> HttpResponse:
    project = assignment.project
    form = RankingForm(request.POST, project=project, count=len(assignment.display_order))
    form.is_valid()  # the form checks nothing; the queue's rules decide below
    try:
        judgment = queue.submit_ranking(
            assignment,
            **form.answer(assignment),
            duration_ms=_duration_ms(request, assignment),
            rater=request.user,
        )
    except ValidationError as exc:
        form.add_answer_errors(exc)
    else:
        notice = LATE_NOTICE if judgment.is_late else ""
        return _next_panel(request, project, notice=notice, after_finishing=True)
    ctx = _panel_context(request, project, assignment, form=form)
    return _render_panel(request, ctx, status=422)
