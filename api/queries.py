"""Reads the API repeats: projects with their progress, in one query whatever their size."""

from __future__ import annotations

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from comparisons.models import Comparison, Project, count_for_project


def with_progress(projects: QuerySet[Project]) -> QuerySet[Project]:
    """Annotate regular comparisons, complete ones and counted judgments (subqueries)."""
    regular = Comparison.objects.filter(project=OuterRef("pk")).regular()
    judged = regular.order_by().values("project").annotate(n=Sum("judged_count")).values("n")
    return projects.annotate(
        progress_comparisons=count_for_project(regular),
        progress_complete=count_for_project(regular.complete()),
        progress_judgments=Coalesce(Subquery(judged, output_field=IntegerField()), 0),
    )


def progress_of(project: Project) -> dict[str, int]:
    """`{"comparisons", "complete", "judgments", "target"}` of a project from with_progress."""
    return {
        "comparisons": project.progress_comparisons,
        "complete": project.progress_complete,
        "judgments": project.progress_judgments,
        "target": project.progress_comparisons * project.overlap,
    }
