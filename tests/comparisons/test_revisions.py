"""Undo: a revision supersedes the judgment it replaces, which is kept; every count, export and
metric uses the revision (Judgment.objects.current()), and the database keeps one current
judgment per assignment."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from comparisons import metrics, queue
from comparisons.exports import export_preferences
from comparisons.models import Comparison, Judgment, Project
from tests.comparisons._rate_helpers import PAGE_BUDGET
from tests.factories import ComparisonFactory


@pytest.fixture
def judged(project, alice):
    """alice's judgment ("a") on q-rev, the first of the project's overlap of 3."""
    ComparisonFactory(project=project, external_id="q-rev")
    lease = queue.next_assignment(alice, project)
    return queue.submit_judgment(lease, choice="a", duration_ms=4000)


def _counters(comparison_id: int) -> tuple[int, int]:
    return tuple(
        Comparison.objects.filter(pk=comparison_id).values_list("judged_count", "open_slots").get()
    )


def test_a_revision_supersedes_the_old_judgment_and_keeps_it(judged, alice):
    before = _counters(judged.comparison_id)
    revision = queue.revise_judgment(judged, choice="b", duration_ms=1500, rater=alice)
    old = Judgment.objects.get(pk=judged.pk)
    assert old.choice == "a" and old.superseded_at is not None  # kept, only marked
    assert revision.supersedes_id == old.pk and revision.superseded_at is None
    assert (revision.choice, revision.assignment_id) == ("b", old.assignment_id)
    assert revision.duration_ms == 5500  # the time on the comparison, both visits
    unknown = queue.revise_judgment(revision, choice="tie", rater=alice)
    assert unknown.duration_ms == 5500  # this visit's time unknown: the known time stands
    assert (revision.counted, revision.is_late) == (old.counted, old.is_late)
    assert _counters(judged.comparison_id) == before  # it takes the old one's place
    assert list(Judgment.objects.current().values_list("pk", flat=True)) == [unknown.pk]


def test_revising_twice_records_one_revision(judged, alice):
    first = queue.revise_judgment(judged, choice="b", rater=alice)
    again = queue.revise_judgment(judged, choice="tie", rater=alice)  # a double submit
    assert again.pk == first.pk and again.choice == "b"
    assert Judgment.objects.count() == 2


def test_the_database_allows_one_current_judgment_per_assignment(judged):
    fields = {
        f.attname: getattr(judged, f.attname)
        for f in Judgment._meta.concrete_fields
        if f.name not in ("id", "created_at")
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(**fields)
    Judgment.objects.filter(pk=judged.pk).update(superseded_at=judged.created_at)
    Judgment.objects.create(**fields)  # once the old one is superseded, a current one may follow
    assert Judgment.objects.current().count() == 1


def test_it_refuses_a_revision_too_late_or_on_a_complete_comparison(judged, alice, project):
    Judgment.objects.filter(pk=judged.pk).update(
        created_at=judged.created_at - timedelta(seconds=queue.UNDO_SECONDS + 1)
    )
    assert queue.undoable_judgment(alice, project) is None
    with pytest.raises(ValidationError, match="can no longer be changed"):
        queue.revise_judgment(judged, choice="b", rater=alice)
    Judgment.objects.filter(pk=judged.pk).update(created_at=judged.created_at)
    assert queue.undoable_judgment(alice, project) == judged
    # Complete (the queue's completed_at, under either policy): its judgments are final.
    Comparison.objects.filter(pk=judged.comparison_id).update(completed_at=judged.created_at)
    assert queue.undoable_judgment(alice, project) is None
    assert not Comparison.objects.filter(pk=judged.comparison_id).filter(
        queue.comparison_still_open(judged.comparison_id)
    )
    with pytest.raises(ValidationError):
        queue.revise_judgment(judged, choice="b", rater=alice)
    assert Judgment.objects.get().choice == "a"  # nothing changed


def test_only_the_rater_may_revise_and_only_with_a_valid_answer(judged, bob, alice):
    with pytest.raises(PermissionDenied):
        queue.revise_judgment(judged, choice="b", rater=bob)
    with pytest.raises(ValidationError) as raised:
        queue.revise_judgment(judged, choice="sideways", rater=alice)
    assert "choice" in raised.value.message_dict
    assert Judgment.objects.get().superseded_at is None


def test_undo_offers_only_the_last_judgment(judged, alice, project):
    ComparisonFactory(project=project, external_id="q-next")
    second = queue.submit_judgment(queue.next_assignment(alice, project), choice="b")
    assert queue.undoable_judgment(alice, project) == second
    revision = queue.revise_judgment(second, choice="a", rater=alice)
    assert queue.undoable_judgment(alice, project) == revision  # the revision may be undone too


def test_counts_exports_and_metrics_use_the_revision(judged, alice, bob, project, tmp_path):
    # bob agrees with alice's first answer; alice then changes her mind.
    Project.objects.filter(pk=project.pk).update(overlap=3)
    queue.submit_judgment(queue.next_assignment(bob, project), choice="a")
    queue.revise_judgment(judged, choice="b", rater=alice)

    # The rater's own counts.
    assert metrics.rater_summary(alice, [project])[project.pk]["today"] == 1
    progress = metrics.project_progress(project)
    assert sum(progress["progress"]["daily"]) == 2
    per_rater = progress["throughput"]["per_rater"]
    assert sum(per_rater[str(alice.pk)].values()) == 1
    # Raw export: one row per current judgment, alice's with her revised choice.
    # (2 of 3 judgments: the comparison is still open, so the exports ask for incomplete ones.)
    manifest = export_preferences(
        project, "judgments", tmp_path / "raw.jsonl", include_incomplete=True
    )
    rows = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert manifest["counts"]["judgments"] == 2
    assert sorted(r["choice"] for r in rows) == ["a", "b"]
    # Aggregates: 1-1 is no majority, so no TRL row (the superseded "a" would have made 2-0).
    export_preferences(project, "trl", tmp_path / "trl.jsonl", include_incomplete=True)
    assert (tmp_path / "trl.jsonl").read_text() == ""
    # Metrics read judgments through the same owner.
    assert metrics.agreement(project)["choice"]["units"] == 1
    board = metrics.leaderboard(project)
    wins = {m["name"]: m["wins"] for m in board["models"]}
    assert board["judgments"] == 2 and sorted(wins.values()) == [1, 1]


def test_the_revise_page_shows_the_answer_and_the_post_supersedes(
    alice_client, judged, project, django_assert_max_data_queries
):
    url = f"/rate/{project.slug}/judgments/{judged.pk}/revise"
    with django_assert_max_data_queries(PAGE_BUDGET):
        r = alice_client.get(url, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200 and "Revising your last judgment" in html
    shown = "2" if judged.swapped else "1"
    assert f'value="{shown}" checked' in html
    r = alice_client.post(url, {"choice": "tie"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "replaces the earlier one" in r.content.decode()
    assert Judgment.objects.current().get().choice == "tie"
    # Once revised, the old judgment is not offered again.
    r = alice_client.get(url)
    assert r.status_code == 302


def test_another_raters_judgment_is_not_found(client, bob, judged, project):
    client.force_login(bob)
    url = f"/rate/{project.slug}/judgments/{judged.pk}/revise"
    assert client.get(url).status_code == 404
    assert client.post(url, {"choice": "b"}).status_code == 404
    assert Judgment.objects.get().superseded_at is None


def test_the_rating_page_links_undo_while_it_is_allowed(alice_client, judged, project):
    html = alice_client.get(f"/rate/{project.slug}/").content.decode()
    assert f"/judgments/{judged.pk}/revise" in html and 'id="undo"' in html
    Judgment.objects.filter(pk=judged.pk).update(
        created_at=judged.created_at - timedelta(seconds=queue.UNDO_SECONDS + 1)
    )
    assert 'id="undo"' not in alice_client.get(f"/rate/{project.slug}/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_racing_revisions_of_one_judgment_record_one():
    """A double Enter on the revision, from threads with their own connections: the lease's
    lock serializes them, and the loser returns the winner's revision."""
    from tests.comparisons.test_queue_concurrency import _race, _seed

    project, (rater,) = _seed(n_raters=1, n_comparisons=2, overlap=3)
    judgment = queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
    results, errors = _race(6, lambda: queue.revise_judgment(judgment, choice="b", rater=rater).pk)
    assert errors == []
    assert len(set(results)) == 1
    assert Judgment.objects.count() == 2
    assert Judgment.objects.current().get().pk == results[0]
    assert Comparison.objects.get(pk=judgment.comparison_id).judged_count == 1


def test_a_revision_under_the_adaptive_policy_recounts_its_comparison(project, alice, bob):
    # Adaptive (2, 3): a-b leaves one slot open for a third; bob revising to a makes it 2-0,
    # decided: complete, and the third slot closes in the same transaction.
    from comparisons.models import OverlapPolicy

    queue.set_overlap_policy(project, overlap_policy=OverlapPolicy.ADAPTIVE)
    comparison = ComparisonFactory(project=project, external_id="q-adaptive")
    queue.submit_judgment(queue.next_assignment(alice, project), choice="a")
    first_b = queue.submit_judgment(queue.next_assignment(bob, project), choice="b")
    comparison.refresh_from_db()
    assert (comparison.open_slots, comparison.completed_at) == (1, None)

    queue.revise_judgment(first_b, choice="a", rater=bob)
    comparison.refresh_from_db()
    assert comparison.completed_at is not None
    assert (comparison.open_slots, comparison.lead_margin) == (0, 2)
