"""Rater quality: per-rater numbers, the threshold flags and the quality score (pure).

`project` is read for its thresholds only (min_seconds_per_judgment, gold_accuracy_threshold,
position_bias_threshold).
"""

from __future__ import annotations

import numpy as np

from comparisons.metrics.load import BOTH_BAD, TIE, A, B, Judgments
from comparisons.metrics.stats import EPS, binom_p, ratio, value_counts, wilson_interval
from comparisons.models import Project

MIN_GOLD_JUDGMENTS = 10

MIN_AGREEMENT_JUDGMENTS = 5

MIN_POSITION_PICKS = 20

QUALITY_WEIGHTS = {"gold": 0.4, "agreement": 0.3, "position": 0.15, "speed": 0.15}

FLAG_LABELS = {
    "too_fast": "Too fast",
    "low_gold": "Below gold threshold",
    "position_bias": "Position-biased",
}


def loo_agreement(j: Judgments) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: whether a leave-one-out majority exists, and whether the judgment matches it.

    The majority of the *other* counted judgments on the same comparison: their most common
    choice when it is unique (a split among the others decides nothing).
    """
    mask = j.project_mask
    n_units = len(j.comparison_ids)
    counts = value_counts(j.unit[mask], j.choice[mask].astype(np.int64), n_units, 4)
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


def rater_table(
    project: Project,
    j: Judgments,
    gold_answer: np.ndarray,
    lengths: np.ndarray,
    *,
    skips: dict[int, int],
    emails: dict[int, str],
    adjudicated: np.ndarray | None = None,
) -> list[dict]:
    """One row per rater: their numbers, flags and quality; `skips` and `emails` by user id.

    `gold_answer` holds each judgment's known answer (load.known_answers): a reviewer's verdict
    counts like a gold answer; `adjudicated` marks the judgments whose answer is a verdict.
    """
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
    if adjudicated is None:
        adjudicated = np.zeros(j.size, bool)
    adjudicated_n = per_rater(adjudicated)
    adjudicated_ok = per_rater(adjudicated & (j.choice == gold_answer))

    decided, agrees = loo_agreement(j)
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
            "gold_accuracy": ratio(gold_ok[r], gold_n[r]),
            "gold_interval": wilson_interval(int(gold_ok[r]), int(gold_n[r])),
            "adjudicated_n": int(adjudicated_n[r]),
            "adjudicated_correct": int(adjudicated_ok[r]),
            "agreement_n": int(loo_n[r]),
            "agreement": ratio(loo_ok[r], loo_n[r]),
            "position_n": int(pos_n[r]),
            "left_share": ratio(pos_left[r], pos_n[r]),
            "position_p": binom_p(int(pos_left[r]), int(pos_n[r])),
            "length_n": int(len_n[r]),
            "longer_share": ratio(len_longer[r], len_n[r]),
            "tie_rate": ratio(ties[r], total[r]),
            "both_bad_rate": ratio(both_bad[r], total[r]),
            "skipped": skipped,
            "skip_rate": ratio(skipped, skipped + int(total[r])),
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
    if median is not None and median < project.min_seconds_per_judgment - EPS:
        flags.append("too_fast")
    accuracy = row.get("gold_accuracy")
    if (
        accuracy is not None
        and row.get("gold_n", 0) >= MIN_GOLD_JUDGMENTS
        and accuracy < project.gold_accuracy_threshold - EPS
    ):
        flags.append("low_gold")
    bias = row.get("position_bias")
    if (
        bias is not None
        and row.get("position_n", 0) >= MIN_POSITION_PICKS
        and bias >= project.position_bias_threshold - EPS
    ):
        flags.append("position_bias")
    return flags


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
