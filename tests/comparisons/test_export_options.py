"""Aggregation and filters, on hand-built cases with known answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from comparisons.exports import ExportError, aggregate, export_preferences, parse_options
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory, UserFactory

# These tests are about the files, not about which comparisons are complete.
pytestmark = pytest.mark.usefixtures("one_judgment_completes")


def judge(comparison, rater, choice, **extra):
    assignment = AssignmentFactory(comparison=comparison, rater=rater, status="submitted")
    return JudgmentFactory(assignment=assignment, choice=choice, **extra)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("votes", "aggregation", "choice", "reason"),
    [
        (["a", "a", "b"], "majority", "a", None),
        (["a", "b", "tie"], "majority", None, "no_majority"),
        (["a", "b"], "majority", None, "no_majority"),
        (["tie", "tie", "a"], "majority", "tie", None),
        (["both_bad", "both_bad", "both_bad"], "unanimous", "both_bad", None),
        (["a", "a", "b"], "unanimous", None, "not_unanimous"),
        (["b"], "unanimous", "b", None),
    ],
)
def test_aggregate_decides_by_the_rule(votes, aggregation, choice, reason):
    verdicts, why = aggregate(7, [(v, None) for v in votes], aggregation)

    assert why == reason
    assert [v.choice for v in verdicts] == ([choice] if choice else [])


def test_aggregate_all_gives_each_vote_its_agreement_and_signed_margin():
    verdicts, why = aggregate(7, [("a", "much"), ("a", None), ("b", "slightly")], "all")

    assert why is None
    assert [(v.choice, v.agreement) for v in verdicts] == [
        ("a", pytest.approx(0.666667)),
        ("a", pytest.approx(0.666667)),
        ("b", pytest.approx(0.333333)),
    ]
    assert verdicts[0].margin == pytest.approx((1 + 1 - 1 / 3) / 3, abs=1e-6)
    assert verdicts[2].margin == pytest.approx(-(1 + 1 - 1 / 3) / 3, abs=1e-6)


@pytest.fixture
def split(project, alice, bob, charlie):
    """s1: a, a, b.  s2: b, b, b.  s3: a (one judgment so far)."""
    s1 = ComparisonFactory(project=project, external_id="s1")
    judge(s1, alice, "a")
    judge(s1, bob, "a")
    judge(s1, charlie, "b")
    s2 = ComparisonFactory(project=project, external_id="s2")
    for rater in (alice, bob, charlie):
        judge(s2, rater, "b")
    s3 = ComparisonFactory(project=project, external_id="s3")
    judge(s3, alice, "a")
    return project


def test_unanimous_keeps_only_comparisons_everyone_agreed_on(split, tmp_path):
    path = tmp_path / "out.jsonl"
    manifest = export_preferences(split, "trl", path, aggregation="unanimous")

    assert [r["id"] for r in rows(path)] == ["s2", "s3"]
    assert manifest["counts"]["rows_dropped"] == {"not_unanimous": 1}


def test_all_writes_every_judgment_as_a_row(split, tmp_path):
    path = tmp_path / "out.jsonl"
    manifest = export_preferences(split, "trl", path, aggregation="all")

    got = [(r["id"], r["chosen_model"], r["agreement"]) for r in rows(path)]
    assert got == [
        ("s1", "model-a", 0.666667),
        ("s1", "model-a", 0.666667),
        ("s1", "model-b", 0.333333),
        ("s2", "model-b", 1.0),
        ("s2", "model-b", 1.0),
        ("s2", "model-b", 1.0),
        ("s3", "model-a", 1.0),
    ]
    assert manifest["counts"]["dropped_unit"] == "judgment"


def test_min_judgments_and_min_agreement_drop_with_reasons(split, tmp_path):
    path = tmp_path / "out.jsonl"
    manifest = export_preferences(split, "trl", path, min_judgments=3, min_agreement=0.9)

    assert [r["id"] for r in rows(path)] == ["s2"]
    assert manifest["counts"]["rows_dropped"] == {"min_agreement": 1, "min_judgments": 1}
    assert manifest["options"]["min_judgments"] == 3
    assert manifest["options"]["min_agreement"] == 0.9


def test_excluding_a_rater_changes_the_majority(split, tmp_path, bob):
    path = tmp_path / "out.jsonl"
    manifest = export_preferences(split, "trl", path, exclude_raters=["BOB@example.com"])

    # s1 is now a vs b: no majority.
    assert [r["id"] for r in rows(path)] == ["s2", "s3"]
    assert manifest["counts"]["judgments_excluded"] == {"rater": 2}
    assert manifest["counts"]["raters_excluded"] == {"named": 1}
    assert manifest["options"]["exclude_raters"] == ["bob@example.com"]


def test_an_unknown_rater_email_is_an_error(split, tmp_path):
    with pytest.raises(ExportError, match=r"nobody@example\.com"):
        export_preferences(split, "trl", tmp_path / "x", exclude_raters=["nobody@example.com"])
    assert not (tmp_path / "x").exists()


def test_late_and_gold_judgments_are_left_out_unless_asked_for(project, alice, bob, tmp_path):
    c = ComparisonFactory(project=project, external_id="c")
    judge(c, alice, "a")
    judge(c, bob, "b", is_late=True, counted=False)
    gold = ComparisonFactory(project=project, external_id="g", gold_choice="b")
    judge(gold, alice, "b", is_gold=True)

    calls = []
    default = export_preferences(
        project, "judgments", tmp_path / "d.jsonl", progress=lambda *a: calls.append(a)
    )
    assert calls[-1] == (1, 1)  # progress counts only the judgments that pass the filters
    assert [r["external_id"] for r in rows(tmp_path / "d.jsonl")] == ["c"]
    assert default["counts"]["judgments_excluded"] == {"gold": 1, "late": 1}

    export_preferences(project, "trl", tmp_path / "late.jsonl", include_late=True)
    assert rows(tmp_path / "late.jsonl") == []  # a vs b: no majority with the late vote

    export_preferences(project, "trl", tmp_path / "gold.jsonl", include_gold=True)
    assert [r["id"] for r in rows(tmp_path / "gold.jsonl")] == ["c", "g"]
    all_rows = rows(tmp_path / "d.jsonl")
    assert all_rows[0]["is_late"] is False


def test_date_range_filters_on_judgment_time(project, alice, bob, charlie, tmp_path):
    c = ComparisonFactory(project=project, external_id="c")
    old, mid, new = (judge(c, r, "a") for r in (alice, bob, charlie))
    base = timezone.make_aware(datetime(2026, 1, 10, 12, 0))
    for j, days in ((old, 0), (mid, 5), (new, 10)):
        type(j).objects.filter(pk=j.pk).update(created_at=base + timedelta(days=days))

    manifest = export_preferences(
        project,
        "judgments",
        tmp_path / "r.jsonl",
        since="2026-01-12",
        until=base + timedelta(days=10),
    )

    assert [r["judgment_id"] for r in rows(tmp_path / "r.jsonl")] == [mid.pk]
    assert manifest["counts"]["judgments_excluded"] == {"date": 2}


def test_rater_score_thresholds_use_the_metrics_contract(split, tmp_path, alice, bob, charlie):
    scores = {
        alice.pk: {"gold_accuracy": 0.9, "quality": 0.2},
        bob.pk: {"gold_accuracy": 0.4, "quality": 0.9},
        charlie.pk: {"gold_accuracy": None, "quality": None},  # unknown: kept
    }
    with mock.patch("comparisons.exports.source.rater_scores", return_value=scores):
        manifest = export_preferences(
            split, "judgments", tmp_path / "q.jsonl", min_gold_accuracy=0.7, min_rater_quality=0.5
        )

    from comparisons.exports import pseudonym

    assert {r["rater"] for r in rows(tmp_path / "q.jsonl")} == {pseudonym(split.pk, charlie.pk)}
    assert manifest["counts"]["raters_excluded"] == {"gold_accuracy": 1, "quality": 1}


def test_the_pseudonym_is_stable_per_project_and_differs_across_projects(project, alice, tmp_path):
    from comparisons.exports import pseudonym

    other = type(project).objects.create(slug="other", name="Other")
    assert pseudonym(project.pk, alice.pk) == pseudonym(project.pk, alice.pk)
    assert pseudonym(project.pk, alice.pk) != pseudonym(other.pk, alice.pk)
    assert len(pseudonym(project.pk, alice.pk)) == 16


def test_prompts_not_ending_in_a_user_turn_are_dropped(project, alice, tmp_path):
    c = ComparisonFactory(
        project=project,
        external_id="odd",
        prompt=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    )
    judge(c, alice, "a")

    manifest = export_preferences(project, "openai-dpo", tmp_path / "o.jsonl")

    assert rows(tmp_path / "o.jsonl") == []
    assert manifest["counts"]["rows_dropped"] == {"prompt_not_ending_in_user": 1}


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        ("xml", {}, "unknown format"),
        ("trl", {"aggregation": "mean"}, "aggregation"),
        ("trl", {"min_agreement": 1.5}, "between 0 and 1"),
        ("trl", {"since": "yesterday"}, "not a date"),
        ("trl", {"since": "2026-02-01", "until": "2026-01-01"}, "before"),
        ("judgments", {"min_agreement": 0.5}, "pairwise"),
        ("judgments", {"aggregation": "all"}, "pairwise"),
        ("trl", {"colour": "red"}, "unknown option"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(fmt, options, message):
    with pytest.raises(ExportError, match=message):
        parse_options(fmt, **options)


def test_the_manifest_records_options_counts_and_provenance(split, tmp_path):
    path = tmp_path / "m.jsonl"
    manifest = export_preferences(split, "trl", path, min_judgments=2)

    import hashlib

    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["format"] == "trl"
    assert manifest["code_version"]
    assert manifest["counts"]["comparisons"] == 3
    assert manifest["counts"]["judgments"] == 7
    assert "margin" in manifest["definitions"]
    assert manifest["project"]["slug"] == split.slug


def test_a_user_who_never_judged_is_not_an_excluded_rater(split, tmp_path):
    UserFactory(email="idle@example.com")
    manifest = export_preferences(split, "trl", tmp_path / "i", exclude_raters="idle@example.com")
    assert manifest["counts"]["judgments_excluded"] == {}
