"""factory-boy factories shared by every test, and bulk_comparisons for tests that need
thousands of rows. Personas (conftest.py): alice, bob, charlie are raters; lead is staff."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta

import factory
from django.db.models import Count
from django.utils import timezone

from accounts.models import User
from comparisons import overlap
from comparisons.models import Assignment, AssignmentStatus, Comparison, Judgment, Project, Response


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("pw-raterhub-test")


class LeadFactory(UserFactory):
    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    is_staff = True


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    instructions = "Pick the response that answers the prompt better."
    overlap = 3
    lease_seconds = 600


class ComparisonFactory(factory.django.DjangoModelFactory):
    """A two-response comparison with its open slots set as an import would set them."""

    class Meta:
        model = Comparison
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"q-{n:06d}")
    prompt = factory.LazyAttribute(
        lambda o: [{"role": "user", "content": f"Question {o.external_id}?"}]
    )
    metadata = factory.LazyFunction(dict)
    gold_choice = None
    judged_count = 0
    open_slots = factory.LazyAttribute(lambda o: o.project.initial_slots)
    # Given judged_count as a fixed-policy project's queue would record it: complete at overlap.
    completed_at = factory.LazyAttribute(
        lambda o: (
            timezone.now()
            if o.gold_choice is None and o.judged_count >= o.project.max_judgments
            else None
        )
    )

    @factory.post_generation
    def responses(self, create, extracted, **kwargs):
        if not create:
            return
        contents = extracted or [
            ("model-a", f"Answer A to {self.external_id}"),
            ("model-b", f"Answer B to {self.external_id}"),
        ]
        Response.objects.bulk_create(
            Response(comparison=self, position=i, model_name=m, content=c)
            for i, (m, c) in enumerate(contents)
        )


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    comparison = factory.SubFactory(ComparisonFactory)
    project = factory.LazyAttribute(lambda o: o.comparison.project)
    rater = factory.SubFactory(UserFactory)
    leased_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(
        lambda o: o.leased_at + timedelta(seconds=o.project.lease_seconds)
    )


class JudgmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Judgment
        skip_postgeneration_save = True  # recount writes the comparison, not the judgment

    assignment = factory.SubFactory(AssignmentFactory, status=AssignmentStatus.SUBMITTED)
    project = factory.LazyAttribute(lambda o: o.assignment.project)
    comparison = factory.LazyAttribute(lambda o: o.assignment.comparison)
    rater = factory.LazyAttribute(lambda o: o.assignment.rater)
    swapped = factory.LazyAttribute(lambda o: o.assignment.swapped)
    choice = "a"

    @factory.post_generation
    def recount(self, create, extracted, **kwargs):
        # Keep the comparison's counters as the queue would (completed_at above all: exports
        # and progress read "complete" from it).
        if create and extracted is not False:
            count_as_the_queue_would(Comparison.objects.get(pk=self.comparison_id))


_bulk_numbers = itertools.count()


def bulk_comparisons(
    project: Project,
    n: int,
    *,
    judged_by: Sequence[User] = (),
    models: tuple[str, str] = ("model-a", "model-b"),
    **fields,
) -> list[Comparison]:
    """n two-response comparisons in a few bulk inserts (fast enough for thousands in a test).

    A field is a value or a function of the row's index, e.g. `priority=lambda i: i % 3`.
    With judged_by, each of those raters has a submitted lease and a judgment on every
    comparison, counted in its counters as the queue would count them; the choices, display
    orders and times vary so that metrics have something to measure.
    """
    judged = len(judged_by)
    rows = []
    for i in range(n):
        values = {
            "prompt": [{"role": "user", "content": f"Question {i}?"}],
            "open_slots": max(project.initial_slots - judged, 0),
            "judged_count": judged,
            "lease_count": judged,
        }
        values.update({name: v(i) if callable(v) else v for name, v in fields.items()})
        external_id = f"bulk-{next(_bulk_numbers):06d}"
        rows.append(Comparison(project=project, external_id=external_id, **values))
    comparisons = Comparison.objects.bulk_create(rows)
    Response.objects.bulk_create(
        # Response b is the longer one, so length bias has unequal lengths to look at.
        Response(comparison=c, position=p, model_name=models[p], content=f"Answer {p}" + "!" * p)
        for c in comparisons
        for p in (0, 1)
    )
    if judged_by:
        now = timezone.now()
        assignments = Assignment.objects.bulk_create(
            Assignment(
                project=project,
                comparison=c,
                rater=rater,
                status=AssignmentStatus.SUBMITTED,
                swapped=bool((i + k) % 2),
                leased_at=now,
                expires_at=now + timedelta(seconds=project.lease_seconds),
            )
            for i, c in enumerate(comparisons)
            for k, rater in enumerate(judged_by)
        )
        Judgment.objects.bulk_create(
            Judgment(
                assignment=a,
                project=project,
                comparison=a.comparison,
                rater=a.rater,
                swapped=a.swapped,
                choice="ab"[(j // 3) % 2] if j % 5 else "tie",
                duration_ms=6000 + j,
            )
            for j, a in enumerate(assignments)
        )
        count_as_the_queue_would(*comparisons)
    return comparisons


def count_as_the_queue_would(*comparisons: Comparison) -> None:
    """judged_count, lead_margin, completed_at and open_slots of comparisons judged by hand
    (factories), from their judgments and leases, by the queue's rule."""
    if not comparisons:
        return
    low, high = comparisons[0].project.overlap_bounds()
    active = dict(
        Assignment.objects.filter(comparison__in=comparisons, status=AssignmentStatus.ACTIVE)
        .values("comparison_id")
        .annotate(n=Count("id"))
        .values_list("comparison_id", "n")
    )
    choices: dict[int, list[str]] = {}
    for cid, choice in Judgment.objects.filter(
        comparison__in=comparisons, counted=True
    ).values_list("comparison_id", "choice"):
        choices.setdefault(cid, []).append(choice)
    now = timezone.now()
    for c in comparisons:
        votes = choices.get(c.pk, [])
        c.judged_count = len(votes)
        if c.gold_choice is not None:
            continue
        c.lead_margin = overlap.lead_margin(votes)
        target = overlap.target(len(votes), c.lead_margin, minimum=low, maximum=high)
        c.open_slots = target - len(votes) - active.get(c.pk, 0)
        complete = overlap.is_complete(len(votes), c.lead_margin, minimum=low, maximum=high)
        c.completed_at = (c.completed_at or now) if complete else None
    Comparison.objects.bulk_update(
        comparisons, ["judged_count", "lead_margin", "completed_at", "open_slots"]
    )
