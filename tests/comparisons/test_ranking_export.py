"""Exports of ranking projects: decided pairs in the preference formats, and `rankings`."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from datasets import List, Value, load_dataset

from comparisons import queue
from comparisons.exports import ExportError, export_preferences, pseudonym
from comparisons.models import TaskType
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

MESSAGES = List({"role": Value("string"), "content": Value("string")})


def _tiers(text: str) -> list[list[str]]:
    return [tier.split("=") for tier in text.split(">")]


@pytest.fixture
def raters():
    return [UserFactory(email=f"ranker{i}@example.com") for i in range(3)]


@pytest.fixture
def ranked(raters):
    """r1: a>b>c>d twice, d>c>b>a once (a 2-1 split on all six pairs);
    r2: three rankings of three responses whose a/b pair is tied 1-1 (one rater ties them)."""
    project = ProjectFactory(slug="ranked", task_type=TaskType.RANKING)
    project.raters.add(*raters)
    r1 = ComparisonFactory(
        project=project,
        external_id="r1",
        responses=[(f"model-{k}", f"Answer {k.upper()}") for k in "abcd"],
    )
    r2 = ComparisonFactory(
        project=project,
        external_id="r2",
        priority=-1,
        responses=[(f"model-{k}", f"Reply {k}") for k in "abc"],
    )
    plan = {
        r1.pk: ["a>b>c>d", "a>b>c>d", "d>c>b>a"],
        r2.pk: ["a>b>c", "b>a>c", "a=b>c"],
    }
    for i, rater in enumerate(raters):
        for _ in range(2):
            lease = queue.next_assignment(rater, project)
            queue.submit_ranking(lease, ranking=_tiers(plan[lease.comparison_id][i]))
    return project


def load(kind, path):
    cache = path.parent / f"hf-cache-{path.name}"
    return load_dataset(kind, data_files=str(path), split="train", cache_dir=str(cache))


def test_trl_has_one_row_per_decided_pair_agreeing_with_the_majority(ranked, tmp_path):
    path = tmp_path / "trl.jsonl"
    manifest = export_preferences(ranked, "trl", path)
    ds = load("json", path)
    rows = [row for row in ds if row["group_id"] == "r1"]
    assert len(rows) == 6
    assert [(r["chosen_model"], r["rejected_model"]) for r in rows] == [
        ("model-a", "model-b"),
        ("model-a", "model-c"),
        ("model-a", "model-d"),
        ("model-b", "model-c"),
        ("model-b", "model-d"),
        ("model-c", "model-d"),
    ]
    assert [(r["chosen_rank"], r["rejected_rank"]) for r in rows] == [
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 3),
        (2, 4),
        (3, 4),
    ]
    first = rows[0]
    assert first["id"] == "r1/a>b"
    assert first["chosen"] == [{"role": "assistant", "content": "Answer A"}]
    assert first["rejected"] == [{"role": "assistant", "content": "Answer B"}]
    assert first["prompt"] == [{"role": "user", "content": "Question r1?"}]
    assert {(r["num_judgments"], r["agreement"], r["margin"]) for r in rows} == {
        (3, 0.666667, 0.333333)
    }
    # r2: a/b is tied 1-1 and decides nothing; a and b both beat c 3-0.
    r2 = [
        (r["chosen_model"], r["rejected_model"], r["chosen_rank"])
        for r in ds
        if r["group_id"] == "r2"
    ]
    assert r2 == [("model-a", "model-c", 1), ("model-b", "model-c", 1)]
    assert ds.num_rows == 8 == manifest["counts"]["rows_written"]
    assert ds.features["prompt"] == MESSAGES and ds.features["chosen"] == MESSAGES
    assert ds.features["chosen_rank"] == Value("int64")
    assert manifest["ranking"]["aggregation_method"] == "copeland"
    assert "Copeland" in manifest["ranking"]["definitions"]["ranking_aggregation"]


def test_unanimous_keeps_only_pairs_every_ranking_agrees_on(ranked, tmp_path):
    path = tmp_path / "trl.jsonl"
    export_preferences(ranked, "trl", path, aggregation="unanimous", min_agreement=0.9)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["id"], r["agreement"]) for r in rows] == [("r2/a>c", 1.0), ("r2/b>c", 1.0)]


def test_aggregation_all_writes_each_rankings_own_pairs(ranked, tmp_path):
    path = tmp_path / "trl.jsonl"
    export_preferences(ranked, "trl", path, aggregation="all")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    r1 = [r for r in rows if r["group_id"] == "r1"]
    assert len(r1) == 3 * 6
    minority = [r for r in r1 if r["chosen_model"] == "model-d"]
    assert len(minority) == 3  # d over a, b and c, from the one reversed ranking
    assert {(r["agreement"], r["margin"]) for r in minority} == {(0.333333, -0.333333)}
    # The reversed ranking's rows keep the aggregated places: d is 4th, whoever it beat.
    assert {r["chosen_rank"] for r in minority} == {4}
    # r2: the a=b tie decides no pair of its own; a>b and b>a once each.
    r2 = sorted(r["id"] for r in rows if r["group_id"] == "r2")
    assert r2 == ["r2/a>b", "r2/a>c", "r2/a>c", "r2/a>c", "r2/b>a", "r2/b>c", "r2/b>c", "r2/b>c"]


def test_min_agreement_filters_pairs(ranked, tmp_path):
    path = tmp_path / "trl.jsonl"
    manifest = export_preferences(ranked, "trl", path, min_agreement=0.7)
    assert manifest["counts"]["rows_written"] == 2
    assert manifest["counts"]["rows_dropped"]["min_agreement"] == 6


def test_trl_parquet_openai_and_kto_carry_the_group_and_ranks(ranked, tmp_path):
    parquet = tmp_path / "trl.parquet"
    export_preferences(ranked, "trl-parquet", parquet)
    table = pq.read_table(parquet)
    assert table.num_rows == 8
    assert table.schema.field("chosen_rank").type == "int32"
    ds = load("parquet", parquet)
    assert ds[0]["group_id"] == "r1" and ds[0]["rejected_rank"] == 2

    dpo = tmp_path / "dpo.jsonl"
    export_preferences(ranked, "openai-dpo", dpo)
    rows = [json.loads(line) for line in dpo.read_text().splitlines()]
    assert len(rows) == 8
    assert rows[0]["preferred_output"] == [{"role": "assistant", "content": "Answer A"}]
    assert (rows[0]["group_id"], rows[0]["chosen_rank"], rows[0]["rejected_rank"]) == ("r1", 1, 2)

    kto = tmp_path / "kto.jsonl"
    export_preferences(ranked, "trl-kto", kto)
    ds = load("json", kto)
    assert ds.num_rows == 16  # two unpaired rows per decided pair
    assert [(r["completion"][0]["content"], r["label"]) for r in ds][:2] == [
        ("Answer A", True),
        ("Answer B", False),
    ]


def test_the_rankings_format_has_one_row_per_judgment_with_its_full_order(ranked, raters, tmp_path):
    path = tmp_path / "rankings.jsonl"
    manifest = export_preferences(ranked, "rankings", path)
    ds = load("json", path)
    assert ds.num_rows == 6 == manifest["counts"]["rows_written"]
    r1 = [row for row in ds if row["group_id"] == "r1"]
    assert [row["order"] for row in r1] == ["a>b>c>d", "a>b>c>d", "d>c>b>a"]
    assert r1[2]["ranking"] == [["d"], ["c"], ["b"], ["a"]]
    assert r1[2]["ranked_models"] == [["model-d"], ["model-c"], ["model-b"], ["model-a"]]
    assert r1[2]["rater"] == pseudonym(ranked.pk, raters[2].pk)
    assert sorted(r1[0]["display_order"]) == ["a", "b", "c", "d"]
    tied = next(row for row in ds if row["order"] == "a=b>c")
    assert tied["ranking"] == [["a", "b"], ["c"]]
    assert manifest["ranking"] == {"task_type": "ranking"}


def test_the_rankings_format_is_refused_for_a_pairwise_project(project, tmp_path):
    path = tmp_path / "rankings.jsonl"
    with pytest.raises(ExportError, match="needs a ranking project"):
        export_preferences(project, "rankings", path)
    assert not list(tmp_path.iterdir())


def test_the_command_writes_rankings_and_refuses_them_for_a_pairwise_project(
    ranked, project, tmp_path
):
    from django.core.management import CommandError, call_command

    path = tmp_path / "r.jsonl"
    call_command("export_preferences", "ranked", "--format", "rankings", "--output", str(path))
    assert len(path.read_text().splitlines()) == 6
    manifest = json.loads((tmp_path / "r.jsonl.manifest.json").read_text())
    assert manifest["format"] == "rankings"
    with pytest.raises(CommandError, match="needs a ranking project"):
        call_command(
            "export_preferences", project.slug, "--format", "rankings", "--output", str(path)
        )
    assert len(path.read_text().splitlines()) == 6  # the earlier file is untouched


def test_an_export_job_of_a_ranking_project_succeeds_through_the_worker_path(
    ranked, lead, settings, tmp_path
):
    from comparisons.exports import create_export_job, run_export_job

    settings.MEDIA_ROOT = str(tmp_path)
    job = create_export_job(project=ranked, format="trl-parquet", requested_by=lead, options={})
    run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.row_count == 8
    assert job.manifest["ranking"]["aggregation_method"] == "copeland"


def test_a_rankings_job_for_a_pairwise_project_is_refused_up_front(project, lead):
    from comparisons.exports import create_export_job
    from comparisons.models import ExportJob

    with pytest.raises(ExportError, match="needs a ranking project"):
        create_export_job(project=project, format="rankings", requested_by=lead)
    assert not ExportJob.objects.exists()


def test_the_admin_action_refuses_rankings_when_one_project_is_pairwise(
    client, lead, project, ranked, settings, tmp_path
):
    from django.urls import reverse

    from comparisons.models import ExportJob

    settings.MEDIA_ROOT = str(tmp_path)
    ranked.leads.add(lead)
    client.force_login(lead)
    response = client.post(
        reverse("admin:comparisons_project_changelist"),
        {
            "action": "export_projects",
            "_selected_action": [ranked.pk, project.pk],
            "apply": "1",
            "format": "rankings",
            "aggregation": "majority",
        },
    )
    assert response.status_code == 200
    assert b"needs a ranking project" in response.content
    assert not ExportJob.objects.exists()  # none for the ranking project either
