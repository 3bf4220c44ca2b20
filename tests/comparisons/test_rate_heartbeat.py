"""POST /rate/<slug>/<id>/heartbeat: keep the lease while the rater works."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from comparisons import queue
from comparisons.models import Assignment, AssignmentStatus
from tests.comparisons._rate_helpers import PAGE_BUDGET
from tests.factories import ComparisonFactory, bulk_comparisons


@pytest.fixture
def lease(project, alice):
    ComparisonFactory(project=project)
    return queue.next_assignment(alice, project)


def _url(lease) -> str:
    return f"/rate/{lease.project.slug}/{lease.pk}/heartbeat"


def test_it_renews_the_lease(client, alice, lease):
    client.force_login(alice)
    later = timezone.now() + timedelta(seconds=300)
    with time_machine.travel(later, tick=False):
        r = client.post(_url(lease))
    assert r.status_code == 200 and r.json()["renewed"] is True
    lease.refresh_from_db()
    assert lease.expires_at == later + timedelta(seconds=lease.project.lease_seconds)


def test_it_answers_409_when_the_lease_is_gone(client, alice, lease, project):
    client.force_login(alice)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    with time_machine.travel(later, tick=False):
        queue.reclaim_expired(project=project)
        r = client.post(_url(lease))
    assert r.status_code == 409 and r.json()["renewed"] is False
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.EXPIRED


def test_another_raters_lease_is_a_404(client, bob, lease):
    client.force_login(bob)
    before = Assignment.objects.get(pk=lease.pk).expires_at
    assert client.post(_url(lease)).status_code == 404
    assert Assignment.objects.get(pk=lease.pk).expires_at == before


def test_anonymous_get_and_missing_csrf_are_refused(client, alice, lease):
    assert client.post(_url(lease)).status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(_url(lease)).status_code == 403
    client.force_login(alice)
    assert client.get(_url(lease)).status_code == 405


def test_it_runs_a_constant_number_of_queries(
    transactional_db, alice, project, django_assert_max_data_queries
):
    c = Client()
    c.force_login(alice)
    bulk_comparisons(project, 10)
    url = _url(queue.next_assignment(alice, project))
    with django_assert_max_data_queries(PAGE_BUDGET) as few:
        c.post(url)
    bulk_comparisons(project, 1000)
    with django_assert_max_data_queries(PAGE_BUDGET) as many:
        c.post(url)
    assert len(few) == len(many)
