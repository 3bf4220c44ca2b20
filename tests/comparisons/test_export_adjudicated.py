"""Exports with adjudicated and excluded comparisons, loaded with Hugging Face `datasets`."""

from __future__ import annotations

import pytest
from datasets import Value, load_dataset

from comparisons import review
from comparisons.exports import export_preferences
from tests.comparisons.test_export_formats import judge
from tests.factories import ComparisonFactory


@pytest.fixture
def data(project, alice, bob, charlie, lead):
    """q1: a wins 2-1, a reviewer says b; q2: b unanimous; q3: split, reviewer says a;
    q4: split, excluded; q5: a wins 2-1, adjudicated twice (a then exclude then b: b in force)."""
    made = {}
    for name, votes in {
        "q1": "aab",
        "q2": "bbb",
        "q3": ["a", "b", "tie"],
        "q4": ["a", "b", "both_bad"],
        "q5": "aab",
    }.items():
        c = made[name] = ComparisonFactory(project=project, external_id=name)
        for rater, choice in zip((alice, bob, charlie), votes, strict=True):
            judge(c, rater, choice)
    review.adjudicate(made["q1"], reviewer=lead, choice="b", note="B cites the RFC")
    review.adjudicate(made["q3"], reviewer=lead, choice="a")
    review.adjudicate(made["q4"], reviewer=lead, choice="exclude", note="prompt is broken")
    review.adjudicate(made["q5"], reviewer=lead, choice="exclude")
    review.adjudicate(made["q5"], reviewer=lead, choice="b")
    return made


def load(kind, path, **kwargs):
    cache = path.parent / f"hf-cache-{path.name}"
    return load_dataset(kind, data_files=str(path), split="train", cache_dir=str(cache), **kwargs)


@pytest.mark.parametrize("fmt, kind", [("trl", "json"), ("trl-parquet", "parquet")])
def test_the_reviewers_verdict_replaces_the_vote(project, data, tmp_path, fmt, kind):
    path = tmp_path / f"prefs.{kind}"
    manifest = export_preferences(project, fmt, path, min_agreement=0.9)

    ds = load(kind, path)
    assert ds.features["adjudicated"] == Value("bool")
    rows = {r["id"]: r for r in ds}
    # q1 overturned to b (votes 2-1 for a), q3's split decided, q5's later verdict in force;
    # q2 passes min_agreement on its own vote; q4 excluded.
    assert sorted(rows) == ["q1", "q2", "q3", "q5"]
    assert rows["q1"]["chosen"][0]["content"] == "Answer B to q1"
    assert rows["q1"]["adjudicated"] is True
    assert rows["q1"]["agreement"] == pytest.approx(1 / 3, abs=1e-6)
    assert rows["q1"]["margin"] == pytest.approx(-1 / 3, abs=1e-6)
    assert rows["q3"]["chosen"][0]["content"] == "Answer A to q3"
    assert rows["q5"]["chosen"][0]["content"] == "Answer B to q5"
    assert rows["q2"]["adjudicated"] is False
    counts = manifest["counts"]
    assert (counts["adjudicated"], counts["excluded"]) == (3, 1)
    assert counts["rows_dropped"] == {"excluded": 1}
    assert "adjudicated" in manifest["definitions"]


def test_kto_and_dpo_use_the_verdict_and_drop_excluded(project, data, tmp_path):
    kto, dpo = tmp_path / "kto.jsonl", tmp_path / "dpo.jsonl"
    manifest = export_preferences(project, "trl-kto", kto)
    export_preferences(project, "openai-dpo", dpo)

    labels = {
        (r["prompt"][-1]["content"], r["completion"][0]["content"]): r["label"]
        for r in load("json", kto)
    }
    assert labels[("Question q1?", "Answer B to q1")] is True
    assert labels[("Question q1?", "Answer A to q1")] is False
    assert not any(prompt == "Question q4?" for prompt, _ in labels)
    assert manifest["counts"]["excluded"] == 1
    preferred = [r["preferred_output"][0]["content"] for r in load("json", dpo)]
    assert preferred == ["Answer B to q1", "Answer B to q2", "Answer A to q3", "Answer B to q5"]


@pytest.mark.parametrize(
    "fmt, kind", [("judgments", "json"), ("judgments-parquet", "parquet"), ("judgments-csv", "csv")]
)
def test_the_judgments_formats_carry_the_verdict_in_force(project, data, tmp_path, fmt, kind):
    path = tmp_path / f"j.{kind}"
    manifest = export_preferences(project, fmt, path)

    ds = load(kind, path, **({"keep_default_na": False} if kind == "csv" else {}))
    assert ds.num_rows == 15  # every judgment, excluded comparisons' too: nothing is hidden
    by_item = {r["external_id"]: r["adjudication"] for r in ds}
    assert by_item["q1"] == "b" and by_item["q3"] == "a" and by_item["q4"] == "exclude"
    assert by_item["q5"] == "b"
    assert by_item["q2"] in (None, "")  # CSV writes None as an empty cell
    assert (manifest["counts"]["adjudicated"], manifest["counts"]["excluded"]) == (3, 1)


def test_an_adjudicated_tie_decides_no_pair(project, data, tmp_path, lead):
    review.adjudicate(data["q1"], reviewer=lead, choice="tie")
    manifest = export_preferences(project, "trl", tmp_path / "p.jsonl")
    assert manifest["counts"]["rows_dropped"] == {"excluded": 1, "tie": 1}
