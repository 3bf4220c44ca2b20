"""Exports take complete comparisons only by default (the queue's one definition of complete,
Comparison.completed_at, for both overlap policies), with an option to include the rest; the
manifest records the choice and the overlap policy."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from comparisons import queue
from comparisons.exports import OPTIONS, export_preferences
from comparisons.models import Comparison
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _judge(project, comparison, rater, choice):
    """A judgment through the real queue, on the comparison given (moved to the top)."""
    Comparison.objects.filter(project=project).update(priority=0)
    Comparison.objects.filter(pk=comparison.pk).update(priority=1)
    lease = queue.next_assignment(rater, project)
    assert lease.comparison_id == comparison.pk
    queue.submit_judgment(lease, choice=choice)


@pytest.fixture
def raters(db):
    return [UserFactory(email=f"x{i}@example.com") for i in range(4)]


def _project(raters, **policy):
    project = ProjectFactory(**policy)
    project.raters.add(*raters)
    return project


def test_a_comparison_still_being_judged_is_left_out_by_default(raters, tmp_path):
    """Regression: the default export had 2-of-3 comparisons, shown at agreement 1.0."""
    project = _project(raters)
    done = ComparisonFactory(project=project, external_id="done")
    half = ComparisonFactory(project=project, external_id="half")
    for rater in raters[:3]:
        _judge(project, done, rater, "a")
    for rater in raters[:2]:
        _judge(project, half, rater, "a")
    path = tmp_path / "trl.jsonl"

    manifest = export_preferences(project, "trl", path)

    assert [r["id"] for r in rows(path)] == ["done"]
    assert manifest["counts"]["judgments_excluded"] == {"incomplete": 2}
    assert manifest["options"]["include_incomplete"] is False
    assert manifest["overlap"] == {
        "policy": "fixed",
        "overlap": 3,
        "min_overlap": 2,
        "max_overlap": 3,
        "complete_only": True,
    }
    assert "complete" in manifest["definitions"]

    manifest = export_preferences(project, "trl", path, include_incomplete=True)

    assert [(r["id"], r["num_judgments"]) for r in rows(path)] == [("done", 3), ("half", 2)]
    assert manifest["overlap"]["complete_only"] is False
    assert manifest["counts"]["judgments_excluded"] == {}


def test_the_raw_formats_follow_the_same_default(raters, tmp_path):
    project = _project(raters)
    c = ComparisonFactory(project=project)
    _judge(project, c, raters[0], "a")
    path = tmp_path / "j.jsonl"
    assert export_preferences(project, "judgments", path)["counts"]["rows_written"] == 0
    export_preferences(project, "judgments", path, include_incomplete=True)
    assert len(rows(path)) == 1


def test_under_the_adaptive_policy_complete_is_the_rule_and_num_judgments_varies(raters, tmp_path):
    project = _project(raters, overlap_policy="adaptive", min_overlap=2, max_overlap=3)
    agreed, split, open_ = (
        ComparisonFactory(project=project, external_id=x) for x in ("agreed", "split", "open")
    )
    for rater in raters[:2]:
        _judge(project, agreed, rater, "b")
    for rater, choice in zip(raters, ["a", "b", "a"], strict=False):
        _judge(project, split, rater, choice)
    for rater, choice in zip(raters, ["a", "b"], strict=False):
        _judge(project, open_, rater, choice)
    path = tmp_path / "trl.jsonl"

    manifest = export_preferences(project, "trl", path)

    assert [(r["id"], r["num_judgments"]) for r in rows(path)] == [("agreed", 2), ("split", 3)]
    assert manifest["overlap"]["policy"] == "adaptive"
    assert manifest["counts"]["judgments_excluded"] == {"incomplete": 2}


def test_the_option_is_declared_once_and_reaches_the_command(raters, tmp_path):
    assert [o.name for o in OPTIONS].count("include_incomplete") == 1
    project = _project(raters)
    c = ComparisonFactory(project=project, external_id="c1")
    _judge(project, c, raters[0], "a")
    path = tmp_path / "cli.jsonl"
    args = ["export_preferences", project.slug, "--format", "trl", "--output", str(path)]
    call_command(*args, "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    assert rows(path) == []
    call_command(
        *args, "--include-incomplete", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert [r["id"] for r in rows(path)] == ["c1"]


def test_the_admin_export_form_offers_the_option(client, lead, project):
    client.force_login(lead)
    r = client.post(
        "/admin/comparisons/project/",
        {"action": "export_projects", "_selected_action": [project.pk]},
    )
    assert 'name="include_incomplete"' in r.content.decode()
