"""Personas of the API tests: `lead` leads `project`; `other_lead` leads only `other_project`;
alice is a rater (leads nothing). Each gets a token; `as_lead` etc. are test clients sending it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import LEADS_GROUP
from api.tokens import issue_token
from tests.factories import LeadFactory, ProjectFactory


def token_client(user) -> Client:
    _, key = issue_token(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def other_lead(db):
    user = LeadFactory(email="olivia@example.com")
    user.groups.add(Group.objects.get_or_create(name=LEADS_GROUP)[0])
    return user


@pytest.fixture
def other_project(db, other_lead):
    p = ProjectFactory(slug="other-project", name="Other project")
    p.leads.add(other_lead)
    return p


@pytest.fixture
def as_lead(lead, project):
    return token_client(lead)


@pytest.fixture
def as_other_lead(other_lead, other_project):
    return token_client(other_lead)


@pytest.fixture
def as_rater(alice, project):
    return token_client(alice)


@pytest.fixture(autouse=True)
def _empty_cache():
    # The rate limit counts in the cache, which the in-memory test cache keeps between tests.
    from django.core.cache import cache

    cache.clear()
