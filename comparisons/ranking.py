"""Ranking tasks, the pure part: tiers, balanced display orders, pairs, Copeland.

A ranking of a comparison's K responses (keyed a, b, c, … in import order) is stored
canonically as tiers, best first, each tier's keys in key order: [["c"], ["a", "b"], ["d"]]
says c is best, a and b tie, d is last. A key's rank is its tier's place from 1 (dense:
the ranking above gives c 1, a and b 2, d 3).

No database here: the queue, the exports and the metrics call these on plain values.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MIN_RESPONSES = 3
MAX_RESPONSES = 9
KEYS = string.ascii_lowercase[:MAX_RESPONSES]

Tiers = list[list[str]]

AGGREGATION_METHOD = "copeland"
AGGREGATION_DEFINITION = (
    "a pair (x, y) of a comparison is decided when more of its raters rank x above y than y "
    "above x (a rater who ties them counts for neither); the comparison's aggregated order is "
    "Copeland's: each response scores its decided wins minus its decided losses, and responses "
    "are tiered by that score, best first (equal scores share a tier); each decided pair is "
    "one row, chosen_rank and rejected_rank are the two responses' tiers in that order, from 1"
)


class RankingError(ValueError):
    """A ranking that is not a valid ordering of the comparison's responses."""


def keys_for(count: int) -> list[str]:
    """The response keys of a comparison with `count` responses."""
    if not 0 <= count <= MAX_RESPONSES:
        raise RankingError(f"a ranking has at most {MAX_RESPONSES} responses, not {count}")
    return list(KEYS[:count])


def check_tiers(value: object, keys: Sequence[str], *, allow_ties: bool = True) -> Tiers:
    """The canonical form of a ranking of `keys`, or RankingError saying what is wrong.

    Every key must appear exactly once; no tier may be empty; with allow_ties False every
    tier holds one key.
    """
    if not isinstance(value, list | tuple) or not value:
        raise RankingError('Rank every response, best first, e.g. [["c"], ["a", "b"], ["d"]].')
    expected = set(keys)
    seen: set[str] = set()
    tiers: Tiers = []
    for tier in value:
        if isinstance(tier, str):
            tier = [tier]  # a bare key is a tier of one
        if not isinstance(tier, list | tuple) or not tier:
            raise RankingError("Each tier must be a non-empty list of response keys.")
        for key in tier:
            if not isinstance(key, str) or key not in expected:
                raise RankingError(
                    f"{key!r} names no response here (expected one of {', '.join(keys)})."
                )
            if key in seen:
                raise RankingError(f"Response {key!r} is ranked twice.")
            seen.add(key)
        if len(tier) > 1 and not allow_ties:
            raise RankingError("This project does not allow ties.")
        tiers.append(sorted(tier))
    missing = [k for k in keys if k not in seen]
    if missing:
        raise RankingError(f"Rank every response: {', '.join(missing)} not ranked.")
    return tiers


def ranks(tiers: Tiers) -> dict[str, int]:
    """{key: its tier's place from 1}."""
    return {key: place for place, tier in enumerate(tiers, start=1) for key in tier}


def tiers_from_ranks(rank_of: Mapping[str, int]) -> Tiers:
    """Tiers from a rank number per key (equal numbers tie; gaps are fine: 1, 1, 3)."""
    by_rank: dict[int, list[str]] = {}
    for key, rank in rank_of.items():
        by_rank.setdefault(rank, []).append(key)
    return [sorted(by_rank[r]) for r in sorted(by_rank)]


def pair_choice(tiers: Tiers, x: str = "a", y: str = "b") -> str:
    """The ranking's verdict on one pair: x, y or "tie" (the pairwise vocabulary when x=a, y=b)."""
    r = ranks(tiers)
    if r[x] == r[y]:
        return "tie"
    return x if r[x] < r[y] else y


def order_string(tiers: Tiers) -> str:
    """A compact, readable form: "c>a=b>d"."""
    return ">".join("=".join(tier) for tier in tiers)


# --- balanced display orders ---------------------------------------------------------------


def williams_rows(count: int) -> list[list[int]]:
    """Williams' balanced Latin square over `count` items: rows are display orders.

    Every item takes every position once per `count` rows (each block of `count` rows is a
    Latin square), and every item directly precedes every other equally often over all the
    rows: `count` rows for an even count, 2 * `count` (the square and its mirror) for an odd one.
    """
    if count <= 0:
        return []
    # The first row 0, 1, n-1, 2, n-2, …; each next row adds 1 to every entry (mod n).
    first, low, high = [0], 1, count - 1
    while len(first) < count:
        first.append(low)
        low += 1
        if len(first) < count:
            first.append(high)
            high -= 1
    rows = [[(x + r) % count for x in first] for r in range(count)]
    if count % 2:
        rows += [list(reversed(row)) for row in rows]
    return rows


def display_order(count: int, *, nth: int, seed: int = 0) -> list[str]:
    """The display order of a comparison's `nth` lease (from 0): row nth of the Williams
    square, its items relabelled by a rotation of `seed` (the comparison's id), so that
    across comparisons no response key is favoured by the first raters' rows either.

    Over a comparison's first n leases each response is in each position at most
    ceil(n / count) times and at least floor(n / count) times.
    """
    rows = williams_rows(count)
    if not rows:
        return []
    shift = seed % count
    return [KEYS[(i + shift) % count] for i in rows[nth % len(rows)]]


# --- aggregation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A decided pair of one comparison: `chosen` ranked above `rejected` by more raters."""

    chosen: str
    rejected: str
    votes_for: int  # raters ranking chosen above rejected
    votes_against: int  # raters ranking rejected above chosen
    num_judgments: int  # raters who ranked the comparison (ties included)

    @property
    def agreement(self) -> float:
        """The share of the comparison's raters who ranked the pair this way."""
        return round(self.votes_for / self.num_judgments, 6)

    @property
    def margin(self) -> float:
        return round((self.votes_for - self.votes_against) / self.num_judgments, 6)


def pair_votes(rankings: Iterable[Tiers], keys: Sequence[str]) -> dict[tuple[str, str], int]:
    """{(x, y): raters who rank x above y} over every ordered pair of keys."""
    above = {(x, y): 0 for x in keys for y in keys if x != y}
    for tiers in rankings:
        r = ranks(tiers)
        for x, y in above:
            if r[x] < r[y]:
                above[x, y] += 1
    return above


def decided_pairs(rankings: Sequence[Tiers], keys: Sequence[str]) -> list[Pair]:
    """The pairs a majority of raters' relative order decides, in key order of the pair.

    Tied pairs (as many raters each way, including when all tie them) decide nothing.
    """
    above = pair_votes(rankings, keys)
    n = len(rankings)
    pairs = []
    for i, x in enumerate(keys):
        for y in keys[i + 1 :]:
            xy, yx = above[x, y], above[y, x]
            if xy > yx:
                pairs.append(Pair(x, y, xy, yx, n))
            elif yx > xy:
                pairs.append(Pair(y, x, yx, xy, n))
    return pairs


def copeland(pairs: Iterable[Pair], keys: Sequence[str]) -> Tiers:
    """Copeland's aggregated order: wins minus losses over the decided pairs, tiered."""
    score = dict.fromkeys(keys, 0)
    for pair in pairs:
        score[pair.chosen] += 1
        score[pair.rejected] -= 1
    by_score: dict[int, list[str]] = {}
    for key in keys:
        by_score.setdefault(score[key], []).append(key)
    return [by_score[s] for s in sorted(by_score, reverse=True)]


def aggregate(rankings: Sequence[Tiers], keys: Sequence[str]) -> tuple[Tiers, list[Pair]]:
    """A comparison's aggregated order (Copeland) and its decided pairs, best pairs first:
    ordered by the chosen response's rank, then the rejected one's, then keys."""
    pairs = decided_pairs(rankings, keys)
    order = copeland(pairs, keys)
    r = ranks(order)
    pairs.sort(key=lambda p: (r[p.chosen], r[p.rejected], p.chosen, p.rejected))
    return order, pairs


# --- agreement with a reference order ------------------------------------------------------


def pairwise_accuracy(tiers: Tiers, gold: Tiers) -> tuple[int, int]:
    """(pairs the ranking orders as the gold order does, pairs the gold order decides).

    A pair the gold ranking ties is not counted; a pair the gold order decides and the
    ranking ties counts as a miss.
    """
    r, g = ranks(tiers), ranks(gold)
    keys = sorted(g)
    agree = total = 0
    for i, x in enumerate(keys):
        for y in keys[i + 1 :]:
            if g[x] == g[y]:
                continue
            total += 1
            agree += (r[x] - r[y]) * (g[x] - g[y]) > 0
    return agree, total
