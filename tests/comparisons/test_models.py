from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from comparisons.models import Assignment, AssignmentStatus, Comparison, Project
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
    AssignmentFactory(comparison=comparison, rater=alice, status=AssignmentStatus.SKIPPED)
    assert _violates(lambda: AssignmentFactory(comparison=comparison, rater=alice))


@pytest.mark.django_db
def test_one_active_lease_per_rater_and_project(alice):
    project = ProjectFactory()
    AssignmentFactory(comparison=ComparisonFactory(project=project), rater=alice)
    assert _violates(
        lambda: AssignmentFactory(comparison=ComparisonFactory(project=project), rater=alice)
    )
    # A finished lease does not block the next one.
    Assignment.objects.filter(rater=alice).update(status=AssignmentStatus.SUBMITTED)
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
@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        (5, "must be a list of names"),
        ({"helpfulness": 1}, "must be a list of names"),
        (["helpfulness", ""], "non-empty name"),
        (["helpfulness", 3], "non-empty name"),
        (["helpfulness", "Helpfulness "], "listed twice"),
        (["x" * 41], "longer than 40"),
        ([f"c{i}" for i in range(11)], "At most 10"),
    ],
)
@pytest.mark.django_db
def test_a_rating_scheme_with_bad_criteria_is_refused(criteria, message):
    project = ProjectFactory.build(slug="scheme", criteria=criteria)
    with pytest.raises(ValidationError, match=message):
        project.full_clean()


@pytest.mark.django_db
def test_good_criteria_pass_validation():
    ProjectFactory.build(slug="scheme", criteria=["helpfulness", "honesty"]).full_clean()


@pytest.mark.django_db
def test_the_database_refuses_criteria_that_are_not_a_list():
    project = ProjectFactory(slug="scheme")
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(criteria=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.filter(pk=project.pk).update(criteria={"a": 1})
    Project.objects.filter(pk=project.pk).update(criteria=["ok"])
