"""Metrics of ranking projects (comparisons.metrics.ranking)."""

from __future__ import annotations

import json

import pytest

from comparisons import metrics, queue
from comparisons.metrics.ranking import (
    AGREEMENT_METHOD,
    RankingRow,
    agreement,
    fractional_ranks,
    gold_accuracy,
    leaderboard,
    position_bias,
    ranking_metrics,
)
from comparisons.models import TaskType
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory


def _tiers(text: str) -> list[list[str]]:
    return [tier.split("=") for tier in text.split(">")]


def _rows(plan: dict[int, list[str]], *, shown=None, gold=None) -> list[RankingRow]:
    return [
        RankingRow(cid, rater, _tiers(order), shown, gold is not None, gold)
        for cid, orders in plan.items()
        for rater, order in enumerate(orders)
    ]


def test_fractional_ranks_share_the_places_a_tie_spans():
    assert fractional_ranks(_tiers("c>a=b>d")) == {"c": 1, "a": 2.5, "b": 2.5, "d": 4}


def test_agreement_is_one_for_identical_rankings_and_falls_when_raters_disagree():
    same = agreement(_rows({1: ["a>b>c>d"] * 3, 2: ["d>c>b>a"] * 3}))
    assert same["method"] == AGREEMENT_METHOD
    assert same["alpha"] == pytest.approx(1.0)
    assert same["pair_agreement"] == pytest.approx(1.0)
    assert (same["comparisons"], same["rankings"]) == (2, 6)

    split = agreement(_rows({1: ["a>b>c>d", "a>b>c>d", "d>c>b>a"], 2: ["d>c>b>a"] * 3}))
    opposed = agreement(_rows({1: ["a>b>c>d", "d>c>b>a"], 2: ["a>b>c>d", "d>c>b>a"]}))
    assert 0 < split["alpha"] < 1
    assert opposed["alpha"] < 0 < split["alpha"]
    # Comparison 1: per pair, of the 6 ordered rater pairs 2 agree; comparison 2: all agree.
    assert split["pair_agreement"] == pytest.approx((2 / 6 + 1) / 2)


def test_agreement_is_undefined_without_a_second_rater():
    assert agreement(_rows({1: ["a>b>c"]}))["alpha"] is None


def test_the_leaderboard_counts_every_ranked_pair_and_ranks_the_usual_winner_first():
    rows = _rows({1: ["a>b>c", "a>c>b", "a=b>c"], 2: ["b>a>c"] * 3})
    models = {1: ["alpha", "beta", "gamma"], 2: ["alpha", "beta", "gamma"]}
    board = leaderboard(rows, models)
    assert board["judgments"] == 6 * 3  # six rankings of three responses: three games each
    names = [m["name"] for m in board["models"]]
    assert names[-1] == "gamma"  # never ranked above anyone
    gamma = board["models"][-1]
    assert (gamma["wins"], gamma["losses"]) == (1, 11)
    alpha = next(m for m in board["models"] if m["name"] == "alpha")
    # Wins 2 + 2 + 1 + 3 (over gamma in comparison 2), the a=b tie, three losses to beta.
    assert (alpha["wins"], alpha["ties"], alpha["losses"]) == (8, 1, 3)


def test_position_bias_shows_raters_who_always_rank_the_first_shown_response_best():
    rows = [
        RankingRow(1, 0, _tiers("b>a>c"), ["b", "c", "a"], False, None),
        RankingRow(2, 0, _tiers("c>b>a"), ["c", "a", "b"], False, None),
        RankingRow(3, 0, _tiers("a>b=c"), ["a", "b", "c"], False, None),
    ]
    bias = position_bias(rows)
    first, second, third = bias["slots"]
    assert (first["slot"], first["n"], first["top_share"]) == (1, 3, 1.0)
    assert first["mean_normalised_rank"] == 0.0
    assert second["top_share"] == third["top_share"] == 0.0
    assert bias["expected_top_share"] == pytest.approx(1 / 3)


def test_gold_accuracy_is_pairwise_agreement_with_the_gold_order():
    gold = _tiers("a>b>c>d")
    rows = [
        RankingRow(9, 7, _tiers("a>b>c>d"), None, True, gold),
        RankingRow(9, 8, _tiers("b>a>c>d"), None, True, gold),  # one pair of six wrong
        RankingRow(9, 8, _tiers("a>b>c=d"), None, True, gold),  # the tie is a miss
        RankingRow(1, 8, _tiers("d>c>b>a"), None, False, None),  # not gold: not counted
    ]
    result = gold_accuracy(rows)
    assert result["raters"]["7"] == {"gold_rankings": 1, "gold_pairs": 6, "gold_accuracy": 1.0}
    assert result["raters"]["8"]["gold_accuracy"] == pytest.approx(10 / 12)
    assert result["overall"] == pytest.approx(16 / 18)


@pytest.mark.django_db
def test_the_snapshot_of_a_ranking_project_carries_the_ranking_metrics():
    project = ProjectFactory(task_type=TaskType.RANKING, gold_rate=0.5)
    raters = [UserFactory() for _ in range(3)]
    project.raters.add(*raters)
    for i in range(2):
        ComparisonFactory(
            project=project, responses=[(f"model-{k}", f"answer {k} {i}") for k in "abcd"]
        )
    ComparisonFactory(
        project=project,
        gold_choice="a",
        gold_ranking=_tiers("a>b>c>d"),
        open_slots=0,
        responses=[(f"model-{k}", f"gold {k}") for k in "abcd"],
    )
    for rater in raters:
        while (lease := queue.next_assignment(rater, project)) is not None:
            queue.submit_ranking(lease, ranking=_tiers("a>b>c>d"))
    data = metrics.compute_metrics(project)
    json.dumps(data)  # JSON-safe, as the snapshot stores it
    assert data["ranking"]["agreement"]["alpha"] == pytest.approx(1.0)
    assert data["ranking"]["gold"]["overall"] == 1.0
    assert data["ranking"]["gold"]["pairs"] == 3 * 6
    assert [m["name"] for m in data["leaderboard"]["models"]] == [
        "model-a",
        "model-b",
        "model-c",
        "model-d",
    ]
    assert data["leaderboard"]["judgments"] == 2 * 3 * 6
    assert len(data["ranking"]["position_bias"]["slots"]) == 4
    assert ranking_metrics(project)["agreement"] == data["ranking"]["agreement"]
