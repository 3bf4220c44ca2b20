"""The review page (/review/<slug>/). Thin: access checks and comparisons.review's functions.

Like the rating page, each action answers an htmx request with the panel for the next item (the
page's "panel" partial) and a plain form post with a redirect, so it also works without
JavaScript.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from comparisons import rendering, review
from comparisons.exports.source import pseudonym
from comparisons.models import (
    Adjudication,
    Choice,
    Flag,
    Judgment,
    Project,
    Response,
    ReviewLease,
    ReviewLeaseStatus,
    ReviewVerdict,
)

VERDICT_KEYS = {"1": "1", "2": "2", "tie": "3", "both_bad": "4"}
FLAG_LABELS = dict(Flag.choices)
STRENGTH_LABELS = {"slightly": "slightly", "clearly": "clearly", "much": "much"}


def _get_project_for_reviewer(request: HttpRequest, slug: str) -> Project:
    """The project if the user may review it; a 404 otherwise, so others learn nothing."""
    try:
        return Project.objects.reviewable_by(request.user).get(slug=slug)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None


def _get_lease_for_reviewer(request: HttpRequest, slug: str, pk: int) -> ReviewLease:
    """The user's own review lease, in a project they still review (one query)."""
    lease = (
        ReviewLease.objects.select_related("project", "comparison")
        .filter(pk=pk, reviewer=request.user, project__slug=slug)
        .filter(project__in=Project.objects.reviewable_by(request.user))
        .first()
    )
    if lease is None:
        raise Http404("No such item.")
    lease.reviewer, lease.comparison.project = request.user, lease.project
    return lease


def _shown(choice: str | None, order: list[str]) -> str:
    """A canonical choice as the reviewer sees it: a/b become the side it was shown on."""
    if choice in (Choice.A, Choice.B):
        return f"Response {order.index(choice) + 1}"
    return dict(ReviewVerdict.choices).get(choice, choice or "")


def _judgment_rows(lease: ReviewLease) -> list[dict]:
    order = lease.display_order
    quality = review.quality_by_rater(lease.project)
    rows = []
    for j in Judgment.objects.filter(comparison_id=lease.comparison_id).order_by("id"):
        rows.append(
            {
                "rater": pseudonym(lease.project_id, j.rater_id),
                "quality": quality.get(j.rater_id),
                "choice": _shown(j.choice, order),
                "strength": j.strength if j.choice in (Choice.A, Choice.B) else None,
                "criteria": [(name, _shown(c, order)) for name, c in (j.criteria or {}).items()],
                "rationale": j.rationale,
                "flags": [FLAG_LABELS.get(f, f) for f in j.flags or []],
                "seconds": None if j.duration_ms is None else round(j.duration_ms / 1000, 1),
                "late": j.is_late,
                "created_at": j.created_at,
            }
        )
    return rows


def _panel_context(
    request: HttpRequest, project: Project, lease: ReviewLease | None, **extra
) -> dict:
    ctx = {
        "project": project,
        "lease": lease,
        "backlog": review.review_queue(project).count(),
        "reveal": request.GET.get("reveal") == "1",
        **extra,
    }
    if lease is None:
        return ctx
    comparison = lease.comparison
    by_position = {
        r.position: r for r in Response.objects.filter(comparison=comparison, position__in=(0, 1))
    }
    shown = [by_position[0 if side == "a" else 1] for side in lease.display_order]
    turns, answers = rendering.render_conversation(comparison.prompt, [r.content for r in shown])
    majority = review.majority_choice(comparison)
    previous = (
        Adjudication.objects.filter(comparison=comparison)
        .select_related("reviewer")
        .order_by("-id")
        .first()
    )
    allowed = project.allowed_choices()
    ctx.update(
        comparison=comparison,
        prompt=turns,
        responses=[
            {"label": f"Response {i}", "html": h, "model": r.model_name}
            for i, (r, h) in enumerate(zip(shown, answers, strict=True), start=1)
        ],
        judgments=_judgment_rows(lease),
        majority=_shown(majority, lease.display_order) if majority else None,
        previous=previous,
        previous_shown=_shown(previous.choice, lease.display_order) if previous else None,
        verdict_options=[
            {"value": v, "key": VERDICT_KEYS[v], "label": label}
            for v, label in [
                ("1", "Response 1 is better"),
                ("2", "Response 2 is better"),
                (Choice.TIE.value, "Tie"),
                (Choice.BOTH_BAD.value, "Both bad"),
            ]
            if v in ("1", "2") or v in allowed
        ],
        note_max=settings.RATERHUB_RATIONALE_MAX_CHARS,
        reveal_url=f"{reverse('review_project', args=[project.slug])}?reveal=1",
    )
    return ctx


def _render_panel(request: HttpRequest, ctx: dict, *, status: int = 200) -> HttpResponse:
    template = "comparisons/review.html#panel" if request.htmx else "comparisons/review.html"
    return render(request, template, ctx, status=status)


def _next_panel(request: HttpRequest, project: Project, *, notice: str = "") -> HttpResponse:
    url = reverse("review_project", args=[project.slug])
    if not request.htmx:
        if notice:
            messages.info(request, notice)
        return redirect(url)
    lease = review.next_review(request.user, project)
    response = _render_panel(request, _panel_context(request, project, lease, notice=notice))
    return push_url(response, url)


@login_required
@require_GET
def review_project(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_reviewer(request, slug)
    lease = review.next_review(request.user, project)
    if request.htmx:
        return _render_panel(request, _panel_context(request, project, lease))
    return render(request, "comparisons/review.html", _panel_context(request, project, lease))


def _choice(lease: ReviewLease, verdict: str) -> str:
    """The form's verdict as a canonical choice: 1/2 are sides on screen, "confirm" the
    raters' majority."""
    if verdict in ("1", "2"):
        return lease.display_order[int(verdict) - 1]
    if verdict == "confirm":
        majority = review.majority_choice(lease.comparison)
        if majority is None:
            raise ValidationError({"choice": ["There is no majority to confirm."]})
        return majority
    return verdict


@login_required
@require_POST
def review_submit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    lease = _get_lease_for_reviewer(request, slug, pk)
    project = lease.project
    if lease.status not in (ReviewLeaseStatus.ACTIVE, ReviewLeaseStatus.EXPIRED):
        return _next_panel(request, project)  # a second submit of the same item
    verdict = request.POST.get("verdict", "")
    note = request.POST.get("note", "")
    try:
        if not verdict:
            raise ValidationError({"choice": ["Choose a verdict."]})
        review.adjudicate_lease(lease, choice=_choice(lease, verdict), note=note)
    except ValidationError as exc:
        errors = exc.message_dict
        ctx = _panel_context(
            request,
            project,
            lease,
            errors=[m for key in ("choice", "note", NON_FIELD_ERRORS) for m in errors.get(key, [])],
            note=note,
            verdict=verdict,
        )
        return _render_panel(request, ctx, status=422)
    return _next_panel(request, project, notice="Verdict saved.")


@login_required
@require_POST
def review_skip(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    lease = _get_lease_for_reviewer(request, slug, pk)
    review.skip_review(lease)
    return _next_panel(request, lease.project, notice="Skipped. Here is the next one.")
