"""Agreement with reviewers' verdicts counts like gold accuracy: in the quality score and in
the export's rater filter."""

from __future__ import annotations

import json

import pytest

from comparisons import review
from comparisons.exports import export_preferences
from comparisons.metrics import rater_scores
from tests.comparisons._review_helpers import plant


@pytest.fixture
def judged(project, alice, bob, charlie):
    """Ten comparisons where alice and bob say a and charlie says b."""
    return [plant(project, "aab", raters=[alice, bob, charlie]) for _ in range(10)]


def test_verdicts_count_as_known_answers(project, judged, alice, charlie, lead):
    before = rater_scores(project)
    assert before[charlie.pk]["gold_n"] == 0 and before[charlie.pk]["gold_accuracy"] is None
    for c in judged:
        review.adjudicate(c, reviewer=lead, choice="b")  # charlie was right all along
    after = rater_scores(project)
    assert after[charlie.pk]["gold_n"] == 10 == after[charlie.pk]["adjudicated_n"]
    assert after[charlie.pk]["gold_accuracy"] == 1.0
    assert after[alice.pk]["gold_accuracy"] == 0.0
    # Ten known answers reach MIN_GOLD_JUDGMENTS: the gold component now weighs in.
    assert after[alice.pk]["quality"] < before[alice.pk]["quality"]
    assert after[charlie.pk]["quality"] > before[charlie.pk]["quality"]


def test_excluded_comparisons_have_no_known_answer(project, judged, charlie, lead):
    review.adjudicate(judged[0], reviewer=lead, choice="exclude")
    assert rater_scores(project)[charlie.pk]["gold_n"] == 0


def test_a_verdict_overrides_a_gold_answer_it_found_wrong(project, alice, bob, charlie, lead):
    gold = plant(project, "bbb", gold="a", raters=[alice, bob, charlie])
    assert rater_scores(project)[alice.pk]["gold_accuracy"] == 0.0
    review.adjudicate(gold, reviewer=lead, choice="b")
    scores = rater_scores(project)
    assert scores[alice.pk]["gold_accuracy"] == 1.0 and scores[alice.pk]["gold_n"] == 1


def test_the_export_rater_filter_reads_verdicts_too(project, judged, charlie, lead, tmp_path):
    for c in judged[:5]:
        review.adjudicate(c, reviewer=lead, choice="a")  # charlie missed these
    path = tmp_path / "j.jsonl"
    manifest = export_preferences(project, "judgments", path, min_gold_accuracy=0.5)
    assert manifest["counts"]["raters_excluded"]["gold_accuracy"] == 1
    raters = {json.loads(line)["rater"] for line in path.read_text().splitlines()}
    assert len(raters) == 2  # alice and bob stay; charlie (0 of 5) is left out
