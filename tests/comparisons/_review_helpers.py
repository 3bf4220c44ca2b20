"""Planting judged comparisons for the review tests."""

from __future__ import annotations

from collections.abc import Sequence

from comparisons.models import AssignmentStatus, Comparison, Project
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory, UserFactory


def plant(
    project: Project,
    choices: Sequence[str],
    *,
    flags: dict[int, list[str]] | None = None,
    gold: str | None = None,
    raters: Sequence | None = None,
    **fields,
) -> Comparison:
    """A comparison judged once per choice (counted, by distinct raters), its counters as the
    queue keeps them: complete when len(choices) >= the project's overlap."""
    flags = flags or {}
    comparison = ComparisonFactory(
        project=project,
        gold_choice=gold,
        judged_count=len(choices),
        open_slots=0 if gold else max(project.overlap - len(choices), 0),
        **fields,
    )
    for i, choice in enumerate(choices):
        rater = raters[i] if raters else UserFactory()
        JudgmentFactory(
            assignment=AssignmentFactory(
                comparison=comparison, rater=rater, status=AssignmentStatus.SUBMITTED
            ),
            choice=choice,
            flags=flags.get(i, []),
            is_gold=gold is not None,
            duration_ms=7000 + i,
        )
    return comparison
