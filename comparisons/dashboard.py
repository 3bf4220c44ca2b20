"""The lead dashboard: one project's latest metrics snapshot, drawn as server-side SVG.

The page reads the project and its latest MetricsSnapshot and nothing else, so it costs the
same few queries at ten judgments or a million. Numbers are computed by
comparisons.metrics.compute_snapshot, on a schedule (Celery beat) or from the button here.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from comparisons import charts, metrics
from comparisons.models import Judgment, Project
from comparisons.tasks import recompute_metrics, send_on_commit

# (sort key, column heading, help text): the rater table's sortable columns, in order.
RATER_COLUMNS = [
    ("email", "Rater", ""),
    ("judgments", "Judgments", "All judgments by this rater, late ones included"),
    ("median_seconds", "Median s", "Median seconds per judgment"),
    ("fastest_seconds", "Fastest s", "Fastest judgment in seconds"),
    (
        "gold_accuracy",
        "Gold",
        "Accuracy on gold comparisons and reviewers' verdicts, with its 95% Wilson interval",
    ),
    ("agreement", "Agrees", "Share agreeing with the majority of the other raters"),
    ("left_share", "Left picks", "Share of A/B picks that chose the left-hand response"),
    ("longer_share", "Longer", "Share of A/B picks that chose the longer response"),
    ("tie_rate", "Ties", "Share of judgments that were ties"),
    ("both_bad_rate", "Both bad", "Share of judgments that were both bad"),
    ("skip_rate", "Skips", "Skipped leases / (skipped + judged)"),
    ("quality", "Quality", "Combined 0-1 score (see the note below the table)"),
]
SORT_KEYS = {key for key, _, _ in RATER_COLUMNS} | {"flags"}
DEFAULT_SORT = "quality"
THROUGHPUT_ROWS = 30
# While a snapshot is being computed the page asks again every POLL_SECONDS, at most MAX_POLLS
# times (two minutes): a worker that is down or busy then gets a message, not an endless spinner.
POLL_SECONDS = 2
MAX_POLLS = 60
# A first visit queues one recompute; reloads within this many seconds do not queue another.
FIRST_VISIT_DEDUPE_SECONDS = 120


def _get_project_for_lead(request: HttpRequest, slug: str) -> Project:
    """The project if the user may see its dashboard (a superuser, or a staff lead of it).

    Anyone else gets a 404, so a rater or another project's lead learns nothing about it.
    """
    try:
        return Project.objects.visible_to(request.user).get(slug=slug)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None


def sort_raters(rows: list[dict], sort: str) -> tuple[list[dict], str]:
    """Rows ordered by ?sort=key or -key; unknown keys fall back to worst quality first.

    Missing values go last in either direction.
    """
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        key, descending = DEFAULT_SORT, False

    def value(row: dict):
        return len(row.get("flags") or []) if key == "flags" else row.get(key)

    known = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    known.sort(key=value, reverse=descending)
    return known + missing, ("-" if descending else "") + key


def _pct(value: float | None) -> str:
    return "\u2013" if value is None else f"{value * 100:.0f}%"


def _secs(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.1f}"


def _cells(row: dict) -> list[dict]:
    """The rater table's cells for one row: display text, a detail line, a warning mark."""
    flags = set(row.get("flags") or [])
    gold_low, gold_high = row.get("gold_interval") or (None, None)
    late = row.get("late") or 0
    return [
        # The address may break before its "@" (a <wbr>), never inside a word.
        {"text": row["email"], "break_at": row["email"].partition("@")},
        {"text": row["judgments"], "detail": f"{late} late" if late else ""},
        {"text": _secs(row.get("median_seconds")), "warn": "too_fast" in flags},
        {"text": _secs(row.get("fastest_seconds"))},
        {
            "text": _pct(row.get("gold_accuracy")),
            "detail": (
                f"n={row['gold_n']}, {_pct(gold_low)}\u2013{_pct(gold_high)}"
                if row.get("gold_n")
                else ""
            ),
            "warn": "low_gold" in flags,
        },
        {
            "text": _pct(row.get("agreement")),
            "detail": f"n={row['agreement_n']}" if row.get("agreement_n") else "",
        },
        {
            "text": _pct(row.get("left_share")),
            "detail": (
                f"n={row['position_n']}, p={row['position_p']:.2g}"
                if row.get("position_p") is not None
                else ""
            ),
            "warn": "position_bias" in flags,
        },
        {
            "text": _pct(row.get("longer_share")),
            "detail": f"n={row['length_n']}" if row.get("length_n") else "",
        },
        {"text": _pct(row.get("tie_rate"))},
        {"text": _pct(row.get("both_bad_rate"))},
        {"text": _pct(row.get("skip_rate")), "detail": f"{row.get('skipped', 0)} skipped"},
        {
            "text": "\u2013" if row.get("quality") is None else f"{row['quality']:.2f}",
            "bar": None if row.get("quality") is None else round(row["quality"] * 100),
        },
    ]


def _rater_rows(rows: list[dict]) -> list[dict]:
    return [
        {
            **row,
            "cells": _cells(row),
            "flag_labels": [metrics.FLAG_LABELS.get(f, f) for f in row.get("flags") or []],
        }
        for row in rows
    ]


def _headers(sort: str) -> list[dict]:
    """Column headings as ?sort= links: a click sorts by that column, a second click reverses."""
    current = sort.lstrip("-")
    descending = sort.startswith("-")
    headers = []
    for key, label, help_text in [*RATER_COLUMNS, ("flags", "Flags", "Thresholds crossed")]:
        active = key == current
        headers.append(
            {
                "label": label,
                "help": help_text,
                # Numbers sit right-aligned in their cells: so must their headings.
                "numeric": key not in ("email", "flags"),
                "href": f"?sort={'' if active and descending else '-' if active else ''}{key}",
                "arrow": ("▼" if descending else "▲") if active else "",
            }
        )
    return headers


def computed_ago(when: datetime, now: datetime | None = None) -> str:
    """How long ago a snapshot was computed, as a person says it: "just now", "5 minutes ago"."""
    now = now or timezone.now()
    if (now - when).total_seconds() < 60:
        return "just now"
    return f"{timesince(when, now, depth=1)} ago"


def _pending(project: Project, *, after: int, polls: int = 0) -> dict:
    """The "computing" panel's state: poll for a snapshot newer than `after`, or give up."""
    query = urlencode({"after": after, "polls": polls + 1})
    return {
        "after": after,
        "gave_up": polls >= MAX_POLLS,
        "poll_url": f"{reverse('project_dashboard_status', args=[project.slug])}?{query}",
        "poll_seconds": POLL_SECONDS,
    }


def _queue_first_snapshot(project: Project) -> None:
    """The first visit to a dashboard with judgments but no snapshot computes one in the
    background; one task per project at a time, however often the page is reloaded."""
    if cache.add(f"dashboard:first-snapshot:{project.pk}", 1, FIRST_VISIT_DEDUPE_SECONDS):
        send_on_commit(recompute_metrics, project.pk)


def _int_param(request: HttpRequest, name: str) -> int | None:
    try:
        return max(0, int(request.GET[name]))
    except (KeyError, ValueError):
        return None


def _throughput_rows(data: dict) -> list[tuple[str, list[int]]]:
    throughput = data.get("throughput") or {}
    days = throughput.get("days") or []
    emails = data.get("emails") or {}
    rows = []
    for rater_id, per_day in (throughput.get("per_rater") or {}).items():
        rows.append((emails.get(rater_id, f"user {rater_id}"), [per_day.get(d, 0) for d in days]))
    rows.sort(key=lambda r: -sum(r[1]))
    return rows[:THROUGHPUT_ROWS]


def _overlap_chart(use: dict | None):
    """Judgments per comparison (metrics.overlap_use), as bars; None for older snapshots."""
    if not use:
        return None
    bars = use.get("histogram", [])
    return charts.count_bars(
        [str(b["judgments"]) for b in bars],
        [b["comparisons"] for b in bars],
        label="Comparisons by number of counted judgments",
        unit="comparisons",
    )


@login_required
@require_GET
def project_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_lead(request, slug)
    snapshot = metrics.latest_snapshot(project)
    context: dict = {"project": project, "snapshot": snapshot, "columns": RATER_COLUMNS}
    shown = snapshot.pk if snapshot else 0
    after = _int_param(request, "after")  # set by the recompute button's redirect
    if snapshot is None and Judgment.objects.filter(project=project).exists():
        _queue_first_snapshot(project)
        context["pending"] = _pending(project, after=0)
    elif after is not None and after >= shown:
        context["pending"] = _pending(project, after=shown)
    if snapshot is not None:
        context["computed_ago"] = computed_ago(snapshot.computed_at)
        data = snapshot.data
        raters, sort = sort_raters(
            _rater_rows(list(data.get("raters", []))), request.GET.get("sort", DEFAULT_SORT)
        )
        completion = data.get("completion", {})
        progress = data.get("progress", {})
        agreement = data.get("agreement", {})
        board = data.get("leaderboard", {})
        matrix = board.get("matrix", {})
        choice = agreement.get("choice") or {}
        dist = choice.get("distribution") or {}
        context.update(
            data=data,
            raters=raters,
            sort=sort,
            headers=_headers(sort),
            flagged=sum(1 for r in raters if r.get("flags")),
            completion=completion,
            agreement=agreement,
            leaderboard=board,
            length_bias=data.get("length_bias", {}),
            thresholds=data.get("thresholds", {}),
            progress_svg=charts.progress_chart(
                progress.get("days", []),
                progress.get("daily", []),
                progress.get("cumulative", []),
                completion.get("target_slots", 0),
            ),
            completion_svg=charts.meter(completion.get("share"), label="Completion"),
            agreement_svg=charts.histogram(
                dist.get("bins", metrics.AGREEMENT_BINS),
                dist.get("counts", []),
                label="Per-comparison agreement (share of agreeing rater pairs)",
            ),
            throughput_svg=charts.throughput_heatmap(
                _throughput_rows(data), (data.get("throughput") or {}).get("days", [])
            ),
            leaderboard_svg=charts.leaderboard_chart(board.get("models", [])),
            heatmap_svg=charts.win_rate_heatmap(
                matrix.get("models", []), matrix.get("win_rate", []), matrix.get("counts", [])
            ),
            weights=metrics.QUALITY_WEIGHTS,
            overlap=data.get("overlap"),
            overlap_svg=_overlap_chart(data.get("overlap")),
            review=data.get("review"),
        )
    return render(request, "comparisons/dashboard.html", context)


@login_required
@require_POST
def project_dashboard_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    project = _get_project_for_lead(request, slug)
    # Read before sending: with eager tasks (or a fast worker) the new snapshot may exist as
    # soon as the task is sent, and the page must not wait for one newer than that.
    snapshot = metrics.latest_snapshot(project)
    # Beat recomputes every few minutes anyway: a broker that is down only delays this one.
    send_on_commit(recompute_metrics, project.pk)
    # The page then polls until a snapshot newer than the one it showed exists.
    url = reverse("project_dashboard", args=[project.slug])
    return redirect(f"{url}?{urlencode({'after': snapshot.pk if snapshot else 0})}")


@login_required
@require_GET
def project_dashboard_status(request: HttpRequest, slug: str) -> HttpResponse:
    """The "computing" panel, polled by htmx: once a snapshot newer than ?after= exists the
    browser is sent to the dashboard, which then shows it. Only htmx asks: not a page."""
    project = _get_project_for_lead(request, slug)
    url = reverse("project_dashboard", args=[project.slug])
    if not request.htmx:
        return redirect(url)
    after = _int_param(request, "after") or 0
    snapshot = metrics.latest_snapshot(project)
    if snapshot is not None and snapshot.pk > after:
        return HttpResponseClientRedirect(url)
    pending = _pending(project, after=after, polls=_int_param(request, "polls") or 0)
    return render(
        request, "comparisons/dashboard.html#pending", {"project": project, "pending": pending}
    )


@login_required
@require_GET
def project_dashboard_by_pk(request: HttpRequest, pk: int) -> HttpResponse:
    """The admin's link target (admin URLs know the project's pk, the dashboard its slug)."""
    if not request.user.is_staff:
        raise Http404("No such project.")
    project = Project.objects.visible_to(request.user).filter(pk=pk).first()
    if project is None:
        raise Http404("No such project.")
    return redirect("project_dashboard", slug=project.slug)
