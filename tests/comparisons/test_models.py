from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from comparisons.models import Assignment, Comparison, Project
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory, ProjectFactory


def _violates(fn) -> bool:
    try:
        with transaction.atomic():
            fn()
    except IntegrityError:
        return True
    return False


@pytest.mark.django_db
def test_external_id_is_unique_within_a_project_only():
    p1, p2 = ProjectFactory(), ProjectFactory()
    ComparisonFactory(project=p1, external_id="x")
    assert _violates(lambda: Comparison.objects.create(project=p1, external_id="x", prompt=[]))
    assert not _violates(lambda: Comparison.objects.create(project=p2, external_id="x", prompt=[]))


@pytest.mark.django_db
def test_overlap_must_be_at_least_one():
    assert _violates(lambda: ProjectFactory(slug="zero", overlap=0))


@pytest.mark.django_db
def test_enumerations_are_checked_by_the_database():
    project = ProjectFactory()
    assert _violates(lambda: Project.objects.filter(pk=project.pk).update(status="deleted"))
    comparison = ComparisonFactory(project=project)
    assert _violates(lambda: Comparison.objects.filter(pk=comparison.pk).update(gold_choice="c"))
    assignment = AssignmentFactory(comparison=comparison)
    assert _violates(lambda: Assignment.objects.filter(pk=assignment.pk).update(status="lost"))
    judgment = JudgmentFactory()
    assert _violates(lambda: type(judgment).objects.filter(pk=judgment.pk).update(choice="maybe"))
    assert _violates(lambda: type(judgment).objects.filter(pk=judgment.pk).update(strength="huge"))


@pytest.mark.django_db
def test_one_assignment_per_rater_and_comparison(alice):
    comparison = ComparisonFactory()
    AssignmentFactory(comparison=comparison, rater=alice, status=Assignment.Status.SKIPPED)
    assert _violates(lambda: AssignmentFactory(comparison=comparison, rater=alice))


@pytest.mark.django_db
def test_one_active_lease_per_rater_and_project(alice):
    project = ProjectFactory()
    AssignmentFactory(comparison=ComparisonFactory(project=project), rater=alice)
    assert _violates(
        lambda: AssignmentFactory(comparison=ComparisonFactory(project=project), rater=alice)
    )
    # A finished lease does not block the next one.
    Assignment.objects.filter(rater=alice).update(status=Assignment.Status.SUBMITTED)
    assert not _violates(
        lambda: AssignmentFactory(comparison=ComparisonFactory(project=project), rater=alice)
    )


@pytest.mark.django_db
def test_one_judgment_per_assignment():
    judgment = JudgmentFactory()
    assert _violates(lambda: JudgmentFactory(assignment=judgment.assignment))


@pytest.mark.django_db
def test_a_late_judgment_is_never_counted():
    judgment = JudgmentFactory()
    assert _violates(
        lambda: type(judgment).objects.filter(pk=judgment.pk).update(is_late=True, counted=True)
    )


# --- the hot path's hand-written SQL helpers ------------------------------------------------


@pytest.mark.django_db
def test_from_row_gives_the_instances_the_orm_would_load():
    """Datetimes, booleans and JSON come back converted on every backend, not as raw values."""
    from django.db import connection

    from comparisons.models import from_row, select_list

    project = ProjectFactory(criteria=["accuracy", "style"], use_strength=True)
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project), swapped=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {select_list(Assignment, 'a')}, {select_list(Project, 'p')} "
            'FROM "comparisons_assignment" a JOIN "comparisons_project" p ON p.id = a.project_id '
            "WHERE a.id = %s",
            [assignment.pk],
        )
        loaded, loaded_project = from_row(cursor.fetchone(), Assignment, Project)
    fields = ("status", "swapped", "leased_at", "expires_at", "rater_id", "comparison_id")
    expected = Assignment.objects.get(pk=assignment.pk)
    assert [getattr(loaded, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert loaded.swapped is True and loaded.expires_at.tzinfo is not None
    assert loaded_project.criteria == ["accuracy", "style"] and loaded_project.use_strength is True
    assert not loaded._state.adding


@pytest.mark.django_db
def test_insert_saves_like_save_does():
    from comparisons.models import Judgment, insert

    assignment = AssignmentFactory()
    judgment = insert(
        Judgment(
            assignment=assignment,
            project_id=assignment.project_id,
            comparison_id=assignment.comparison_id,
            rater_id=assignment.rater_id,
            choice="a",
            criteria={"accuracy": "b"},
            flags=["unsafe"],
            duration_ms=1200,
        )
    )
    assert judgment.pk is not None and not judgment._state.adding
    stored = Judgment.objects.get(pk=judgment.pk)
    assert stored.created_at == judgment.created_at is not None  # auto_now_add ran
    assert (stored.criteria, stored.flags, stored.duration_ms) == (
        {"accuracy": "b"},
        ["unsafe"],
        1200,
    )
    assert stored.counted is True and stored.is_late is False  # the fields' defaults
    with pytest.raises(IntegrityError), transaction.atomic():
        insert(Judgment(assignment=assignment, project_id=assignment.project_id,
                        comparison_id=assignment.comparison_id, rater_id=assignment.rater_id,
                        choice="b"))  # fmt: skip
