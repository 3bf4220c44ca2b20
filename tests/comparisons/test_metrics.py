"""comparisons.metrics: agreement, rater quality, leaderboard, snapshots, the rater summary."""

from __future__ import annotations

import math
from datetime import timedelta

import choix
import krippendorff
import numpy as np
import pytest
from django.utils import timezone
from scipy import stats

from comparisons import metrics
from comparisons.models import (
    AssignmentStatus,
    Judgment,
    MetricsSnapshot,
    Project,
    ProjectStatus,
)
from comparisons.tasks import recompute_active_metrics, recompute_metrics
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    JudgmentFactory,
    ProjectFactory,
    UserFactory,
)


def judge(comparison, rater, choice, **extra):
    """A submitted judgment on `comparison` by `rater` (extra fields go to the Judgment)."""
    swapped = extra.pop("swapped", False)
    return JudgmentFactory(
        assignment__comparison=comparison,
        assignment__rater=rater,
        assignment__swapped=swapped,
        choice=choice,
        is_gold=comparison.gold_choice is not None,
        **extra,
    )


def from_matrix(project, raters, matrix, **extra):
    """One comparison per column; row r is rater r's choice (None: not judged)."""
    comparisons = []
    for column in zip(*matrix, strict=True):
        comparison = ComparisonFactory(project=project)
        for rater, choice in zip(raters, column, strict=True):
            if choice is not None:
                judge(comparison, rater, choice, **extra)
        comparisons.append(comparison)
    return comparisons


# ----------------------------------------------------------------------------- agreement


def test_agreement_hand_computed_case(project, alice, bob):
    # Comparison 1: both say a. Comparison 2: a vs b. Values a x3, b x1; the only
    # disagreement is within comparison 2, so D_o = 2/4 and D_e = 2*3*1/(4*3):
    # alpha = 1 - (2/4) / (6/12) = 0. Pairwise agreement: (1 + 0) / 2.
    from_matrix(project, [alice, bob], [["a", "a"], ["a", "b"]])
    result = metrics.agreement(project)
    assert result["choice"]["alpha"] == pytest.approx(0.0)
    assert result["choice"]["percent"] == pytest.approx(0.5)
    assert result["choice"]["units"] == 2
    assert result["choice"]["unanimous"] == 1
    assert result["strength"] is None


def test_three_raters_one_dissent_is_one_agreeing_pair_in_three(project, alice, bob, charlie):
    from_matrix(project, [alice, bob, charlie], [["a"], ["a"], ["b"]])
    assert metrics.agreement(project)["choice"]["percent"] == pytest.approx(1 / 3)


def test_nominal_alpha_matches_the_krippendorff_package(project, alice, bob, charlie):
    matrix = [
        ["a", "a", "b", "tie", "a", "b", None, "both_bad", "a", "b"],
        ["a", "b", "b", "tie", "a", "b", "a", "both_bad", None, "b"],
        [None, "a", "b", "a", "a", "tie", "a", "b", "a", "b"],
    ]
    from_matrix(project, [alice, bob, charlie], matrix)
    code = {"a": 0, "b": 1, "tie": 2, "both_bad": 3, None: np.nan}
    reliability = np.array([[code[v] for v in row] for row in matrix], dtype=float)
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    result = metrics.agreement(project)["choice"]
    assert result["alpha"] == pytest.approx(expected, abs=1e-12)
    assert -1 < result["alpha"] < 1


def test_strength_alpha_is_ordinal_on_the_signed_scale(project, alice, bob, charlie):
    project.use_strength = True
    project.save()
    # (choice, strength) per rater and comparison; both_bad is off the scale.
    matrix = [
        [("a", "much"), ("a", "slightly"), ("b", "clearly"), ("tie", None), ("b", "much")],
        [("a", "clearly"), ("b", "slightly"), ("b", "clearly"), ("tie", None), ("b", "clearly")],
        [("a", "much"), ("a", "slightly"), ("both_bad", None), ("a", "slightly"), ("b", "much")],
    ]
    raters = [alice, bob, charlie]
    for column in zip(*matrix, strict=True):
        comparison = ComparisonFactory(project=project)
        for rater, (choice, strength) in zip(raters, column, strict=True):
            judge(comparison, rater, choice, strength=strength)
    sign = {"a": -1, "b": 1}
    level = {"slightly": 1, "clearly": 2, "much": 3}

    def scale(choice, strength):
        if choice == "tie":
            return 0
        if choice == "both_bad":
            return np.nan
        return sign[choice] * level[strength]

    reliability = np.array([[scale(*cell) for cell in row] for row in matrix], dtype=float)
    expected = krippendorff.alpha(
        reliability_data=reliability,
        value_domain=list(range(-3, 4)),
        level_of_measurement="ordinal",
    )
    result = metrics.agreement(project)["strength"]
    assert result["alpha"] == pytest.approx(expected, abs=1e-12)
    # Ordinal, not nominal: "much" vs "clearly" on the same side is a near miss.
    nominal = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    assert result["alpha"] != pytest.approx(nominal)


def test_agreement_per_criterion(project, alice, bob):
    project.criteria = ["helpfulness", "harmlessness"]
    project.save()
    for helpful, harmless in [(("a", "a"), ("a", "b")), (("b", "b"), ("tie", "tie"))]:
        comparison = ComparisonFactory(project=project)
        for i, rater in enumerate((alice, bob)):
            judge(
                comparison,
                rater,
                "a",
                criteria={"helpfulness": helpful[i], "harmlessness": harmless[i]},
            )
    criteria = metrics.agreement(project)["criteria"]
    assert criteria["helpfulness"]["percent"] == pytest.approx(1.0)
    assert criteria["harmlessness"]["percent"] == pytest.approx(0.5)
    reliability = np.array([[0, 2], [1, 2]], dtype=float)  # a=0, b=1, tie=2
    assert criteria["harmlessness"]["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    )


def test_agreement_leaves_out_late_and_gold_judgments(project, alice, bob, charlie):
    comparison = ComparisonFactory(project=project)
    judge(comparison, alice, "a")
    judge(comparison, bob, "a")
    judge(comparison, charlie, "b", is_late=True, counted=False)
    gold = ComparisonFactory(project=project, gold_choice="a")
    judge(gold, alice, "a")
    judge(gold, bob, "b")
    result = metrics.agreement(project)["choice"]
    assert result["percent"] == pytest.approx(1.0)
    assert result["units"] == 1


def test_agreement_without_overlap_is_undefined_not_an_error(project, alice):
    judge(ComparisonFactory(project=project), alice, "a")
    result = metrics.agreement(project)["choice"]
    assert result["alpha"] is None
    assert result["percent"] is None


# ----------------------------------------------------------------------------- rater quality


def test_wilson_interval_hand_computed():
    low, high = metrics.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert metrics.wilson_interval(0, 0) is None
    assert metrics.wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_gold_accuracy_counts_and_interval(project, alice):
    for i in range(10):
        gold = ComparisonFactory(project=project, gold_choice="a" if i % 2 else "b")
        judge(gold, alice, gold.gold_choice if i < 8 else "tie")
    row = metrics.rater_scores(project)[alice.pk]
    assert (row["gold_n"], row["gold_correct"]) == (10, 8)
    assert row["gold_accuracy"] == pytest.approx(0.8)
    assert row["gold_interval"] == pytest.approx(metrics.wilson_interval(8, 10))


def test_leave_one_out_majority(project, alice, bob, charlie):
    # Comparison 1 (a, a, b): for alice and bob the others split, so nothing is decided;
    # charlie is outvoted. Comparison 2 (a, a, a): everyone agrees with the others.
    from_matrix(project, [alice, bob, charlie], [["a", "a"], ["a", "a"], ["b", "a"]])
    scores = metrics.rater_scores(project)
    assert (scores[alice.pk]["agreement_n"], scores[alice.pk]["agreement"]) == (1, 1.0)
    assert (scores[charlie.pk]["agreement_n"], scores[charlie.pk]["agreement"]) == (2, 0.5)


def test_position_bias_uses_the_display_order(project, alice, bob):
    # alice always clicks the left-hand response: canonical a when not swapped, b when swapped.
    # bob always picks canonical a, which was on the left only half the time.
    for i in range(24):
        comparison = ComparisonFactory(project=project)
        swapped = i % 2 == 1
        judge(comparison, alice, "b" if swapped else "a", swapped=swapped)
        judge(comparison, bob, "a", swapped=swapped)
    judge(ComparisonFactory(project=project), alice, "tie")  # not an A/B pick
    scores = metrics.rater_scores(project)
    assert scores[alice.pk]["left_share"] == 1.0
    assert scores[alice.pk]["position_n"] == 24
    assert scores[alice.pk]["position_p"] == pytest.approx(stats.binomtest(24, 24).pvalue)
    assert "position_bias" in scores[alice.pk]["flags"]
    assert scores[bob.pk]["left_share"] == 0.5
    assert scores[bob.pk]["position_p"] == pytest.approx(1.0)
    assert "position_bias" not in scores[bob.pk]["flags"]


def test_length_bias_overall_and_per_rater(project, alice, bob):
    for i in range(10):
        long_first = i % 2 == 0
        contents = [
            ("m1", "x" * (400 if long_first else 40)),
            ("m2", "y" * (40 if long_first else 400)),
        ]
        comparison = ComparisonFactory(project=project, responses=contents)
        judge(comparison, alice, "a" if long_first else "b")  # always the longer one
        judge(comparison, bob, "a")  # longer half the time
    equal = ComparisonFactory(project=project, responses=[("m1", "same"), ("m2", "same")])
    judge(equal, alice, "a")  # equal lengths say nothing about length bias
    scores = metrics.rater_scores(project)
    assert (scores[alice.pk]["length_n"], scores[alice.pk]["longer_share"]) == (10, 1.0)
    assert (scores[bob.pk]["length_n"], scores[bob.pk]["longer_share"]) == (10, 0.5)
    overall = metrics.length_bias(project)
    assert (overall["n"], overall["longer_wins"]) == (20, 15)
    assert overall["p_value"] == pytest.approx(stats.binomtest(15, 20).pvalue)


def test_times_rates_and_skips(project, alice):
    for seconds, choice in [(3, "a"), (9, "tie"), (5, "both_bad"), (7, "b")]:
        judge(ComparisonFactory(project=project), alice, choice, duration_ms=seconds * 1000)
    judge(ComparisonFactory(project=project), alice, "a", duration_ms=None)
    AssignmentFactory(project=project, rater=alice, status=AssignmentStatus.SKIPPED)
    row = metrics.rater_scores(project)[alice.pk]
    assert row["judgments"] == 5
    assert row["median_seconds"] == 6.0  # of the four known times
    assert row["fastest_seconds"] == 3.0
    assert row["tie_rate"] == pytest.approx(0.2)
    assert row["both_bad_rate"] == pytest.approx(0.2)
    assert (row["skipped"], row["skip_rate"]) == (1, pytest.approx(1 / 6))


def _row(**overrides):
    row = {
        "median_seconds": None,
        "gold_accuracy": None,
        "gold_n": 0,
        "position_bias": None,
        "position_n": 0,
        "agreement": None,
        "agreement_n": 0,
    }
    row.update(overrides)
    return row


def test_too_fast_fires_below_the_minimum_only():
    project = Project(min_seconds_per_judgment=5.0)
    assert metrics.rater_flags(project, _row(median_seconds=5.0)) == []
    assert metrics.rater_flags(project, _row(median_seconds=4.99)) == ["too_fast"]


def test_low_gold_fires_below_the_threshold_with_enough_gold():
    project = Project(gold_accuracy_threshold=0.7)
    n = metrics.MIN_GOLD_JUDGMENTS
    assert metrics.rater_flags(project, _row(gold_accuracy=0.7, gold_n=n)) == []
    assert metrics.rater_flags(project, _row(gold_accuracy=0.69, gold_n=n)) == ["low_gold"]
    assert metrics.rater_flags(project, _row(gold_accuracy=0.0, gold_n=n - 1)) == []


def test_position_bias_fires_at_the_threshold_with_enough_picks():
    project = Project(position_bias_threshold=0.15)
    n = metrics.MIN_POSITION_PICKS
    assert metrics.rater_flags(project, _row(position_bias=0.15, position_n=n)) == ["position_bias"]
    assert metrics.rater_flags(project, _row(position_bias=0.149, position_n=n)) == []
    assert metrics.rater_flags(project, _row(position_bias=0.5, position_n=n - 1)) == []


def test_flags_at_thresholds_from_real_judgments(project, alice, bob):
    # 20 A/B picks: 13 on the left is 0.65 (exactly 0.15 from chance), 12 is 0.60.
    for i in range(20):
        comparison = ComparisonFactory(project=project)
        judge(comparison, alice, "a" if i < 13 else "b", duration_ms=5000)
        judge(comparison, bob, "a" if i < 12 else "b", duration_ms=4999)
    scores = metrics.rater_scores(project)
    assert scores[alice.pk]["flags"] == ["position_bias"]
    assert scores[bob.pk]["flags"] == ["too_fast"]


def test_quality_score_formula():
    project = Project(min_seconds_per_judgment=10.0)
    row = _row(
        gold_accuracy=0.9,
        gold_n=metrics.MIN_GOLD_JUDGMENTS,
        agreement=0.8,
        agreement_n=metrics.MIN_AGREEMENT_JUDGMENTS,
        position_bias=0.1,
        position_n=metrics.MIN_POSITION_PICKS,
        median_seconds=5.0,
    )
    expected = 0.4 * 0.9 + 0.3 * 0.8 + 0.15 * (1 - 0.2) + 0.15 * 0.5
    assert metrics.quality_score(project, row) == pytest.approx(expected)
    # Only the parts with enough data count, re-weighted.
    assert metrics.quality_score(project, _row(agreement=0.6, agreement_n=5)) == pytest.approx(0.6)
    assert metrics.quality_score(project, _row()) is None


# ----------------------------------------------------------------------------- leaderboard


def _random_pairs(rng, strengths, n):
    m = len(strengths)
    data = []
    for _ in range(n):
        i, j = rng.choice(m, size=2, replace=False)
        p = 1 / (1 + math.exp(strengths[j] - strengths[i]))
        data.append((i, j) if rng.random() < p else (j, i))
    return data


def test_fit_matches_choix():
    rng = np.random.default_rng(1)
    data = _random_pairs(rng, [0.8, 0.2, -0.1, -0.9], 300)
    wins = np.zeros((4, 4))
    for winner, loser in data:
        wins[winner, loser] += 1
    ours = metrics.fit_bradley_terry(wins)
    theirs = choix.opt_pairwise(4, data, alpha=metrics.BT_ALPHA, tol=1e-10)
    assert ours == pytest.approx(theirs, abs=1e-5)


def test_ties_count_as_half_a_win_each_way():
    # 3 wins for 0, 1 for 1, 2 ties. Half wins: (4, 2); choix sees every decisive outcome
    # twice and every tie once each way, which is the same likelihood scaled by two.
    wins = np.array([[0, 3 + 1.0], [1 + 1.0, 0]])
    ours = metrics.fit_bradley_terry(wins, alpha=0.0 + 1e-9)
    data = [(0, 1)] * 6 + [(1, 0)] * 2 + [(0, 1), (1, 0)] * 2
    theirs = choix.opt_pairwise(2, data, alpha=2e-9, tol=1e-10)
    assert ours == pytest.approx(theirs, abs=1e-4)
    # Unpenalised, the fit reproduces the observed win share 4 / 6.
    assert 1 / (1 + math.exp(ours[1] - ours[0])) == pytest.approx(4 / 6, abs=1e-6)


def test_elo_scale():
    elo = metrics.to_elo(np.array([math.log(10), 0.0]))
    assert elo[0] - elo[1] == pytest.approx(400)
    assert elo.mean() == pytest.approx(1000)


def _simulated_cells(rng, strengths, n, tie_share=0.1):
    m = len(strengths)
    cells = np.zeros(m * m * 3, np.int64)
    for _ in range(n):
        i, j = rng.choice(m, size=2, replace=False)
        if rng.random() < tie_share:
            outcome = 2
        else:
            outcome = 0 if rng.random() < 1 / (1 + math.exp(strengths[j] - strengths[i])) else 1
        cells[(i * m + j) * 3 + outcome] += 1
    return cells


def test_bradley_terry_recovers_known_strengths_and_intervals_cover_them():
    truth = np.array([1.2, 0.5, 0.0, -0.4, -1.3])
    true_elo = metrics.to_elo(truth)
    covered = total = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        # No ties here: a tie counted as half a win is a different (shrunk) estimand.
        cells = _simulated_cells(rng, truth, 3000, tie_share=0.0)
        rating, lower, upper = metrics.bradley_terry_elo(cells, 5, rounds=200, seed=seed)
        assert np.abs(rating - true_elo).max() < 40
        assert np.all(lower <= rating) and np.all(rating <= upper)
        covered += int(((lower <= true_elo) & (true_elo <= upper)).sum())
        total += len(truth)
    assert covered / total >= 0.8


def test_leaderboard_counts_and_win_rate_matrix(project, alice, bob, charlie):
    outcomes = ["a", "a", "a", "tie", "b", "both_bad"]
    for i, choice in enumerate(outcomes):
        comparison = ComparisonFactory(
            project=project, responses=[("strong", "x" * 10), ("weak", "y" * 20)]
        )
        judge(comparison, [alice, bob, charlie][i % 3], choice)
    reversed_ = ComparisonFactory(project=project, responses=[("weak", "x"), ("strong", "yy")])
    judge(reversed_, alice, "b")  # strong wins from position b
    board = metrics.leaderboard(project)
    by_name = {m["name"]: m for m in board["models"]}
    assert [m["name"] for m in board["models"]] == ["strong", "weak"]
    assert (by_name["strong"]["wins"], by_name["strong"]["ties"], by_name["strong"]["losses"]) == (
        4,
        2,
        1,
    )
    assert by_name["strong"]["both_bad"] == 1
    assert by_name["strong"]["lower"] <= by_name["strong"]["rating"] <= by_name["strong"]["upper"]
    assert by_name["strong"]["rating"] + by_name["weak"]["rating"] == pytest.approx(2000)
    matrix = board["matrix"]
    assert matrix["models"] == ["strong", "weak"]
    assert matrix["counts"] == [[0, 7], [7, 0]]
    assert matrix["win_rate"][0][1] == pytest.approx(5 / 7)  # (4 wins + 2 halves) / 7
    assert matrix["win_rate"][1][0] == pytest.approx(2 / 7)
    assert matrix["win_rate"][0][0] is None


def test_leaderboard_ignores_gold_and_late_judgments(project, alice, bob):
    gold = ComparisonFactory(project=project, gold_choice="a", responses=[("g1", "x"), ("g2", "y")])
    judge(gold, alice, "a")
    comparison = ComparisonFactory(project=project, responses=[("m1", "x"), ("m2", "y")])
    judge(comparison, alice, "a")
    judge(comparison, bob, "b", is_late=True, counted=False)
    board = metrics.leaderboard(project)
    assert [m["name"] for m in board["models"]] == ["m1", "m2"]
    assert board["judgments"] == 1


# ----------------------------------------------------------------------------- snapshots


def test_compute_snapshot_stores_everything_as_json(project, alice, bob):
    from_matrix(project, [alice, bob], [["a", "b"], ["a", "a"]])
    snapshot = metrics.compute_snapshot(project)
    snapshot.refresh_from_db()
    assert snapshot.judgment_count == 4
    data = snapshot.data
    assert {"agreement", "raters", "leaderboard", "length_bias", "completion", "progress"} <= set(
        data
    )
    assert data["completion"]["comparisons"] == 2
    assert data["progress"]["cumulative"][-1] == 4
    assert data["by_rater"][f"u{alice.pk}"]["judgments"] == 2
    assert metrics.latest_snapshot(project) == snapshot


def test_old_snapshots_are_pruned(project, monkeypatch):
    monkeypatch.setattr(metrics, "SNAPSHOTS_KEPT", 2)
    snapshots = [metrics.compute_snapshot(project) for _ in range(4)]
    kept = set(MetricsSnapshot.objects.filter(project=project).values_list("id", flat=True))
    assert kept == {snapshots[2].pk, snapshots[3].pk}


def test_recompute_task_and_schedule(project, alice):
    other = ProjectFactory(slug="paused-one", status=ProjectStatus.PAUSED)
    judge(ComparisonFactory(project=project), alice, "a")
    snapshot_id = recompute_metrics(project.pk)
    assert MetricsSnapshot.objects.get(pk=snapshot_id).project == project
    assert recompute_metrics(10**9) is None
    # Nothing new since the snapshot: the schedule queues nothing; a new judgment changes that.
    assert recompute_active_metrics() == 0
    judge(ComparisonFactory(project=project), alice, "b")
    assert recompute_active_metrics() == 1
    assert not MetricsSnapshot.objects.filter(project=other).exists()
    assert MetricsSnapshot.objects.filter(project=project).count() == 2


def test_needs_recompute_when_stale(project):
    metrics.compute_snapshot(project)
    assert not metrics.needs_recompute(project)
    MetricsSnapshot.objects.update(computed_at=timezone.now() - timedelta(hours=2))
    assert metrics.needs_recompute(project)


# ----------------------------------------------------------------------------- rater summary


def test_rater_summary_today_and_gold_when_shown(project, alice, bob):
    project.show_gold_accuracy_to_raters = True
    project.save()
    hidden = ProjectFactory(slug="hidden-gold")
    hidden.raters.add(alice)
    for i in range(4):
        gold = ComparisonFactory(project=project, gold_choice="a")
        judge(gold, alice, "a" if i else "b")
    judge(ComparisonFactory(project=hidden), alice, "a")
    old = judge(ComparisonFactory(project=project), alice, "a")
    Judgment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    metrics.compute_snapshot(project)
    metrics.compute_snapshot(hidden)
    summary = metrics.rater_summary(alice, [project, hidden])
    assert summary[project.pk] == {"today": 4, "gold_accuracy": 0.75, "gold_n": 4}
    assert summary[hidden.pk] == {"today": 1, "gold_accuracy": None, "gold_n": 0}
    assert metrics.rater_summary(bob, [project])[project.pk]["gold_accuracy"] is None


def test_rater_summary_query_count_is_constant(project, alice, django_assert_num_queries):
    projects = [project]
    for i in range(5):
        p = ProjectFactory(slug=f"summary-{i}", show_gold_accuracy_to_raters=True)
        p.raters.add(alice)
        judge(ComparisonFactory(project=p), alice, "a")
        metrics.compute_snapshot(p)
        metrics.compute_snapshot(p)
        projects.append(p)
    with django_assert_num_queries(2):
        metrics.rater_summary(alice, projects[:1])
    with django_assert_num_queries(2):
        summary = metrics.rater_summary(alice, projects)
    assert summary[projects[-1].pk]["today"] == 1


def test_rater_scores_contract_for_exports(project, alice):
    judge(ComparisonFactory(project=project), alice, "a", duration_ms=8000)
    scores = metrics.rater_scores(project)
    assert set(scores) == {alice.pk}
    assert {"gold_accuracy", "quality", "gold_n", "flags"} <= set(scores[alice.pk])
    assert 0 <= scores[alice.pk]["quality"] <= 1
    assert metrics.rater_scores(ProjectFactory(slug="empty")) == {}


@pytest.mark.django_db
def test_a_project_without_judgments_is_empty_not_an_error():
    project = ProjectFactory(slug="nobody")
    UserFactory()
    data = metrics.compute_metrics(project)
    assert data["raters"] == [] and data["leaderboard"]["models"] == []
    assert data["agreement"]["choice"]["alpha"] is None


def test_rate_index_shows_gold_accuracy_only_when_the_project_allows(client, project, alice):
    for i in range(4):
        judge(ComparisonFactory(project=project, gold_choice="a"), alice, "a" if i else "b")
    metrics.compute_snapshot(project)
    client.force_login(alice)
    html = client.get("/rate/?list=1").content.decode()
    assert "Gold accuracy" not in html
    project.show_gold_accuracy_to_raters = True
    project.save()
    html = client.get("/rate/?list=1").content.decode()
    assert "Gold accuracy" in html
    assert "75%" in html
