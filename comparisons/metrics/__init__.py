"""Agreement, rater quality and the model leaderboard, computed from a project's judgments.

Plain functions over numpy arrays: one streamed `values_list` over the project's judgments
(`load`), a few small aggregate queries, then vectorised arithmetic, so a recompute at a
million judgments takes seconds, not minutes. `compute_snapshot` stores the lot in a
`MetricsSnapshot` row; the dashboard and the rater's summary read only that row.

Which judgments count where:
  project-level numbers (agreement, leaderboard, overall length bias) use counted judgments
  on regular comparisons: late judgments (`is_late`) and uncounted ones are left out, and so
  are gold comparisons, whose pairs are often constructed;
  rater-level numbers (times, gold accuracy, position and length bias, tie rates) use every
  judgment the rater made, because a late or gold judgment still shows how the rater works.

Scales and formulas (kept here so the dashboard and an export manifest can cite them):
  Strength, ordinal: a signed scale from "A much better" to "B much better",
      A much < A clearly < A slightly < tie < B slightly < B clearly < B much  (-3 … +3);
      "both bad" and an A/B pick without a strength are not on the scale (missing).
  Percent agreement of a comparison: the share of agreeing pairs of raters,
      sum_v n_v (n_v - 1) / (m (m - 1)) for m judgments; the project's is the mean over
      comparisons with at least two judgments.
  Quality score (0..1): the weighted mean of the components a rater has enough data for,
      gold accuracy (weight 0.4, from MIN_GOLD_JUDGMENTS gold judgments), where a reviewer's
          verdict in force counts as the known answer of its comparison, like gold (and over
          gold: the gold may be wrong; an excluded comparison has no known answer),
      agreement with the leave-one-out majority (0.3, from MIN_AGREEMENT_JUDGMENTS decided ones),
      position balance 1 - 2 |left share - 0.5| (0.15, from MIN_POSITION_PICKS A/B picks),
      speed min(1, median seconds / project.min_seconds_per_judgment) (0.15);
      None when no component is available.
  Leaderboard: Bradley-Terry strengths fitted by penalised maximum likelihood (the MAP estimate
      of choix.opt_pairwise with alpha=BT_ALPHA), a tie or "both bad" counting as half a win
      each way, shown on the Elo scale as Chatbot Arena reports it: 1000 + 400/ln(10) * theta
      with theta centred on 0 (so the mean model is 1000 and a 400-point gap means 10:1 odds).
      95% intervals: percentiles of BOOTSTRAP_ROUNDS seeded bootstrap resamples of judgments.

The package: `load` reads the judgments into arrays (the one row-by-row query); `agreement`,
`raters` and `leaderboard` are the maths over those arrays (pure); this module composes them
per project and stores the snapshots the dashboard reads.
"""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Least, TruncDate
from django.utils import timezone

from accounts.models import User
from comparisons.metrics.agreement import AGREEMENT_BINS, agreement_of
from comparisons.metrics.leaderboard import (
    BOOTSTRAP_ROUNDS,
    BT_ALPHA,
    bradley_terry_elo,
    fit_bradley_terry,
    leaderboard_of,
    length_bias_of,
    to_elo,
)
from comparisons.metrics.load import Judgments, known_answers, load, responses
from comparisons.metrics.ranking import ranking_metrics
from comparisons.metrics.raters import (
    FLAG_LABELS,
    MIN_AGREEMENT_JUDGMENTS,
    MIN_GOLD_JUDGMENTS,
    MIN_POSITION_PICKS,
    QUALITY_WEIGHTS,
    quality_score,
    rater_flags,
    rater_table,
)
from comparisons.metrics.stats import ratio, wilson_interval
from comparisons.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    MetricsSnapshot,
    Project,
    judgment_target,
)

SNAPSHOTS_KEPT = 50

THROUGHPUT_DAYS = 28


def json_safe(value: Any) -> Any:
    """Make numpy scalars and NaN JSON-safe."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def agreement(project: Project) -> dict:
    """Krippendorff's alpha and percent agreement over the project's counted judgments.

    Keys: "choice" (nominal over a/b/tie/both_bad), "strength" (ordinal on the signed scale,
    or None when the project does not use strength), "criteria" ({name: block}); each block has
    "alpha", "percent", "units", "unanimous" and "distribution" (a histogram of per-comparison
    agreement).
    """
    return agreement_of(load(project), use_strength=project.use_strength)


def rater_quality(project: Project) -> list[dict]:
    """One row per rater who judged in the project, with their numbers, flags and quality."""
    j = load(project, with_criteria=False)
    _, _, lengths = responses(project, j)
    return _rater_table(project, j, lengths)


def _rater_table(project: Project, j: Judgments, lengths: np.ndarray) -> list[dict]:
    skips = dict(
        Assignment.objects.filter(project=project, status=AssignmentStatus.SKIPPED)
        .order_by()
        .values_list("rater_id")
        .annotate(n=Count("id"))
    )
    emails = dict(User.objects.filter(id__in=j.rater_ids.tolist()).values_list("id", "email"))
    answers, adjudicated = known_answers(project, j)
    return rater_table(
        project, j, answers, lengths, skips=skips, emails=emails, adjudicated=adjudicated
    )


def rater_scores(project: Project) -> dict[int, dict]:
    """Rater quality keyed by user id (each row has "gold_accuracy", "gold_n", "quality", "flags").

    Computed live from the judgments, so an export filters on the data as it is now.
    """
    return {row["id"]: row for row in rater_quality(project)}


def leaderboard(project: Project) -> dict:
    """Per model: Bradley-Terry rating on the Elo scale with a bootstrap 95% interval,
    win/tie/loss counts, and the pairwise win-rate matrix (ties as half wins) with pair counts.

    Compares response A with response B of each regular comparison, from counted judgments.
    """
    j = load(project, with_criteria=False)
    names, models, _ = responses(project, j)
    return json_safe(leaderboard_of(j, names, models))


def length_bias(project: Project) -> dict:
    """Overall length bias of the project's counted judgments (per rater: rater_quality)."""
    j = load(project, with_criteria=False)
    _, _, lengths = responses(project, j)
    return json_safe(length_bias_of(j, lengths))


def overlap_use(project: Project) -> dict:
    """Judgments per comparison (a histogram of counted judgments over regular comparisons)
    and the judgments the policy saved against fixed overlap at max_overlap, in one query.

    saved = complete comparisons x max_overlap - the counted judgments they took: what fixed
    overlap at the policy's maximum would have spent on the same comparisons (0 for the fixed
    policy, whose maximum is its overlap).
    """
    high = project.max_judgments
    rows = (
        Comparison.objects.regular()
        .filter(project=project)
        .order_by()
        .values_list("judged_count")
        .annotate(
            comparisons=Count("id"),
            complete=Count("id", filter=Q(completed_at__isnull=False)),
        )
    )
    histogram: dict[int, int] = {}
    complete = used = 0
    for judged, n, done in rows:
        histogram[judged] = n
        complete += done
        used += judged * done
    fixed_equivalent = complete * high
    return {
        "policy": project.overlap_policy,
        "min_overlap": project.overlap_bounds()[0],
        "max_overlap": high,
        "histogram": [
            {"judgments": k, "comparisons": histogram.get(k, 0)}
            for k in range(0, max([high, *histogram]) + 1)
        ],
        "complete": complete,
        "judgments_on_complete": used,
        "fixed_equivalent": fixed_equivalent,
        "saved": fixed_equivalent - used,
        "saved_share": ratio(fixed_equivalent - used, fixed_equivalent),
    }


def project_progress(project: Project) -> dict:
    """Completion, counted judgments per day, and each rater's judgments per day (recent).

    Complete is the queue's one definition (Comparison.completed_at); the target is the sum of
    each comparison's share (models.judgment_target): overlap x comparisons for the fixed
    policy, a floor that rises with the work under the adaptive one.
    """
    totals = Comparison.objects.filter(project=project).aggregate(
        regular=Count("id", filter=Q(gold_choice__isnull=True)),
        gold=Count("id", filter=Q(gold_choice__isnull=False)),
        started=Count("id", filter=Q(gold_choice__isnull=True, judged_count__gt=0)),
        done=Count("id", filter=Q(gold_choice__isnull=True, completed_at__isnull=False)),
        judged=Sum(
            Least(F("judged_count"), Value(project.max_judgments)),
            filter=Q(gold_choice__isnull=True),
        ),
        target=Sum(judgment_target(), filter=Q(gold_choice__isnull=True)),
    )
    target = totals["target"] or 0
    daily = list(
        Judgment.objects.current()
        .filter(project=project, counted=True, is_gold=False)
        .annotate(day=TruncDate("created_at"))
        .order_by("day")
        .values_list("day")
        .annotate(n=Count("id"))
    )
    days, counts = [d.isoformat() for d, _ in daily], [n for _, n in daily]
    since = timezone.localdate() - timedelta(days=THROUGHPUT_DAYS - 1)
    recent = (
        Judgment.objects.current()
        .filter(project=project, created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("rater_id", "day")
        .annotate(n=Count("id"))
    )
    per_rater: dict[int, dict[str, int]] = {}
    for rater_id, day, n in recent:
        per_rater.setdefault(rater_id, {})[day.isoformat()] = n
    return {
        "completion": {
            "comparisons": totals["regular"],
            "gold_comparisons": totals["gold"],
            "started": totals["started"],
            "done": totals["done"],
            "judged_slots": totals["judged"] or 0,
            "target_slots": target,
            "share": ratio(totals["judged"] or 0, target),
        },
        "progress": {
            "days": days,
            "daily": counts,
            "cumulative": np.cumsum(counts).tolist() if counts else [],
        },
        "throughput": {
            "days": [(since + timedelta(days=i)).isoformat() for i in range(THROUGHPUT_DAYS)],
            "per_rater": {str(k): v for k, v in per_rater.items()},
        },
        "overlap": overlap_use(project),
    }


def compute_metrics(project: Project) -> dict:
    """Everything the dashboard shows, as one JSON-safe dict."""
    # Imported here: review reads votes through exports.source, which reads rater_scores here.
    from comparisons.review import review_summary

    j = load(project)
    names, models, lengths = responses(project, j)
    raters = _rater_table(project, j, lengths)
    progress = project_progress(project)
    emails = {str(r["id"]): r["email"] for r in raters}
    for key in progress["throughput"]["per_rater"]:
        emails.setdefault(key, f"user {key}")
    data = {
        "version": 1,
        "judgments": {
            "total": j.size,
            "counted": int(j.project_mask.sum()),
            "late": int(j.late.sum()),
            "gold": int(j.gold.sum()),
        },
        "last_judgment_id": int(j.ids.max()) if j.size else 0,
        "thresholds": {
            "min_seconds_per_judgment": project.min_seconds_per_judgment,
            "gold_accuracy_threshold": project.gold_accuracy_threshold,
            "position_bias_threshold": project.position_bias_threshold,
            "min_gold_judgments": MIN_GOLD_JUDGMENTS,
            "min_position_picks": MIN_POSITION_PICKS,
        },
        "agreement": agreement_of(j, use_strength=project.use_strength),
        "raters": raters,
        # What a rater may see of their own numbers, addressable by one JSON key lookup.
        "by_rater": {
            f"u{r['id']}": {
                "judgments": r["judgments"],
                "gold_n": r["gold_n"],
                "gold_accuracy": r["gold_accuracy"],
            }
            for r in raters
        },
        "emails": emails,
        "leaderboard": leaderboard_of(j, names, models),
        "length_bias": length_bias_of(j, lengths),
        "review": review_summary(project),
        **progress,
    }
    if project.is_ranking:
        # Rankings have metrics of their own; the leaderboard then counts every ranked pair.
        data["ranking"] = ranking_metrics(project)
        data["leaderboard"] = data["ranking"]["leaderboard"]
    return json_safe(data)


def compute_snapshot(project: Project) -> MetricsSnapshot:
    """Compute the project's metrics and store them as its latest snapshot (old ones pruned)."""
    started = time.perf_counter()
    data = compute_metrics(project)
    snapshot = MetricsSnapshot.objects.create(
        project=project,
        duration_ms=int((time.perf_counter() - started) * 1000),
        judgment_count=data["judgments"]["total"],
        data=data,
    )
    stale = list(
        MetricsSnapshot.objects.filter(project=project)
        .order_by("-computed_at", "-id")
        .values_list("id", flat=True)[SNAPSHOTS_KEPT:]
    )
    if stale:
        MetricsSnapshot.objects.filter(id__in=stale).delete()
    return snapshot


def latest_snapshot(project: Project) -> MetricsSnapshot | None:
    return MetricsSnapshot.objects.filter(project=project).order_by("-computed_at", "-id").first()


def needs_recompute(project: Project, *, max_age: timedelta = timedelta(hours=1)) -> bool:
    """Whether the scheduled recompute has anything new to show (new judgments, or stale)."""
    last = (
        MetricsSnapshot.objects.filter(project=project)
        .order_by("-computed_at", "-id")
        .values_list("computed_at", "data__last_judgment_id")
        .first()
    )
    if last is None:
        return True
    computed_at, last_id = last
    if computed_at < timezone.now() - max_age:
        return True
    return Judgment.objects.filter(project=project, id__gt=last_id or 0).exists()


def rater_summary(rater, projects) -> dict[int, dict]:
    """A rater's own numbers per project: {project id: {"today", "gold_accuracy", "gold_n"}}.

    Two queries whatever the number of projects or judgments: today's judgments grouped by
    project, and the rater's entry of each project's latest snapshot (one JSON key, not the
    whole snapshot). Gold accuracy is None unless the project shows it to raters.
    """
    projects = list(projects)
    if not projects:
        return {}
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = dict(
        Judgment.objects.current()
        .filter(rater=rater, project__in=[p.pk for p in projects], created_at__gte=start)
        .order_by()
        .values_list("project_id")
        .annotate(n=Count("id"))
    )
    latest = (
        MetricsSnapshot.objects.filter(project=OuterRef("pk"))
        .order_by("-computed_at", "-id")
        .values(f"data__by_rater__u{int(rater.pk)}")[:1]
    )
    mine = dict(
        Project.objects.filter(pk__in=[p.pk for p in projects])
        .order_by()
        .annotate(mine=Subquery(latest))
        .values_list("pk", "mine")
    )
    summary = {}
    for p in projects:
        entry = mine.get(p.pk)
        if isinstance(entry, str):  # some backends hand back the JSON text of a key lookup
            entry = json.loads(entry)
        entry = entry or {}
        shown = p.show_gold_accuracy_to_raters
        summary[p.pk] = {
            "today": today.get(p.pk, 0),
            "gold_accuracy": entry.get("gold_accuracy") if shown else None,
            "gold_n": entry.get("gold_n", 0) if shown else 0,
        }
    return summary


__all__ = [
    "AGREEMENT_BINS",
    "BOOTSTRAP_ROUNDS",
    "BT_ALPHA",
    "FLAG_LABELS",
    "MIN_AGREEMENT_JUDGMENTS",
    "MIN_GOLD_JUDGMENTS",
    "MIN_POSITION_PICKS",
    "QUALITY_WEIGHTS",
    "agreement",
    "bradley_terry_elo",
    "compute_metrics",
    "compute_snapshot",
    "fit_bradley_terry",
    "latest_snapshot",
    "leaderboard",
    "length_bias",
    "needs_recompute",
    "quality_score",
    "rater_flags",
    "rater_quality",
    "rater_scores",
    "rater_summary",
    "to_elo",
    "wilson_interval",
]
