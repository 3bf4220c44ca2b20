"""factory-boy factories shared by every test. Personas: alice, bob, charlie are raters; lead is staff."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from accounts.models import User
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
    open_slots = factory.LazyAttribute(lambda o: o.project.overlap)

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

    assignment = factory.SubFactory(AssignmentFactory, status=AssignmentStatus.SUBMITTED)
    project = factory.LazyAttribute(lambda o: o.assignment.project)
    comparison = factory.LazyAttribute(lambda o: o.assignment.comparison)
    rater = factory.LazyAttribute(lambda o: o.assignment.rater)
    swapped = factory.LazyAttribute(lambda o: o.assignment.swapped)
    choice = "a"
