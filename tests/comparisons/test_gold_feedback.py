"""Gold feedback: the import's gold.explanation, and what a rater sees after a gold comparison."""

from __future__ import annotations

import json

import pytest

from comparisons import queue
from comparisons.imports import import_comparisons
from comparisons.models import Comparison, Project
from tests.factories import ComparisonFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def _line(**fields) -> str:
    row = {
        "external_id": "g-1",
        "prompt": "2 + 2?",
        "responses": [{"model": "m1", "content": "4"}, {"model": "m2", "content": "5"}],
    }
    row.update(fields)
    return json.dumps(row)


def test_the_import_keeps_the_golds_explanation(project):
    result = import_comparisons(
        project, [_line(gold={"choice": "a", "explanation": "Arithmetic: 2 + 2 is 4."})]
    )
    assert result.ok, result.errors
    assert Comparison.objects.get().gold_explanation == "Arithmetic: 2 + 2 is 4."


@pytest.mark.parametrize(
    "gold, message",
    [
        ({"choice": "a", "explanation": 4}, "gold.explanation: must be a string"),
        ({"choice": "a", "explanation": "  "}, "gold.explanation: is empty"),
        ({"choice": "a", "reason": "x"}, "gold: unknown field 'reason'"),
    ],
)
def test_a_bad_explanation_rejects_the_file(project, gold, message):
    result = import_comparisons(project, [_line(gold=gold)])
    assert not result.ok
    assert message in result.errors[0].message
    assert not Comparison.objects.exists()


def test_an_explanation_is_optional(project):
    assert import_comparisons(project, [_line(gold={"choice": "b", "explanation": None})]).ok
    assert Comparison.objects.get().gold_explanation == ""


@pytest.fixture
def gold_lease(project, alice):
    Project.objects.filter(pk=project.pk).update(gold_rate=1.0, gold_feedback=True)
    project.refresh_from_db()
    ComparisonFactory(
        project=project,
        external_id="gold-1",
        gold_choice="a",
        open_slots=0,
        gold_explanation="A cites the **RFC**. <script>alert(1)</script>",
    )
    ComparisonFactory(project=project, external_id="regular-1")
    lease = queue.next_assignment(alice, project)
    assert lease.comparison.is_gold
    return lease


def _submit(client, lease, side: str, **extra):
    url = f"/rate/demo-test/{lease.pk}/submit"
    return client.post(url, {"choice": side, "duration_ms": "9000"}, **extra)


def _side_of(lease, canonical: str) -> str:
    return str(lease.display_order.index(canonical) + 1)


def test_a_rater_who_matched_the_gold_is_told_so_with_the_explanation(alice_client, gold_lease):
    html = _submit(alice_client, gold_lease, _side_of(gold_lease, "a"), **HTMX).content.decode()
    assert "That was a gold comparison." in html
    assert "You matched its answer" in html
    assert f"Response {_side_of(gold_lease, 'a')}" in html
    assert "A cites the <strong>RFC</strong>" in html  # Markdown, sanitized
    assert "<script>alert(1)" not in html


def test_a_rater_who_missed_the_gold_is_told_so(alice_client, gold_lease):
    html = _submit(alice_client, gold_lease, _side_of(gold_lease, "b"), **HTMX).content.decode()
    assert "You did not match its answer" in html


def test_without_htmx_the_feedback_comes_as_a_message(alice_client, gold_lease):
    r = _submit(alice_client, gold_lease, _side_of(gold_lease, "a"), follow=True)
    assert "That was a gold comparison: you matched its answer" in r.content.decode()


def test_no_feedback_when_the_project_gives_none(alice_client, gold_lease, project):
    Project.objects.filter(pk=project.pk).update(gold_feedback=False)
    html = _submit(alice_client, gold_lease, "1", **HTMX).content.decode()
    assert "gold comparison" not in html


def test_no_feedback_after_a_regular_comparison(alice_client, project, alice):
    Project.objects.filter(pk=project.pk).update(gold_feedback=True)
    ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    html = _submit(alice_client, lease, "1", **HTMX).content.decode()
    assert "gold comparison" not in html
