"""Metrics of ranking projects: agreement, the leaderboard from the expanded pairs, position
bias per display slot, and gold accuracy as pairwise agreement with the gold order.

- Agreement is Krippendorff's alpha, ordinal, over the fractional ranks each rater gives each
  response (a tie shares the mean of the places it spans: a=b>c gives 1.5, 1.5, 3); a unit is
  one response of one comparison. Also the mean share of rater pairs that order a response
  pair the same way (both tie it, or both put the same one first).
- The leaderboard is the pairwise one (comparisons.metrics.leaderboard) over the K(K-1)/2
  games each ranking makes: the response ranked higher wins, a tie is half a win each way.
- Position bias: per display slot (1 is the first response shown), the mean normalised rank
  of the response shown there (0 best, 1 worst; 0.5 when position plays no part) and how
  often it is ranked in the top tier.
- Gold accuracy per rater: of the pairs a gold ranking decides, the share the rater's
  rankings of gold comparisons order the same way (comparisons.ranking.pairwise_accuracy).

`rows` everywhere is a list of RankingRow; `load_rankings` reads them (the only query here
besides the response models).
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import numpy as np

from comparisons import ranking
from comparisons.metrics.agreement import alpha
from comparisons.metrics.leaderboard import leaderboard_of_games
from comparisons.metrics.stats import ratio
from comparisons.models import Judgment, Project, Response

AGREEMENT_METHOD = "krippendorff_alpha_ordinal_over_fractional_ranks"
# Fractional ranks of up to 9 responses are multiples of 0.5 from 1 to 9.
RANK_DOMAIN = [x / 2 for x in range(2, 2 * ranking.MAX_RESPONSES + 1)]


class RankingRow(NamedTuple):
    comparison_id: int
    rater_id: int
    tiers: list[list[str]]
    shown: list[str] | None  # the display order of the lease
    is_gold: bool
    gold: list[list[str]] | None  # the comparison's gold ranking


def load_rankings(project: Project) -> tuple[list[RankingRow], dict[int, list[str]]]:
    """The project's counted, on-time rankings, and each comparison's response models by key."""
    values = (
        Judgment.objects.current()
        .filter(project=project, counted=True, is_late=False, ranking__isnull=False)
        .order_by("comparison_id", "id")
        .values_list(
            "comparison_id",
            "rater_id",
            "ranking",
            "assignment__shown_order",
            "is_gold",
            "comparison__gold_ranking",
        )
    )
    rows = [RankingRow(*row) for row in values.iterator(chunk_size=20_000)]
    models: dict[int, list[str]] = defaultdict(list)
    for cid, model in (
        Response.objects.filter(comparison__project=project)
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "model_name")
    ):
        models[cid].append(model)
    return rows, dict(models)


def fractional_ranks(tiers: list[list[str]]) -> dict[str, float]:
    """Each key's place, a tie sharing the mean of the places it spans."""
    out, start = {}, 1
    for tier in tiers:
        mean = start + (len(tier) - 1) / 2
        for key in tier:
            out[key] = mean
        start += len(tier)
    return out


def agreement(rows: list[RankingRow]) -> dict:
    """Krippendorff's alpha (ordinal) over ranks, and pairwise order agreement (see above)."""
    regular = [r for r in rows if not r.is_gold]
    by_comparison: dict[int, list[list[list[str]]]] = defaultdict(list)
    for r in regular:
        by_comparison[r.comparison_id].append(r.tiers)
    domain = {v: i for i, v in enumerate(RANK_DOMAIN)}
    counts = []
    pair_shares = []
    for rankings in by_comparison.values():
        ranks = [fractional_ranks(t) for t in rankings]
        keys = sorted(ranks[0])
        for key in keys:
            unit = np.zeros(len(RANK_DOMAIN), dtype=np.int64)
            for r in ranks:
                unit[domain[r[key]]] += 1
            counts.append(unit)
        if len(rankings) >= 2:
            # Per response pair, the share of rater pairs giving it the same relative order.
            for i, x in enumerate(keys):
                for y in keys[i + 1 :]:
                    signs = [int(np.sign(r[x] - r[y])) for r in ranks]
                    n = len(signs)
                    same = sum(signs.count(s) * (signs.count(s) - 1) for s in (-1, 0, 1))
                    pair_shares.append(same / (n * (n - 1)))
    value_counts = np.array(counts) if counts else np.zeros((0, len(RANK_DOMAIN)), np.int64)
    return {
        "method": AGREEMENT_METHOD,
        "alpha": alpha(value_counts, "ordinal", RANK_DOMAIN),
        "pair_agreement": float(np.mean(pair_shares)) if pair_shares else None,
        "comparisons": sum(1 for v in by_comparison.values() if len(v) >= 2),
        "rankings": len(regular),
    }


def leaderboard(rows: list[RankingRow], models: dict[int, list[str]]) -> dict:
    """The Bradley-Terry leaderboard over every ranking's pairs (same shape as the pairwise)."""
    names: list[str] = []
    index: dict[str, int] = {}
    first, second, outcome = [], [], []
    for r in rows:
        if r.is_gold:
            continue
        model_of = dict(zip(ranking.KEYS, models.get(r.comparison_id, []), strict=False))
        place = ranking.ranks(r.tiers)
        keys = sorted(place)
        for i, x in enumerate(keys):
            for y in keys[i + 1 :]:
                mx, my = model_of.get(x), model_of.get(y)
                if mx is None or my is None or mx == my:
                    continue  # a model against itself says nothing about models
                for name in (mx, my):
                    if name not in index:
                        index[name] = len(names)
                        names.append(name)
                first.append(index[mx])
                second.append(index[my])
                outcome.append(0 if place[x] < place[y] else 1 if place[x] > place[y] else 2)
    if not outcome:
        return {
            "models": [],
            "matrix": {"models": [], "win_rate": [], "counts": []},
            "judgments": 0,
        }
    board = leaderboard_of_games(names, np.array(first), np.array(second), np.array(outcome))
    board["pairs_from_rankings"] = True
    return board


def position_bias(rows: list[RankingRow]) -> dict:
    """Per display slot: mean normalised rank of the response shown there, share ranked top."""
    sums: dict[int, float] = defaultdict(float)
    tops: dict[int, int] = defaultdict(int)
    seen: dict[int, int] = defaultdict(int)
    expected_top = 0.0
    n = 0
    for r in rows:
        if r.is_gold or not r.shown or len(r.shown) < 2:
            continue
        k = len(r.shown)
        ranks = fractional_ranks(r.tiers)
        top = set(r.tiers[0])
        n += 1
        expected_top += len(top) / k
        for slot, key in enumerate(r.shown, start=1):
            sums[slot] += (ranks[key] - 1) / (k - 1)
            tops[slot] += key in top
            seen[slot] += 1
    return {
        "rankings": n,
        "expected_top_share": ratio(expected_top, n),
        "slots": [
            {
                "slot": slot,
                "n": seen[slot],
                "mean_normalised_rank": ratio(sums[slot], seen[slot]),
                "top_share": ratio(tops[slot], seen[slot]),
            }
            for slot in sorted(seen)
        ],
    }


def gold_accuracy(rows: list[RankingRow]) -> dict:
    """Per rater (by user id) and overall: pairwise agreement with the gold orders."""
    agree: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    rankings: dict[int, int] = defaultdict(int)
    for r in rows:
        if not r.is_gold or not r.gold:
            continue
        a, t = ranking.pairwise_accuracy(r.tiers, r.gold)
        agree[r.rater_id] += a
        total[r.rater_id] += t
        rankings[r.rater_id] += 1
    return {
        "overall": ratio(sum(agree.values()), sum(total.values())),
        "pairs": sum(total.values()),
        "raters": {
            str(rater): {
                "gold_rankings": rankings[rater],
                "gold_pairs": total[rater],
                "gold_accuracy": ratio(agree[rater], total[rater]),
            }
            for rater in sorted(total)
        },
    }


def ranking_metrics(project: Project) -> dict:
    """Everything above for one project, read once."""
    rows, models = load_rankings(project)
    return {
        "agreement": agreement(rows),
        "leaderboard": leaderboard(rows, models),
        "position_bias": position_bias(rows),
        "gold": gold_accuracy(rows),
    }
