"""POST /rate/<slug>/<id>/submit: record a judgment, answer with the next panel."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from comparisons import queue
from comparisons.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    Judgment,
    Project,
    ProjectStatus,
    RationaleMode,
)
from tests.comparisons._rate_helpers import ACTION_BUDGET
from tests.factories import ComparisonFactory, ProjectFactory, bulk_comparisons

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def lease(project, alice):
    ComparisonFactory.create_batch(3, project=project)
    return queue.next_assignment(alice, project)


def _url(lease) -> str:
    return f"/rate/{lease.project.slug}/{lease.pk}/submit"


def test_it_records_the_canonical_choice_and_redirects_without_htmx(alice_client, lease):
    r = alice_client.post(_url(lease), {"choice": "1", "rationale": "Clearer."})
    assert r.status_code == 302
    assert r["Location"] == "/rate/demo-test/"
    j = Judgment.objects.get()
    assert (j.choice, j.rationale, j.counted, j.is_late) == ("a", "Clearer.", True, False)
    assert j.assignment == lease
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.SUBMITTED


def test_it_maps_the_on_screen_choice_through_the_display_order(alice_client, lease):
    Assignment.objects.filter(pk=lease.pk).update(swapped=True)
    alice_client.post(_url(lease), {"choice": "1"})
    assert Judgment.objects.get().choice == "b"


def test_ties_and_both_bad_are_order_free(alice_client, lease):
    Assignment.objects.filter(pk=lease.pk).update(swapped=True)
    alice_client.post(_url(lease), {"choice": "both_bad"})
    assert Judgment.objects.get().choice == "both_bad"


def test_htmx_gets_the_next_panel_and_a_new_url(alice_client, lease):
    r = alice_client.post(_url(lease), {"choice": "2"}, **HTMX)
    assert r.status_code == 200
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="panel"')  # the partial, not the page
    assert "<html" not in html
    nxt = Assignment.objects.get(status=AssignmentStatus.ACTIVE)
    assert nxt.pk != lease.pk
    assert f'data-assignment="{nxt.pk}"' in html
    assert r["HX-Push-Url"] == f"/rate/demo-test/?a={nxt.pk}"
    assert "in total: <strong>1</strong>" in html


def test_the_last_submit_shows_the_done_state(alice_client, project, alice):
    ComparisonFactory(project=project)
    only = queue.next_assignment(alice, project)
    r = alice_client.post(_url(only), {"choice": "1"}, **HTMX)
    html = r.content.decode()
    assert "All done" in html
    assert r["HX-Push-Url"] == "/rate/demo-test/"


def test_a_double_submit_records_one_judgment(alice_client, lease):
    first = alice_client.post(_url(lease), {"choice": "1"}, **HTMX)
    second = alice_client.post(_url(lease), {"choice": "2"}, **HTMX)
    assert first.status_code == second.status_code == 200
    assert Judgment.objects.count() == 1
    assert Judgment.objects.get().choice == "a"
    # The retry shows the same next comparison, not yet another lease.
    nxt = Assignment.objects.get(status=AssignmentStatus.ACTIVE)
    assert first["HX-Push-Url"] == second["HX-Push-Url"] == f"/rate/demo-test/?a={nxt.pk}"


def test_another_raters_assignment_is_a_404(client, bob, lease):
    client.force_login(bob)
    r = client.post(_url(lease), {"choice": "1"})
    assert r.status_code == 404
    assert not Judgment.objects.exists()


def test_a_mismatched_project_slug_is_a_404(alice_client, lease, alice):
    other = ProjectFactory(slug="other")
    other.raters.add(alice)
    r = alice_client.post(f"/rate/other/{lease.pk}/submit", {"choice": "1"})
    assert r.status_code == 404


def test_a_rater_removed_from_the_project_gets_a_404(alice_client, lease, alice, project):
    project.raters.remove(alice)
    assert alice_client.post(_url(lease), {"choice": "1"}).status_code == 404
    assert not Judgment.objects.exists()


def test_anonymous_is_sent_to_login(client, lease):
    r = client.post(_url(lease), {"choice": "1"})
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert not Judgment.objects.exists()


def test_get_is_not_allowed(alice_client, lease):
    assert alice_client.get(_url(lease)).status_code == 405


def test_it_requires_a_csrf_token(alice, lease):
    c = Client(enforce_csrf_checks=True)
    c.force_login(alice)
    assert c.post(_url(lease), {"choice": "1"}, **HTMX).status_code == 403
    assert not Judgment.objects.exists()


def test_a_missing_choice_re_renders_the_panel_keeping_input(alice_client, lease):
    r = alice_client.post(
        _url(lease), {"rationale": "My careful reasoning", "flags": ["unsafe"]}, **HTMX
    )
    assert r.status_code == 422
    html = r.content.decode()
    assert "Choose which response is better" in html
    assert "My careful reasoning" in html
    assert re.search(r'<input type="checkbox" name="flags" value="unsafe"[^>]*checked', html)
    assert not re.search(r'value="cannot_judge"[^>]*checked', html)
    assert f'data-assignment="{lease.pk}"' in html  # still the same comparison
    assert not Judgment.objects.exists()


def test_validation_errors_without_htmx_render_the_whole_page(alice_client, lease):
    r = alice_client.post(_url(lease), {"choice": "nonsense"})
    assert r.status_code == 422
    assert "<html" in r.content.decode()
    assert not Judgment.objects.exists()


def test_a_required_rationale_and_minimum_length_are_enforced(alice_client, lease, project):
    Project.objects.filter(pk=project.pk).update(
        rationale=RationaleMode.REQUIRED, rationale_min_chars=15
    )
    r = alice_client.post(_url(lease), {"choice": "1"}, **HTMX)
    assert r.status_code == 422 and "asks for a rationale" in r.content.decode()
    r = alice_client.post(_url(lease), {"choice": "1", "rationale": "too short"}, **HTMX)
    assert r.status_code == 422 and "at least 15 characters" in r.content.decode()
    r = alice_client.post(_url(lease), {"choice": "1", "rationale": "long enough, truly"}, **HTMX)
    assert r.status_code == 200
    assert Judgment.objects.get().rationale == "long enough, truly"


def test_a_rationale_over_the_cap_is_refused_with_its_count(alice_client, lease, settings):
    settings.RATERHUB_RATIONALE_MAX_CHARS = 50
    r = alice_client.post(_url(lease), {"choice": "1", "rationale": "y" * 51}, **HTMX)
    html = r.content.decode()
    assert r.status_code == 422
    assert "Keep the rationale to 50 characters (51 now)." in html
    assert 'maxlength="50"' in html and "51 / 50 characters" in html
    assert not Judgment.objects.exists()


def test_strength_is_required_and_criteria_follow_the_choice_canonically(
    alice_client, lease, project
):
    Project.objects.filter(pk=project.pk).update(
        use_strength=True, criteria=["helpfulness", "honesty", "harmlessness"]
    )
    Assignment.objects.filter(pk=lease.pk).update(swapped=True)
    r = alice_client.post(_url(lease), {"choice": "1"}, **HTMX)
    html = r.content.decode()
    assert r.status_code == 422
    assert "Say how much better" in html
    assert 'id="criteria-errors"' not in html  # criteria left alone follow the choice
    r = alice_client.post(
        _url(lease),
        # criterion_2 "" is "same as overall", as the page posts it by default.
        {"choice": "1", "strength": "much", "criterion_0": "2", "criterion_1": "tie",
         "criterion_2": ""},
        **HTMX,
    )  # fmt: skip
    assert r.status_code == 200
    j = Judgment.objects.get()
    assert (j.choice, j.strength) == ("b", "much")
    assert j.criteria == {"helpfulness": "a", "honesty": "tie", "harmlessness": "b"}


def test_strength_is_dropped_for_a_tie(alice_client, lease, project):
    Project.objects.filter(pk=project.pk).update(use_strength=True)
    alice_client.post(_url(lease), {"choice": "tie", "strength": "much"})
    j = Judgment.objects.get()
    assert (j.choice, j.strength) == ("tie", None)


def test_flags_and_the_pages_time_are_recorded(alice_client, lease):
    alice_client.post(
        _url(lease), {"choice": "2", "flags": ["unsafe", "cannot_judge"], "duration_ms": "8421"}
    )
    j = Judgment.objects.get()
    assert j.flags == ["unsafe", "cannot_judge"]
    assert j.duration_ms == 8421


def test_time_spent_falls_back_to_the_lease_start(alice_client, lease):
    with time_machine.travel(lease.leased_at + timedelta(seconds=42), tick=False):
        alice_client.post(_url(lease), {"choice": "1"})
    assert Judgment.objects.get().duration_ms == 42_000


def test_a_late_judgment_is_kept_and_the_rater_is_told(alice_client, project, alice, bob):
    Project.objects.filter(pk=project.pk).update(overlap=1)
    Comparison.objects.filter(project=project).update(open_slots=1)
    ComparisonFactory(project=project, open_slots=1)
    project.refresh_from_db()
    mine = queue.next_assignment(alice, project)
    # Alice's lease runs out, is reclaimed, and bob takes the only slot.
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 5)
    with time_machine.travel(later, tick=False):
        queue.reclaim_expired(project=project)
        theirs = queue.next_assignment(bob, project)
        assert theirs.comparison_id == mine.comparison_id
        r = alice_client.post(_url(mine), {"choice": "1"}, **HTMX)
    assert r.status_code == 200
    assert "came in late" in r.content.decode()
    j = Judgment.objects.get()
    assert j.is_late and not j.counted


def test_a_late_judgment_without_htmx_is_told_on_the_next_page(alice_client, project, alice, bob):
    Project.objects.filter(pk=project.pk).update(overlap=1)
    ComparisonFactory(project=project, open_slots=1)
    project.refresh_from_db()
    mine = queue.next_assignment(alice, project)
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 5)
    with time_machine.travel(later, tick=False):
        queue.reclaim_expired(project=project)
        queue.next_assignment(bob, project)
        r = alice_client.post(_url(mine), {"choice": "1"}, follow=True)
    assert "came in late" in r.content.decode()


def test_submitting_a_skipped_assignment_records_nothing(alice_client, lease):
    queue.skip_assignment(lease)
    r = alice_client.post(_url(lease), {"choice": "1"}, **HTMX)
    assert r.status_code == 200
    assert "was not recorded" in r.content.decode()
    assert not Judgment.objects.exists()


def test_a_pause_while_rating_shows_the_paused_state_after_submit(alice_client, lease, project):
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    r = alice_client.post(_url(lease), {"choice": "1"}, **HTMX)
    assert Judgment.objects.count() == 1  # the answer in hand is never lost
    assert "This project is paused" in r.content.decode()


def test_it_runs_a_constant_number_of_queries(
    transactional_db, alice, project, django_assert_max_data_queries
):
    c = Client()
    c.force_login(alice)
    bulk_comparisons(project, 10)

    def submit_current() -> int:
        url = _url(Assignment.objects.select_related("project").get(rater=alice, status="active"))
        with django_assert_max_data_queries(ACTION_BUDGET) as queries:
            c.post(url, {"choice": "1"}, **HTMX)
        return len(queries)

    queue.next_assignment(alice, project)
    few = submit_current()
    bulk_comparisons(project, 1000)
    many = submit_current()
    print(f"submit+next: {many} data queries")
    assert few == many
