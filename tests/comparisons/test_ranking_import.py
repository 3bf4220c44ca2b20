"""Importing into a ranking project: 3 to 9 responses per line, gold as a ranking."""

from __future__ import annotations

import json

import pytest

from comparisons.imports import import_comparisons
from comparisons.models import Comparison, Response, TaskType
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def _line(external_id: str = "q-1", k: int = 4, **fields) -> str:
    data = {
        "external_id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [{"model": f"m-{i}", "content": f"Answer {i}"} for i in range(k)],
    }
    data.update(fields)
    return json.dumps(data) + "\n"


@pytest.fixture
def ranking_project():
    return ProjectFactory(task_type=TaskType.RANKING)


def test_it_imports_three_to_nine_responses_and_a_gold_ranking(ranking_project):
    result = import_comparisons(
        ranking_project,
        [
            _line("q-3", k=3),
            _line("q-9", k=9),
            _line("q-gold", k=4, gold={"ranking": [["c"], ["b", "a"], ["d"]]}),
        ],
    )
    assert result.ok, result.errors
    assert (result.created, result.gold) == (3, 1)
    assert Response.objects.filter(comparison__external_id="q-9").count() == 9
    gold = Comparison.objects.get(external_id="q-gold")
    assert gold.gold_ranking == [["c"], ["a", "b"], ["d"]]
    # Its verdict on a against b, so the queue serves it as gold.
    assert gold.gold_choice == "tie"
    assert gold.is_gold and gold.open_slots == 0
    assert Comparison.objects.get(external_id="q-3").gold_ranking is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_line(k=2), "a ranking project needs 3 to 9 responses (got 2)"),
        (_line(k=10), "a ranking project needs 3 to 9 responses (got 10)"),
        (_line(gold={"choice": "a"}), 'gold: must be an object like {"ranking"'),
        (_line(gold={"ranking": [["a"], ["b"], ["c"]]}), "gold.ranking: Rank every response: d"),
        (_line(gold={"ranking": [["a"], ["b"], ["c"], ["e"]]}), "gold.ranking: 'e' names no"),
        (_line(gold={"ranking": [["a", "a"], ["b"], ["c", "d"]]}), "ranked twice"),
        (_line(gold={"ranking": [["a"], ["b", "c", "d"]], "note": 1}), "unknown field 'note'"),
    ],
)
def test_it_rejects_bad_ranking_lines_and_imports_nothing(ranking_project, line, message):
    result = import_comparisons(ranking_project, [_line("ok-1"), line])
    assert not result.ok
    assert [e.line for e in result.errors] == [2]
    assert message in result.errors[0].message
    assert result.created == 0
    assert not Comparison.objects.exists()


def test_a_gold_ranking_with_ties_is_refused_where_ties_are_not_allowed():
    project = ProjectFactory(task_type=TaskType.RANKING, allow_tie=False)
    result = import_comparisons(project, [_line(gold={"ranking": [["a", "b"], ["c"], ["d"]]})])
    assert "does not allow ties" in result.errors[0].message


def test_a_pairwise_project_still_takes_two_responses_and_a_gold_choice(project):
    result = import_comparisons(project, [_line("p-1", k=2, gold={"choice": "b"})])
    assert result.ok
    assert Comparison.objects.get().gold_ranking is None
    result = import_comparisons(project, [_line("p-2", gold={"ranking": [["a"], ["b"]]})])
    assert 'gold: must be an object like {"choice": "a"}' in result.errors[0].message
