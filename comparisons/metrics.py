"""Agreement, rater quality and the model leaderboard, computed from a project's judgments.

Plain functions over numpy arrays: one streamed `values_list` over the project's judgments
(`_load`), a few small aggregate queries, then vectorised arithmetic, so a recompute at a
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
      gold accuracy (weight 0.4, from MIN_GOLD_JUDGMENTS gold judgments),
      agreement with the leave-one-out majority (0.3, from MIN_AGREEMENT_JUDGMENTS decided ones),
      position balance 1 - 2 |left share - 0.5| (0.15, from MIN_POSITION_PICKS A/B picks),
      speed min(1, median seconds / project.min_seconds_per_judgment) (0.15);
      None when no component is available.
  Leaderboard: Bradley-Terry strengths fitted by penalised maximum likelihood (the MAP estimate
      of choix.opt_pairwise with alpha=BT_ALPHA), a tie or "both bad" counting as half a win
      each way, shown on the Elo scale as Chatbot Arena reports it: 1000 + 400/ln(10) * theta
      with theta centred on 0 (so the mean model is 1000 and a 400-point gap means 10:1 odds).
      95% intervals: percentiles of BOOTSTRAP_ROUNDS seeded bootstrap resamples of judgments.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import krippendorff
import numpy as np
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Least, Length, TruncDate
from django.utils import timezone
from scipy import stats

from accounts.models import User
from comparisons.models import (
    Assignment,
    Choice,
    Comparison,
    Judgment,
    MetricsSnapshot,
    Project,
    Response,
    Strength,
)

CHOICES = [Choice.A.value, Choice.B.value, Choice.TIE.value, Choice.BOTH_BAD.value]
CHOICE_CODE = {c: i for i, c in enumerate(CHOICES)}
A, B, TIE, BOTH_BAD = range(4)
STRENGTH_CODE = {
    None: 0,
    Strength.SLIGHTLY.value: 1,
    Strength.CLEARLY.value: 2,
    Strength.MUCH.value: 3,
}
ORDINAL_DOMAIN = list(range(-3, 4))
ORDINAL_LABELS = ["A much", "A clearly", "A slightly", "tie", "B slightly", "B clearly", "B much"]

MIN_GOLD_JUDGMENTS = 10
MIN_AGREEMENT_JUDGMENTS = 5
MIN_POSITION_PICKS = 20
QUALITY_WEIGHTS = {"gold": 0.4, "agreement": 0.3, "position": 0.15, "speed": 0.15}

BT_ALPHA = 0.01
ELO_SCALE = 400 / math.log(10)
ELO_ANCHOR = 1000.0
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 20240601

SNAPSHOTS_KEPT = 50
THROUGHPUT_DAYS = 28
AGREEMENT_BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
_CHUNK = 20_000
# Relative slack when comparing a rate with a threshold: 13/20 - 0.5 is 0.15000000000000002.
_EPS = 1e-9


# ----------------------------------------------------------------------------- loading


@dataclass
class _Judgments:
    """A project's judgments as parallel arrays, one entry per judgment."""

    ids: np.ndarray  # judgment id
    unit: np.ndarray  # comparison index into .comparison_ids
    rater: np.ndarray  # rater index into .rater_ids
    choice: np.ndarray  # 0 a, 1 b, 2 tie, 3 both_bad
    strength: np.ndarray  # 0 none, 1 slightly, 2 clearly, 3 much
    swapped: np.ndarray
    gold: np.ndarray
    counted: np.ndarray
    late: np.ndarray
    seconds: np.ndarray  # nan when unknown
    criteria: dict[str, np.ndarray]  # per criterion name: choice code, -1 when not given
    comparison_ids: np.ndarray
    rater_ids: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def project_mask(self) -> np.ndarray:
        """Judgments that count for project-level numbers."""
        return self.counted & ~self.late & ~self.gold


def _load(project: Project, *, with_criteria: bool | None = None) -> _Judgments:
    """Stream the project's judgments once into numpy arrays (chunked: bounded memory)."""
    if with_criteria is None:
        with_criteria = bool(project.criteria)
    fields = [
        "id",
        "comparison_id",
        "rater_id",
        "choice",
        "strength",
        "swapped",
        "is_gold",
        "counted",
        "is_late",
        "duration_ms",
    ]
    names = [str(name) for name in project.criteria] if with_criteria else []
    # Each criterion's choice as text, extracted by the database: parsing a million JSON
    # objects in Python would cost more than all the other columns together.
    qs = (
        Judgment.objects.filter(project=project)
        .order_by()
        .values_list(*fields, *(KeyTextTransform(name, "criteria") for name in names))
    )
    cols: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    criteria: dict[str, list[np.ndarray]] = {name: [] for name in names}
    buffer: list[tuple] = []

    def flush() -> None:
        if not buffer:
            return
        columns = list(zip(*buffer, strict=True))
        cols["id"].append(np.fromiter(columns[0], np.int64, len(buffer)))
        cols["comparison_id"].append(np.fromiter(columns[1], np.int64, len(buffer)))
        cols["rater_id"].append(np.fromiter(columns[2], np.int64, len(buffer)))
        cols["choice"].append(
            np.fromiter((CHOICE_CODE[c] for c in columns[3]), np.int8, len(buffer))
        )
        cols["strength"].append(
            np.fromiter((STRENGTH_CODE.get(s, 0) for s in columns[4]), np.int8, len(buffer))
        )
        for i, name in ((5, "swapped"), (6, "is_gold"), (7, "counted"), (8, "is_late")):
            cols[name].append(np.fromiter(columns[i], bool, len(buffer)))
        cols["duration_ms"].append(
            np.fromiter(
                (math.nan if d is None else d / 1000.0 for d in columns[9]),
                np.float64,
                len(buffer),
            )
        )
        for offset, name in enumerate(names, start=len(fields)):
            criteria[name].append(
                np.fromiter((CHOICE_CODE.get(c, -1) for c in columns[offset]), np.int8, len(buffer))
            )
        buffer.clear()

    for row in qs.iterator(chunk_size=_CHUNK):
        buffer.append(row)
        if len(buffer) >= _CHUNK:
            flush()
    flush()

    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate(cols[name]) if cols[name] else np.zeros(0, dtype)

    comparison_ids, unit = np.unique(cat("comparison_id", np.int64), return_inverse=True)
    rater_ids, rater = np.unique(cat("rater_id", np.int64), return_inverse=True)
    return _Judgments(
        ids=cat("id", np.int64),
        unit=unit.astype(np.int64),
        rater=rater.astype(np.int64),
        choice=cat("choice", np.int8),
        strength=cat("strength", np.int8),
        swapped=cat("swapped", bool),
        gold=cat("is_gold", bool),
        counted=cat("counted", bool),
        late=cat("is_late", bool),
        seconds=cat("duration_ms", np.float64),
        criteria={
            name: np.concatenate(parts) if parts else np.zeros(0, np.int8)
            for name, parts in criteria.items()
        },
        comparison_ids=comparison_ids,
        rater_ids=rater_ids,
    )


def _per_unit(j: _Judgments, comparison_values: dict[int, Any], fill, dtype) -> np.ndarray:
    """Map a {comparison id: value} dict onto each judgment (fill where absent)."""
    if not j.size:
        return np.zeros(0, dtype)
    lookup = np.array([comparison_values.get(int(cid), fill) for cid in j.comparison_ids], dtype)
    return lookup[j.unit]


def _gold_answers(project: Project, j: _Judgments) -> np.ndarray:
    """The gold choice code of each judgment's comparison, -1 for regular comparisons."""
    gold = {
        cid: CHOICE_CODE[choice]
        for cid, choice in Comparison.objects.filter(project=project, gold_choice__isnull=False)
        .order_by()
        .values_list("id", "gold_choice")
    }
    return _per_unit(j, gold, -1, np.int8)


def _responses(project: Project, j: _Judgments) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model names and content lengths of responses A and B for every judged comparison.

    Returns (model names, model index per comparison (N, 2) with -1 when missing,
    lengths per comparison (N, 2) with -1 when missing), indexed like j.comparison_ids.
    """
    n = len(j.comparison_ids)
    models = np.full((n, 2), -1, np.int64)
    lengths = np.full((n, 2), -1, np.int64)
    names: dict[str, int] = {}
    if not n:
        return [], models, lengths
    rows = (
        Response.objects.filter(comparison__project=project, position__in=(0, 1))
        .order_by()
        .values_list("comparison_id", "position", "model_name", Length("content"))
    )
    cids, positions, model_idx, lens = [], [], [], []
    for cid, position, name, length in rows.iterator(chunk_size=_CHUNK):
        cids.append(cid)
        positions.append(position)
        model_idx.append(names.setdefault(name, len(names)))
        lens.append(length or 0)
    if cids:
        cid_arr = np.array(cids, np.int64)
        where = np.searchsorted(j.comparison_ids, cid_arr)
        where = np.clip(where, 0, n - 1)
        known = j.comparison_ids[where] == cid_arr
        pos = np.array(positions, np.int64)[known]
        models[where[known], pos] = np.array(model_idx, np.int64)[known]
        lengths[where[known], pos] = np.array(lens, np.int64)[known]
    return list(names), models, lengths


# ----------------------------------------------------------------------------- small statistics


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (95% by default); None without data."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _binom_p(k: int, n: int) -> float | None:
    return float(stats.binomtest(k, n, 0.5).pvalue) if n > 0 else None


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _clean(value: Any) -> Any:
    """Make numpy scalars and NaN JSON-safe."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ----------------------------------------------------------------------------- agreement


def _value_counts(unit: np.ndarray, values: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    """Units x values matrix: how many judgments of each unit took each value."""
    flat = np.bincount(unit * n_values + values, minlength=n_units * n_values)
    return flat.reshape(n_units, n_values)


def _alpha(value_counts: np.ndarray, level: str, domain=None) -> float | None:
    """krippendorff.alpha over units with at least two values; None when undefined."""
    pairable = value_counts[value_counts.sum(axis=1) >= 2]
    if not len(pairable) or (pairable.sum(axis=0) > 0).sum() < 2:
        # No unit judged twice, or every judgment the same value: alpha is 0/0.
        return None
    value = krippendorff.alpha(
        value_counts=pairable, value_domain=domain, level_of_measurement=level
    )
    return None if math.isnan(value) else float(value)


def _pairwise_agreement(value_counts: np.ndarray) -> np.ndarray:
    """Per unit (with at least two judgments): the share of agreeing rater pairs."""
    m = value_counts.sum(axis=1)
    keep = m >= 2
    vc, m = value_counts[keep], m[keep]
    return (vc * (vc - 1)).sum(axis=1) / (m * (m - 1))


def _agreement_block(value_counts: np.ndarray, level: str, domain=None) -> dict:
    per_unit = _pairwise_agreement(value_counts)
    hist, _ = np.histogram(per_unit, bins=AGREEMENT_BINS)
    return {
        "alpha": _alpha(value_counts, level, domain),
        "percent": float(per_unit.mean()) if len(per_unit) else None,
        "units": len(per_unit),
        "unanimous": int((per_unit >= 1 - _EPS).sum()),
        "distribution": {
            "bins": AGREEMENT_BINS,
            "counts": hist.tolist(),
        },
    }


def _agreement(project: Project, j: _Judgments) -> dict:
    mask = j.project_mask
    n_units = len(j.comparison_ids)
    unit = j.unit[mask]
    result: dict[str, Any] = {
        "judgments": int(mask.sum()),
        "choice": _agreement_block(
            _value_counts(unit, j.choice[mask].astype(np.int64), n_units, 4), "nominal"
        ),
        "strength": None,
        "criteria": {},
    }
    if project.use_strength:
        signed = _signed_strength(j.choice[mask], j.strength[mask])
        on_scale = signed != -99
        counts = _value_counts(unit[on_scale], signed[on_scale] + 3, n_units, 7)
        block = _agreement_block(counts, "ordinal", ORDINAL_DOMAIN)
        block["scale"] = ORDINAL_LABELS
        result["strength"] = block
    for name, codes in j.criteria.items():
        values = codes[mask].astype(np.int64)
        ok = values >= 0
        counts = _value_counts(unit[ok], values[ok], n_units, 4)
        block = _agreement_block(counts, "nominal")
        block["judgments"] = int(ok.sum())
        result["criteria"][name] = block
    return result


def _signed_strength(choice: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The ordinal scale -3..+3 (see the module docstring); -99 where not on the scale."""
    signed = np.full(len(choice), -99, np.int64)
    signed[choice == TIE] = 0
    has = strength > 0
    signed[(choice == A) & has] = -strength[(choice == A) & has]
    signed[(choice == B) & has] = strength[(choice == B) & has]
    return signed


def agreement(project: Project) -> dict:
    """Krippendorff's alpha and percent agreement over the project's counted judgments.

    Keys: "choice" (nominal over a/b/tie/both_bad), "strength" (ordinal on the signed scale,
    or None when the project does not use strength), "criteria" ({name: block}); each block has
    "alpha", "percent", "units", "unanimous" and "distribution" (a histogram of per-comparison
    agreement).
    """
    return _agreement(project, _load(project))


# ----------------------------------------------------------------------------- rater quality


def _loo_agreement(j: _Judgments) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: whether a leave-one-out majority exists, and whether the judgment matches it.

    The majority of the *other* counted judgments on the same comparison: their most common
    choice when it is unique (a split among the others decides nothing).
    """
    mask = j.project_mask
    n_units = len(j.comparison_ids)
    counts = _value_counts(j.unit[mask], j.choice[mask].astype(np.int64), n_units, 4)
    others = counts[j.unit].copy()
    own = j.choice.astype(np.int64)
    rows = np.arange(j.size)
    # Only a judgment that is itself among the counted ones is removed from its unit's counts.
    others[rows[mask], own[mask]] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    decided = mask & (top > 0) & unique_top
    agrees = decided & (others[rows, own] == top)
    return decided, agrees


def _rater_table(
    project: Project, j: _Judgments, gold_answer: np.ndarray, lengths: np.ndarray
) -> list[dict]:
    n_raters = len(j.rater_ids)
    if not n_raters:
        return []

    def per_rater(mask: np.ndarray) -> np.ndarray:
        return np.bincount(j.rater[mask], minlength=n_raters)

    everything = np.ones(j.size, bool)
    total = per_rater(everything)
    late = per_rater(j.late)
    ties = per_rater(j.choice == TIE)
    both_bad = per_rater(j.choice == BOTH_BAD)

    gold_mask = gold_answer >= 0
    gold_n = per_rater(gold_mask)
    gold_ok = per_rater(gold_mask & (j.choice == gold_answer))

    decided, agrees = _loo_agreement(j)
    loo_n = per_rater(decided)
    loo_ok = per_rater(agrees)

    decisive = (j.choice == A) | (j.choice == B)
    # The left-hand response is canonical A unless the lease showed the pair swapped.
    picked_left = decisive & ((j.choice == A) != j.swapped)
    pos_n = per_rater(decisive)
    pos_left = per_rater(picked_left)

    len_a = lengths[j.unit, 0] if j.size else np.zeros(0, np.int64)
    len_b = lengths[j.unit, 1] if j.size else np.zeros(0, np.int64)
    comparable = decisive & (len_a >= 0) & (len_b >= 0) & (len_a != len_b)
    chose_longer = comparable & ((j.choice == A) == (len_a > len_b))
    len_n = per_rater(comparable)
    len_longer = per_rater(chose_longer)

    skips = dict(
        Assignment.objects.filter(project=project, status=Assignment.Status.SKIPPED)
        .order_by()
        .values_list("rater_id")
        .annotate(n=Count("id"))
    )
    emails = dict(User.objects.filter(id__in=j.rater_ids.tolist()).values_list("id", "email"))

    # Times: sort once by rater, then split; nan (unknown duration) is dropped per rater.
    order = np.argsort(j.rater, kind="stable")
    bounds = np.cumsum(total)[:-1]
    seconds_by_rater = np.split(j.seconds[order], bounds)

    table = []
    for r in range(n_raters):
        user_id = int(j.rater_ids[r])
        secs = seconds_by_rater[r]
        secs = secs[~np.isnan(secs)]
        median = float(np.median(secs)) if len(secs) else None
        fastest = float(secs.min()) if len(secs) else None
        skipped = int(skips.get(user_id, 0))
        row = {
            "id": user_id,
            "email": emails.get(user_id, f"user {user_id}"),
            "judgments": int(total[r]),
            "late": int(late[r]),
            "median_seconds": median,
            "fastest_seconds": fastest,
            "gold_n": int(gold_n[r]),
            "gold_correct": int(gold_ok[r]),
            "gold_accuracy": _ratio(gold_ok[r], gold_n[r]),
            "gold_interval": wilson_interval(int(gold_ok[r]), int(gold_n[r])),
            "agreement_n": int(loo_n[r]),
            "agreement": _ratio(loo_ok[r], loo_n[r]),
            "position_n": int(pos_n[r]),
            "left_share": _ratio(pos_left[r], pos_n[r]),
            "position_p": _binom_p(int(pos_left[r]), int(pos_n[r])),
            "length_n": int(len_n[r]),
            "longer_share": _ratio(len_longer[r], len_n[r]),
            "tie_rate": _ratio(ties[r], total[r]),
            "both_bad_rate": _ratio(both_bad[r], total[r]),
            "skipped": skipped,
            "skip_rate": _ratio(skipped, skipped + int(total[r])),
        }
        row["position_bias"] = (
            abs(row["left_share"] - 0.5) if row["left_share"] is not None else None
        )
        row["flags"] = rater_flags(project, row)
        row["quality"] = quality_score(project, row)
        table.append(row)
    return table


def rater_flags(project: Project, row: dict) -> list[str]:
    """Which thresholds a rater crosses.

    too_fast: median time strictly below project.min_seconds_per_judgment.
    low_gold: with at least MIN_GOLD_JUDGMENTS gold judgments, accuracy strictly below
        project.gold_accuracy_threshold.
    position_bias: with at least MIN_POSITION_PICKS A/B picks, the left-hand share is at least
        project.position_bias_threshold away from 0.5.
    """
    flags = []
    median = row.get("median_seconds")
    if median is not None and median < project.min_seconds_per_judgment - _EPS:
        flags.append("too_fast")
    accuracy = row.get("gold_accuracy")
    if (
        accuracy is not None
        and row.get("gold_n", 0) >= MIN_GOLD_JUDGMENTS
        and accuracy < project.gold_accuracy_threshold - _EPS
    ):
        flags.append("low_gold")
    bias = row.get("position_bias")
    if (
        bias is not None
        and row.get("position_n", 0) >= MIN_POSITION_PICKS
        and bias >= project.position_bias_threshold - _EPS
    ):
        flags.append("position_bias")
    return flags


FLAG_LABELS = {
    "too_fast": "Too fast",
    "low_gold": "Below gold threshold",
    "position_bias": "Position-biased",
}


def quality_score(project: Project, row: dict) -> float | None:
    """The combined 0..1 score (formula in the module docstring)."""
    parts: dict[str, float] = {}
    if row.get("gold_accuracy") is not None and row.get("gold_n", 0) >= MIN_GOLD_JUDGMENTS:
        parts["gold"] = row["gold_accuracy"]
    if row.get("agreement") is not None and row.get("agreement_n", 0) >= MIN_AGREEMENT_JUDGMENTS:
        parts["agreement"] = row["agreement"]
    if row.get("position_bias") is not None and row.get("position_n", 0) >= MIN_POSITION_PICKS:
        parts["position"] = max(0.0, 1 - 2 * row["position_bias"])
    if row.get("median_seconds") is not None and project.min_seconds_per_judgment > 0:
        parts["speed"] = min(1.0, row["median_seconds"] / project.min_seconds_per_judgment)
    if not parts:
        return None
    weight = sum(QUALITY_WEIGHTS[k] for k in parts)
    return sum(QUALITY_WEIGHTS[k] * v for k, v in parts.items()) / weight


def rater_quality(project: Project) -> list[dict]:
    """One row per rater who judged in the project, with their numbers, flags and quality."""
    j = _load(project, with_criteria=False)
    _, _, lengths = _responses(project, j)
    return _rater_table(project, j, _gold_answers(project, j), lengths)


def rater_scores(project: Project) -> dict[int, dict]:
    """Rater quality keyed by user id (each row has "gold_accuracy", "gold_n", "quality", "flags").

    Computed live from the judgments, so an export filters on the data as it is now.
    """
    return {row["id"]: row for row in rater_quality(project)}


# ----------------------------------------------------------------------------- leaderboard


def _bt_objective(theta: np.ndarray, wins: np.ndarray, alpha: float) -> float:
    diff = theta[:, None] - theta[None, :]
    return float((wins * np.logaddexp(0, -diff)).sum() + alpha * (theta**2).sum())


def fit_bradley_terry(
    wins: np.ndarray,
    *,
    alpha: float = BT_ALPHA,
    initial: np.ndarray | None = None,
    tol: float = 1e-9,
    max_iter: int = 100,
) -> np.ndarray:
    """Bradley-Terry strengths from a matrix of (possibly fractional) wins[i, j] of i over j.

    Minimises choix's penalised negative log-likelihood,
    sum_ij wins_ij * log(1 + exp(theta_j - theta_i)) + alpha * sum_i theta_i^2,
    by damped Newton steps on the aggregated counts (choix.opt_pairwise takes one row per
    comparison, which is too slow at a million judgments). The penalty makes the problem
    strictly convex, so models that never lose or never meet still get finite strengths;
    at the optimum the strengths sum to zero.
    """
    wins = np.asarray(wins, dtype=np.float64)
    m = len(wins)
    theta = np.zeros(m) if initial is None else np.array(initial, dtype=np.float64)
    if m == 0:
        return theta
    games = wins + wins.T
    value = _bt_objective(theta, wins, alpha)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))  # P(i beats j)
        grad = (games * p - wins).sum(axis=1) + 2 * alpha * theta
        weight = games * p * (1 - p)
        hessian = -weight
        hessian[np.diag_indices(m)] = weight.sum(axis=1) - np.diag(weight) + 2 * alpha
        step = np.linalg.solve(hessian, grad)
        # Backtrack when a full Newton step does not lower the objective (far from the optimum).
        scale = 1.0
        while True:
            candidate = theta - scale * step
            new_value = _bt_objective(candidate, wins, alpha)
            if new_value <= value + 1e-12 or scale < 1e-6:
                break
            scale /= 2
        theta, value = candidate, new_value
        if np.abs(scale * step).max() < tol:
            break
    return theta


def to_elo(theta: np.ndarray) -> np.ndarray:
    """Bradley-Terry strengths on the Elo scale: mean model 1000, 400 points = 10:1 odds."""
    theta = np.asarray(theta, dtype=np.float64)
    return ELO_ANCHOR + ELO_SCALE * (theta - theta.mean()) if len(theta) else theta


def _wins_from_cells(cells: np.ndarray, m: int) -> np.ndarray:
    """cells[(i*m + j)*3 + outcome] counts judgments of model i (as A) vs j (as B):
    outcome 0 A won, 1 B won, 2 tie or both bad (half a win each way)."""
    c = cells.reshape(m, m, 3).astype(np.float64)
    return c[:, :, 0] + 0.5 * c[:, :, 2] + (c[:, :, 1] + 0.5 * c[:, :, 2]).T


def bradley_terry_elo(
    cells: np.ndarray, m: int, *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Elo-scale ratings of m models and their bootstrap 95% intervals from outcome cells
    (see _wins_from_cells). Returns (rating, lower, upper)."""
    theta = fit_bradley_terry(_wins_from_cells(cells, m))
    rating = to_elo(theta)
    n = int(cells.sum())
    if not n or rounds <= 0:
        return rating, rating.copy(), rating.copy()
    # Bootstrap over judgments: resampling N judgments with replacement is a multinomial draw
    # over the (pair, outcome) cells, which costs the same at 1,000 or 1,000,000 judgments.
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cells / n, size=rounds)
    samples = np.array(
        [to_elo(fit_bradley_terry(_wins_from_cells(d, m), initial=theta)) for d in draws]
    )
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    return rating, lower, upper


def _leaderboard(j: _Judgments, names: list[str], models: np.ndarray) -> dict:
    mask = j.project_mask
    empty = {"models": [], "matrix": {"models": [], "win_rate": [], "counts": []}, "judgments": 0}
    if not names or not mask.any():
        return empty
    model_a = models[j.unit[mask], 0]
    model_b = models[j.unit[mask], 1]
    choice = j.choice[mask]
    usable = (model_a >= 0) & (model_b >= 0) & (model_a != model_b)
    model_a, model_b, choice = model_a[usable], model_b[usable], choice[usable]
    if not len(choice):
        return empty
    # Only models that met another model in a usable judgment (not those of gold comparisons).
    present, pair = np.unique(np.concatenate([model_a, model_b]), return_inverse=True)
    names = [names[i] for i in present]
    model_a, model_b = pair[: len(model_a)], pair[len(model_a) :]
    m = len(names)
    outcome = np.where(choice == A, 0, np.where(choice == B, 1, 2))
    cells = np.bincount((model_a * m + model_b) * 3 + outcome, minlength=m * m * 3)
    wins = _wins_from_cells(cells, m)
    rating, lower, upper = bradley_terry_elo(cells, m)

    c = cells.reshape(m, m, 3)
    # Per model: wins, ties, losses whichever side it was shown on; both-bad counted as ties.
    won = c[:, :, 0].sum(axis=1) + c[:, :, 1].sum(axis=0)
    lost = c[:, :, 1].sum(axis=1) + c[:, :, 0].sum(axis=0)
    tied = c[:, :, 2].sum(axis=1) + c[:, :, 2].sum(axis=0)
    both_bad_j = choice == BOTH_BAD
    both_bad = np.bincount(model_a[both_bad_j], minlength=m) + np.bincount(
        model_b[both_bad_j], minlength=m
    )
    order = np.argsort(-rating, kind="stable")
    pair_games = c.sum(axis=2) + c.sum(axis=2).T
    pair_wins = wins  # wins[i, j] already counts ties as half a win each way
    matrix_rate = [
        [
            float(pair_wins[i, k] / pair_games[i, k]) if pair_games[i, k] and i != k else None
            for k in order
        ]
        for i in order
    ]
    return {
        "models": [
            {
                "name": names[i],
                "rating": float(rating[i]),
                "lower": float(lower[i]),
                "upper": float(upper[i]),
                "wins": int(won[i]),
                "ties": int(tied[i]),
                "losses": int(lost[i]),
                "both_bad": int(both_bad[i]),
                "games": int(won[i] + tied[i] + lost[i]),
                "win_rate": _ratio(won[i] + 0.5 * tied[i], won[i] + tied[i] + lost[i]),
            }
            for i in order
        ],
        "matrix": {
            "models": [names[i] for i in order],
            "win_rate": matrix_rate,
            "counts": [[int(pair_games[i, k]) for k in order] for i in order],
        },
        "judgments": int(cells.sum()),
        "bootstrap_rounds": BOOTSTRAP_ROUNDS,
    }


def leaderboard(project: Project) -> dict:
    """Per model: Bradley-Terry rating on the Elo scale with a bootstrap 95% interval,
    win/tie/loss counts, and the pairwise win-rate matrix (ties as half wins) with pair counts.

    Compares response A with response B of each regular comparison, from counted judgments.
    """
    j = _load(project, with_criteria=False)
    names, models, _ = _responses(project, j)
    return _clean(_leaderboard(j, names, models))


def _length_bias(j: _Judgments, lengths: np.ndarray) -> dict:
    """How often the longer response wins a decisive (A or B) judgment of unequal lengths."""
    mask = j.project_mask & ((j.choice == A) | (j.choice == B))
    len_a, len_b = lengths[j.unit[mask], 0], lengths[j.unit[mask], 1]
    comparable = (len_a >= 0) & (len_b >= 0) & (len_a != len_b)
    chose_a = j.choice[mask][comparable] == A
    longer = int((chose_a == (len_a[comparable] > len_b[comparable])).sum())
    n = int(comparable.sum())
    return {
        "n": n,
        "longer_wins": longer,
        "share": _ratio(longer, n),
        "p_value": _binom_p(longer, n),
    }


def length_bias(project: Project) -> dict:
    """Overall length bias of the project's counted judgments (per rater: rater_quality)."""
    j = _load(project, with_criteria=False)
    _, _, lengths = _responses(project, j)
    return _clean(_length_bias(j, lengths))


# ----------------------------------------------------------------------------- progress


def _progress(project: Project) -> dict:
    """Completion, counted judgments per day, and each rater's judgments per day (recent)."""
    totals = Comparison.objects.filter(project=project).aggregate(
        regular=Count("id", filter=Q(gold_choice__isnull=True)),
        gold=Count("id", filter=Q(gold_choice__isnull=False)),
        started=Count("id", filter=Q(gold_choice__isnull=True, judged_count__gt=0)),
        done=Count("id", filter=Q(gold_choice__isnull=True, judged_count__gte=project.overlap)),
        judged=Sum(
            Least(F("judged_count"), Value(project.overlap)),
            filter=Q(gold_choice__isnull=True),
        ),
    )
    target = totals["regular"] * project.overlap
    daily = list(
        Judgment.objects.filter(project=project, counted=True, is_gold=False)
        .annotate(day=TruncDate("created_at"))
        .order_by("day")
        .values_list("day")
        .annotate(n=Count("id"))
    )
    days, counts = [d.isoformat() for d, _ in daily], [n for _, n in daily]
    since = timezone.localdate() - timedelta(days=THROUGHPUT_DAYS - 1)
    recent = (
        Judgment.objects.filter(project=project, created_at__date__gte=since)
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
            "share": _ratio(totals["judged"] or 0, target),
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
    }


# ----------------------------------------------------------------------------- snapshot


def compute_metrics(project: Project) -> dict:
    """Everything the dashboard shows, as one JSON-safe dict."""
    j = _load(project)
    names, models, lengths = _responses(project, j)
    gold_answer = _gold_answers(project, j)
    raters = _rater_table(project, j, gold_answer, lengths)
    progress = _progress(project)
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
        "agreement": _agreement(project, j),
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
        "leaderboard": _leaderboard(j, names, models),
        "length_bias": _length_bias(j, lengths),
        **progress,
    }
    return _clean(data)


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
        Judgment.objects.filter(
            rater=rater, project__in=[p.pk for p in projects], created_at__gte=start
        )
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
