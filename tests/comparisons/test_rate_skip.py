"""POST /rate/<slug>/<id>/skip: give the comparison back, with a reason."""

from __future__ import annotations

import pytest
from django.test import Client

from comparisons import queue
from comparisons.models import Assignment, AssignmentStatus, Comparison
from tests.comparisons._rate_helpers import ACTION_BUDGET
from tests.factories import ComparisonFactory, bulk_comparisons

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def lease(project, alice):
    ComparisonFactory.create_batch(2, project=project)
    return queue.next_assignment(alice, project)


def _url(lease) -> str:
    return f"/rate/{lease.project.slug}/{lease.pk}/skip"


def test_it_skips_with_the_reason_and_frees_the_slot(alice_client, lease, project):
    before = Comparison.objects.get(pk=lease.comparison_id).open_slots
    r = alice_client.post(_url(lease), {"reason": "Outside my expertise"})
    assert r.status_code == 302 and r["Location"] == "/rate/demo-test/"
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SKIPPED
    assert lease.skip_reason == "Outside my expertise"
    assert Comparison.objects.get(pk=lease.comparison_id).open_slots == before + 1


def test_htmx_gets_the_next_panel_and_never_the_skipped_one_again(alice_client, lease):
    r = alice_client.post(_url(lease), {"reason": ""}, **HTMX)
    html = r.content.decode()
    nxt = Assignment.objects.get(status=AssignmentStatus.ACTIVE)
    assert nxt.comparison_id != lease.comparison_id
    assert f'data-assignment="{nxt.pk}"' in html and "Skipped" in html
    assert r["HX-Push-Url"] == f"/rate/demo-test/?a={nxt.pk}"
    # Skip the last one too: done, and the first is not offered again.
    r = alice_client.post(_url(nxt), {}, **HTMX)
    assert "All done" in r.content.decode()


def test_a_double_skip_is_harmless(alice_client, lease):
    alice_client.post(_url(lease), {"reason": "x"}, **HTMX)
    r = alice_client.post(_url(lease), {"reason": "x"}, **HTMX)
    assert r.status_code == 200
    assert Assignment.objects.filter(status=AssignmentStatus.SKIPPED).count() == 1


def test_skipping_after_submitting_changes_nothing(alice_client, lease):
    queue.submit_judgment(lease, choice="a")
    r = alice_client.post(_url(lease), {"reason": "x"}, **HTMX)
    assert r.status_code == 200
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SUBMITTED


def test_another_raters_assignment_is_a_404(client, bob, lease):
    client.force_login(bob)
    assert client.post(_url(lease), {}).status_code == 404
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE


def test_anonymous_and_get_are_refused(client, alice, lease):
    assert client.post(_url(lease), {})["Location"].startswith("/accounts/login/")
    client.force_login(alice)
    assert client.get(_url(lease)).status_code == 405
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE


def test_it_runs_a_constant_number_of_queries(
    transactional_db, alice, project, django_assert_max_data_queries
):
    c = Client()
    c.force_login(alice)
    bulk_comparisons(project, 10)

    def skip_current() -> int:
        url = _url(Assignment.objects.select_related("project").get(rater=alice, status="active"))
        with django_assert_max_data_queries(ACTION_BUDGET) as queries:
            c.post(url, {"reason": "r"}, **HTMX)
        return len(queries)

    queue.next_assignment(alice, project)
    few = skip_current()
    bulk_comparisons(project, 1000)
    many = skip_current()
    assert few == many
