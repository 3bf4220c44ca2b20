"""From a comparison's votes to its verdict: the aggregation maths of the preference formats.

Pure functions over plain values (no database, no Django), so every rule here is tested on
hand-built votes. A vote is (canonical choice, strength or None).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from comparisons.models import Choice

Vote = tuple[str, str | None]

# Llama-2-style discrete margins: a stronger stated preference asks the reward model for a
# wider gap. A judgment without a strength (projects that don't ask for it) counts fully.
STRENGTH_WEIGHT = {"slightly": 1 / 3, "clearly": 2 / 3, "much": 1.0, None: 1.0}

# What the manifest says each number and rule means (quoted there, so a row can be traced).
DEFINITIONS = {
    "agreement": (
        "share of the comparison's exported judgments whose choice equals the row's verdict "
        "(for trl-kto both-bad rows, the share of both_bad votes)"
    ),
    "margin": (
        "(sum of w over judgments preferring the chosen response - sum of w over judgments "
        "preferring the rejected one) / num_judgments, w = 1/3 slightly, 2/3 clearly, 1 much, "
        "1 when no strength was given; tie and both_bad votes add 0 but count in num_judgments; "
        "rounded to 6 decimals"
    ),
    "majority": "a choice with more than half of the comparison's votes; tie and both_bad "
    "are votes but yield no pair (trl-kto: both_bad yields two false rows)",
    "unanimous": "every vote for the same choice",
    "adjudicated": "a reviewer's verdict (the latest adjudication of the comparison) replaces "
    "its vote in every aggregation: one verdict, exempt from min_agreement and min_judgments, "
    "agreement and margin those of the votes relative to it; trl rows say adjudicated: true; an "
    "exclude verdict drops the comparison (rows_dropped.excluded); the judgments formats keep "
    "every judgment and carry the verdict in force in the adjudication column",
    "all": "every exported judgment its own row, with the comparison's num_judgments and the "
    "agreement and margin of that judgment's choice (a minority row has a negative margin)",
}
AGGREGATED_ONLY_DEFINITIONS = frozenset({"agreement", "margin", "majority", "unanimous", "all"})
EXCLUDE = "exclude"  # the adjudication verdict that leaves a comparison out of exports


@dataclass(frozen=True)
class Verdict:
    """What one comparison (or, with aggregation "all", one judgment) contributes."""

    comparison_id: int
    choice: str  # canonical a / b / tie / both_bad
    num_judgments: int
    agreement: float
    margin: float  # relative to choice; 0 for tie and both_bad
    adjudicated: bool = False  # a reviewer's verdict, in place of the vote


def _verdict(cid: int, votes: list[Vote], choice: str) -> Verdict:
    n = len(votes)
    agreeing = sum(1 for c, _ in votes if c == choice)
    margin = 0.0
    if choice in (Choice.A, Choice.B):
        other = Choice.B if choice == Choice.A else Choice.A
        weight_for = sum(STRENGTH_WEIGHT.get(s, 1.0) for c, s in votes if c == choice)
        weight_against = sum(STRENGTH_WEIGHT.get(s, 1.0) for c, s in votes if c == other)
        margin = (weight_for - weight_against) / n
    return Verdict(cid, choice, n, round(agreeing / n, 6), round(margin, 6))


def adjudicated(cid: int, votes: list[Vote], choice: str) -> Verdict:
    """A reviewer's verdict `choice`, with the agreement and margin of the votes it replaces."""
    v = _verdict(cid, votes, choice)
    return Verdict(v.comparison_id, v.choice, v.num_judgments, v.agreement, v.margin, True)


def aggregate(cid: int, votes: list[Vote], aggregation: str) -> tuple[list[Verdict], str | None]:
    """The verdicts of one comparison's votes, or why there are none."""
    if aggregation == "all":
        return [_verdict(cid, votes, c) for c, _ in votes], None
    counts = Counter(c for c, _ in votes)
    top, top_count = max(counts.items(), key=lambda item: (item[1], item[0]))
    if aggregation == "unanimous":
        if top_count != len(votes):
            return [], "not_unanimous"
    elif top_count * 2 <= len(votes):
        return [], "no_majority"
    return [_verdict(cid, votes, top)], None


def drop_reason(format: str, choice: str) -> str | None:
    """None when a verdict of this choice becomes rows in this format, else why it does not."""
    if choice == Choice.TIE:
        return "tie"
    if choice == Choice.BOTH_BAD and format != "trl-kto":
        return "both_bad"
    return None
