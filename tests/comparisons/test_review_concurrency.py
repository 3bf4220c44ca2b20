"""Reviewers racing for the review queue, in threads with their own connections: nobody takes
an item another holds, and every item gets exactly one verdict."""

from __future__ import annotations

import threading
import traceback

import pytest
from django.db import connection
from django.db.models import Count

from comparisons import review
from comparisons.models import Adjudication, ReviewLease, ReviewLeaseStatus
from tests.comparisons._review_helpers import plant
from tests.factories import ProjectFactory, UserFactory


def _seed(n_reviewers: int, n_items: int):
    project = ProjectFactory(slug=f"rev-{n_reviewers}-{n_items}", overlap=3)
    reviewers = [UserFactory(email=f"reviewer{i}@example.com") for i in range(n_reviewers)]
    project.reviewers.add(*reviewers)
    raters = [UserFactory(email=f"r{i}@example.com") for i in range(3)]
    for i in range(n_items):
        plant(project, ["a", "b", "tie"], raters=raters, external_id=f"split-{i}")
    return project, reviewers


def _in_threads(reviewers, fn) -> list[str]:
    """fn(reviewer) in one thread per reviewer, released together; the errors."""
    barrier = threading.Barrier(len(reviewers))
    errors: list[str] = []

    def run(reviewer):
        try:
            barrier.wait()
            fn(reviewer)
        except Exception:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def _first_picks_are_distinct(n_reviewers: int, n_items: int):
    project, reviewers = _seed(n_reviewers, n_items)
    got: dict[int, int | None] = {}

    def pick(reviewer):
        lease = review.next_review(reviewer, project)
        got[reviewer.pk] = lease.comparison_id if lease else None

    assert _in_threads(reviewers, pick) == []
    taken = [c for c in got.values() if c is not None]
    assert len(taken) == len(set(taken)) == min(n_reviewers, n_items)
    assert ReviewLease.objects.filter(status=ReviewLeaseStatus.ACTIVE).count() == len(taken)


def _everything_adjudicated_once(n_reviewers: int, n_items: int):
    project, reviewers = _seed(n_reviewers, n_items)

    def work(reviewer):
        for _ in range(n_items + 1):
            lease = review.next_review(reviewer, project)
            if lease is None:
                return
            review.adjudicate_lease(lease, choice="a", note=reviewer.email)

    assert _in_threads(reviewers, work) == []
    per_item = Adjudication.objects.values("comparison").annotate(n=Count("pk"))
    assert len(per_item) == n_items
    assert {row["n"] for row in per_item} == {1}
    assert not review.review_queue(project).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_reviewers_take_distinct_items_on_postgresql():
    _first_picks_are_distinct(n_reviewers=8, n_items=5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_reviewers_adjudicate_each_item_once_on_postgresql():
    _everything_adjudicated_once(n_reviewers=6, n_items=30)


@pytest.mark.django_db(transaction=True)
def test_racing_reviewers_take_distinct_items():
    """On SQLite (the default database): immediate transactions serialize the picks."""
    _first_picks_are_distinct(n_reviewers=4, n_items=3)


@pytest.mark.django_db(transaction=True)
def test_racing_reviewers_adjudicate_each_item_once():
    _everything_adjudicated_once(n_reviewers=4, n_items=12)
