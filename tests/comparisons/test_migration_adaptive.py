"""Migration 0006_adaptive on data recorded before it: releases become RELEASED (their raters may
get the comparison again), and every comparison gets lead_margin and completed_at."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("comparisons", "0005_exportjob_sent_at")]
AFTER = [("comparisons", "0006_adaptive")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_releases_margins_and_completion():
    apps = _migrate(BEFORE)
    try:
        User = apps.get_model("accounts", "User")
        Project = apps.get_model("comparisons", "Project")
        Comparison = apps.get_model("comparisons", "Comparison")
        Assignment = apps.get_model("comparisons", "Assignment")
        Judgment = apps.get_model("comparisons", "Judgment")
        project = Project.objects.create(slug="old", name="Old", overlap=3)
        raters = [User.objects.create(email=f"m{i}@example.com") for i in range(4)]
        done = Comparison.objects.create(project=project, external_id="done", prompt=[])
        half = Comparison.objects.create(project=project, external_id="half", prompt=[])
        now = timezone.now()

        def judge(comparison, rater, choice, minutes):
            a = Assignment.objects.create(
                project=project,
                comparison=comparison,
                rater=rater,
                status="submitted",
                leased_at=now,
                expires_at=now,
            )
            j = Judgment.objects.create(
                assignment=a,
                project=project,
                comparison=comparison,
                rater=rater,
                choice=choice,
            )
            Judgment.objects.filter(pk=j.pk).update(created_at=now + timedelta(minutes=minutes))

        for minutes, (rater, choice) in enumerate(zip(raters, "aab", strict=False)):
            judge(done, rater, choice, minutes)
        judge(half, raters[0], "tie", 5)
        released = Assignment.objects.create(
            project=project,
            comparison=half,
            rater=raters[1],
            status="skipped",
            skip_reason="Released by a project lead.",
            leased_at=now,
            expires_at=now,
        )
        skipped = Assignment.objects.create(
            project=project,
            comparison=half,
            rater=raters[2],
            status="skipped",
            skip_reason="Not my language",
            leased_at=now,
            expires_at=now,
        )

        apps = _migrate(AFTER)
        Comparison = apps.get_model("comparisons", "Comparison")
        Assignment = apps.get_model("comparisons", "Assignment")
        d, h = Comparison.objects.get(pk=done.pk), Comparison.objects.get(pk=half.pk)
        assert (d.lead_margin, h.lead_margin) == (1, 1)
        # Complete at the judgment that reached the overlap: the third.
        assert d.completed_at == now + timedelta(minutes=2)
        assert h.completed_at is None
        assert Assignment.objects.get(pk=released.pk).status == "released"
        assert Assignment.objects.get(pk=skipped.pk).status == "skipped"
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
