"""comparisons.overlap: the stopping rule, checked against its definition on every sequence of
up to five judgments (four choices: 1 + 4 + 16 + 64 + 256 + 1024 sequences) and every bound."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from comparisons.overlap import is_complete, lead_margin, leader, target

CHOICES = ("a", "b", "tie", "both_bad")
SEQUENCES = [s for n in range(6) for s in itertools.product(CHOICES, repeat=n)]
BOUNDS = [(low, high) for high in range(1, 6) for low in range(1, high + 1)]


def _strict_leader(votes) -> str | None:
    ranked = Counter(votes).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _cannot_be_overturned(votes, high: int) -> bool:
    """By brute force: every way the judgments left up to `high` could go keeps the current
    strict leader the strict leader."""
    now = _strict_leader(votes)
    if now is None:
        return False
    rest = high - len(votes)
    return all(
        _strict_leader([*votes, *more]) == now for more in itertools.product(CHOICES, repeat=rest)
    )


def test_there_are_1365_sequences():
    assert len(SEQUENCES) == 1365


@pytest.mark.parametrize(("low", "high"), BOUNDS)
def test_the_rule_matches_its_definition_on_every_sequence(low, high):
    for votes in SEQUENCES:
        n = len(votes)
        if n > high:
            continue
        expected = n >= low and (n >= high or _cannot_be_overturned(votes, high))
        assert is_complete(n, lead_margin(votes), minimum=low, maximum=high) == expected, votes


def test_lead_margin_and_leader():
    assert lead_margin([]) == 0 and leader([]) is None
    assert lead_margin(["a"]) == 1 and leader(["a"]) == "a"
    assert lead_margin(["a", "b"]) == 0 and leader(["a", "b"]) is None
    assert lead_margin(["tie", "tie", "a"]) == 1 and leader(["tie", "tie", "a"]) == "tie"
    assert lead_margin(["b", "b", "b", "a", "both_bad"]) == 2


def test_strength_and_criteria_do_not_enter_the_rule():
    # The rule sees choices only: its inputs are the count and the margin.
    assert is_complete(2, lead_margin(["a", "a"]), minimum=2, maximum=3)
    assert not is_complete(2, lead_margin(["a", "both_bad"]), minimum=2, maximum=3)


def _stop(votes, low: int, high: int) -> tuple[str, ...]:
    """The prefix at which the adaptive policy stops, reading `votes` one at a time."""
    for n in range(len(votes) + 1):
        if is_complete(n, lead_margin(votes[:n]), minimum=low, maximum=high):
            return votes[:n]
    raise AssertionError(f"never complete: {votes}")


def test_with_max_3_it_yields_exactly_the_majority_labels_of_fixed_overlap_3():
    for votes in itertools.product(CHOICES, repeat=3):
        stopped = _stop(votes, 2, 3)
        assert len(stopped) in (2, 3)
        # Stop at 2-0, otherwise take a third.
        assert (len(stopped) == 2) == (votes[0] == votes[1]), votes
        assert _strict_leader(stopped) == _strict_leader(votes), votes


@pytest.mark.parametrize(("low", "high"), [(1, 3), (2, 3), (2, 5), (3, 5), (1, 5)])
def test_a_decided_stop_never_changes_the_label_fixed_overlap_max_would_give(low, high):
    for votes in itertools.product(CHOICES, repeat=high):
        stopped = _stop(votes, low, high)
        if len(stopped) < high:
            assert _strict_leader(stopped) is not None
            assert _strict_leader(stopped) == _strict_leader(votes), (votes, stopped)


@pytest.mark.parametrize(("low", "high"), BOUNDS)
def test_target_leases_min_at_once_then_one_at_a_time_and_none_once_complete(low, high):
    for votes in SEQUENCES:
        n = len(votes)
        if n > high:
            continue
        margin = lead_margin(votes)
        t = target(n, margin, minimum=low, maximum=high)
        if is_complete(n, margin, minimum=low, maximum=high):
            assert t == n
        elif n < low:
            assert t == low
        else:
            assert t == n + 1
        assert t <= high  # never a slot past max_overlap


def test_the_fixed_policy_is_the_rule_with_both_bounds_at_overlap():
    for votes in SEQUENCES:
        n = len(votes)
        assert is_complete(n, lead_margin(votes), minimum=3, maximum=3) == (n >= 3)
        if n < 3:
            assert target(n, lead_margin(votes), minimum=3, maximum=3) == 3
