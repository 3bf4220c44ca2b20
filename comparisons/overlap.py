"""The overlap policies' stopping rule: when a comparison has judgments enough.

Pure functions, no database: the queue calls them on every counted judgment (and the policy
change repeats `is_complete` and `target` as one set-based UPDATE, see
comparisons.queue.set_overlap_policy), so "complete" means one thing everywhere.

A comparison is complete once it has at least `minimum` counted judgments and its leading
choice cannot be overturned by the judgments still possible up to `maximum` (the leader's count
exceeds the runner-up's by more than the judgments left), or once it has `maximum`, decided or
not. The fixed policy is the same rule with minimum = maximum = overlap. Choices are a, b, tie
and both_bad; strength and criteria do not enter the rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def lead_margin(choices: Iterable[str]) -> int:
    """The leading choice's count minus the runner-up's (0 for no judgments or a tie at the top)."""
    counts = [*sorted(Counter(choices).values(), reverse=True), 0, 0]
    return counts[0] - counts[1]


def is_complete(n: int, margin: int, *, minimum: int, maximum: int) -> bool:
    """Whether `n` counted judgments whose leader leads by `margin` need no more."""
    return n >= minimum and (n >= maximum or margin > maximum - n)


def target(n: int, margin: int, *, minimum: int, maximum: int) -> int:
    """How many leases plus counted judgments the comparison may have now.

    Up to `minimum` at once; past it, one more at a time while undecided; once complete, none
    beyond the judgments it has. The queue keeps open_slots = target - active leases - counted.
    """
    if is_complete(n, margin, minimum=minimum, maximum=maximum):
        return n
    return max(minimum, n + 1)


def leader(choices: Iterable[str]) -> str | None:
    """The strictly leading choice, or None (no judgments, or a tie at the top)."""
    ranked = Counter(choices).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
