"""comparisons.ranking: tiers, balanced display orders, pair expansion, Copeland (pure)."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from comparisons import ranking
from comparisons.ranking import RankingError


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "Rank every response"),
        ("abcd", "Rank every response"),
        ([["a"], ["b"], ["c"]], "d not ranked"),
        ([["a", "b"], ["c"], ["d"], ["a"]], "ranked twice"),
        ([["a"], ["b"], ["c"], ["e"]], "'e' names no response"),
        ([["a"], [], ["b", "c", "d"]], "non-empty list"),
        ([["a"], [1], ["b", "c", "d"]], "1 names no response"),
        ({"a": 1}, "Rank every response"),
    ],
)
def test_check_tiers_refuses_what_is_not_one_ordering_of_every_response(value, message):
    with pytest.raises(RankingError, match=message):
        ranking.check_tiers(value, ["a", "b", "c", "d"])


def test_check_tiers_returns_the_canonical_form():
    # A bare key is a tier of one; each tier's keys in key order; the tier order kept.
    assert ranking.check_tiers(["c", ["b", "a"], ["d"]], list("abcd")) == [
        ["c"],
        ["a", "b"],
        ["d"],
    ]


def test_check_tiers_refuses_ties_when_the_project_does_not_allow_them():
    with pytest.raises(RankingError, match="does not allow ties"):
        ranking.check_tiers([["a", "b"], ["c"]], list("abc"), allow_ties=False)
    assert ranking.check_tiers([["b"], ["a"], ["c"]], list("abc"), allow_ties=False)


def test_ranks_pair_choice_and_ranks_back_to_tiers():
    tiers = [["c"], ["a", "b"], ["d"]]
    assert ranking.ranks(tiers) == {"c": 1, "a": 2, "b": 2, "d": 3}
    assert ranking.pair_choice(tiers) == "tie"
    assert ranking.pair_choice([["b"], ["a"], ["c"]]) == "b"
    assert ranking.pair_choice(tiers, "c", "d") == "c"
    assert ranking.tiers_from_ranks({"a": 3, "b": 3, "c": 1, "d": 4}) == [["c"], ["a", "b"], ["d"]]
    assert ranking.order_string(tiers) == "c>a=b>d"


@pytest.mark.parametrize("count", range(3, 10))
def test_williams_rows_are_latin_squares_balanced_for_neighbours(count):
    rows = ranking.williams_rows(count)
    assert len(rows) == (count if count % 2 == 0 else 2 * count)
    for block in (rows[:count], rows[count:] or rows[:count]):
        for position in range(count):
            assert sorted(row[position] for row in block) == list(range(count))
    # Each ordered pair of neighbours equally often over all rows.
    neighbours = Counter(pair for row in rows for pair in pairwise(row))
    assert len(neighbours) == count * (count - 1)
    assert len(set(neighbours.values())) == 1


@pytest.mark.parametrize("count", range(3, 10))
@pytest.mark.parametrize("raters", [3, 4, 9, 12])
def test_display_orders_put_each_response_in_each_position_about_equally_often(count, raters):
    orders = [ranking.display_order(count, nth=n, seed=17) for n in range(raters)]
    for order in orders:
        assert sorted(order) == ranking.keys_for(count)
    for position in range(count):
        seen = Counter(order[position] for order in orders)
        low, high = raters // count, -(-raters // count)
        assert all(low <= seen[key] <= high for key in ranking.keys_for(count)), seen


def test_display_orders_differ_across_comparisons():
    firsts = {ranking.display_order(4, nth=0, seed=seed)[0] for seed in range(4)}
    assert firsts == {"a", "b", "c", "d"}


def _tiers(text: str) -> list[list[str]]:
    return [tier.split("=") for tier in text.split(">")]


def test_a_two_to_one_split_over_four_responses_decides_all_six_pairs_by_majority():
    votes = [_tiers("a>b>c>d"), _tiers("a>b>c>d"), _tiers("d>c>b>a")]
    order, pairs = ranking.aggregate(votes, list("abcd"))
    assert order == [["a"], ["b"], ["c"], ["d"]]
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("a", "b"),
        ("a", "c"),
        ("a", "d"),
        ("b", "c"),
        ("b", "d"),
        ("c", "d"),
    ]
    assert {(p.votes_for, p.votes_against, p.num_judgments) for p in pairs} == {(2, 1, 3)}
    assert {p.agreement for p in pairs} == {0.666667}
    assert {p.margin for p in pairs} == {0.333333}


def test_tied_pairs_decide_nothing():
    # Two raters disagree on a/b; a third ties c and d, the other two split them.
    votes = [_tiers("a>b>c>d"), _tiers("b>a>d>c"), _tiers("a=b>c=d")]
    order, pairs = ranking.aggregate(votes, list("abcd"))
    decided = {(p.chosen, p.rejected) for p in pairs}
    assert decided == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")}
    assert order == [["a", "b"], ["c", "d"]]
    # A tie within one ranking is no vote either way: 1 to 0 with one tie decides.
    _, pairs = ranking.aggregate([_tiers("a>b>c"), _tiers("a=b>c")], list("abc"))
    ab = next(p for p in pairs if {p.chosen, p.rejected} == {"a", "b"})
    assert (ab.chosen, ab.votes_for, ab.votes_against, ab.num_judgments) == ("a", 1, 0, 2)


def test_copeland_breaks_a_cycle_into_one_tier():
    votes = [_tiers("a>b>c"), _tiers("b>c>a"), _tiers("c>a>b")]
    order, pairs = ranking.aggregate(votes, list("abc"))
    assert len(pairs) == 3  # a>b, b>c, c>a: each 2 to 1
    assert order == [["a", "b", "c"]]


def test_pairwise_accuracy_against_a_gold_order():
    gold = _tiers("a>b=c>d")  # decides 5 pairs (b=c decides nothing)
    assert ranking.pairwise_accuracy(gold, gold) == (5, 5)
    assert ranking.pairwise_accuracy(_tiers("d>c>b>a"), gold) == (0, 5)
    # A tie where gold decides is a miss; b against c is not counted.
    assert ranking.pairwise_accuracy(_tiers("a=b>c>d"), gold) == (4, 5)
