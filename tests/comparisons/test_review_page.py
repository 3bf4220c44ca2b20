"""The review page /review/<slug>/: who may see it, what it shows, and its one-trip submit."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from comparisons import review
from comparisons.models import Adjudication, Judgment, Project, Response, ReviewLease
from tests.comparisons._review_helpers import plant
from tests.factories import LeadFactory, ProjectFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
URL = "/review/demo-test/"
# Data queries per request, the same whatever the project's size. The page: user 1, project 1,
# next_review 7 (may_review, live lease, the queue's candidates, the lock, the re-check under
# it, expiring an old lease, the new lease), backlog 1, responses 1, majority 1, previous
# verdict 1, quality snapshot 1, judgments 1 = 15. The submit adds the lease 1, its locks 2,
# may_review 1 and the majority 1 of adjudicate, and its insert and lease update 2, less the
# project 1.
BUDGET = {"page": 15, "submit": 21}


@pytest.fixture
def split(project):
    return plant(
        project,
        ["a", "b", "tie"],
        flags={2: ["unsafe"]},
        external_id="split-1",
    )


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def _lease(client) -> ReviewLease:
    r = client.get(URL)
    assert r.status_code == 200
    return ReviewLease.objects.get(pk=re.search(r'data-lease="(\d+)"', r.content.decode())[1])


def test_a_lead_sees_the_item_with_every_judgment(lead_client, split):
    Judgment.objects.filter(comparison=split, choice="a").update(
        rationale="A is correct", strength="clearly", duration_ms=12_300
    )
    html = lead_client.get(URL).content.decode()
    assert "split-1" in html and "Question split-1?" in html
    assert html.count("<tr>") == 1 + 3  # header + one row per judgment
    assert "A is correct" in html and "12.3 s" in html and "clearly" in html
    assert "Unsafe content" in html
    assert "no majority" in html
    assert "Waiting for review: <strong>1</strong>" in html


def test_choices_are_shown_in_the_reviewers_display_order(lead_client, split):
    lease = _lease(lead_client)
    html = lead_client.get(URL).content.decode()
    rows = re.findall(
        r"<td data-label=\"Choice\" class=\"nowrap\"><strong>(.*?)</strong></td>", html
    )
    left = "Response 1" if lease.display_order[0] == "a" else "Response 2"
    right = "Response 2" if left == "Response 1" else "Response 1"
    assert rows == [left, right, "Tie"]


def test_model_names_stay_hidden_until_revealed(lead_client, split):
    html = lead_client.get(URL).content.decode()
    assert "model-a" not in html and "model-b" not in html
    revealed = lead_client.get(URL + "?reveal=1", **HTMX).content.decode()
    assert "model-a" in revealed and "model-b" in revealed


def test_llm_text_is_sanitized(lead_client, split):
    Response.objects.filter(comparison=split, position=0).update(
        content="<script>alert(1)</script> **bold**"
    )
    html = lead_client.get(URL).content.decode()
    assert "<script>alert(1)" not in html
    assert "<strong>bold</strong>" in html


def test_a_verdict_by_side_is_stored_canonically_and_the_next_item_follows(
    lead_client, lead, split, project
):
    second = plant(project, ["a", "b", "both_bad"], external_id="split-2")
    lease = _lease(lead_client)
    r = lead_client.post(
        f"/review/demo-test/{lease.pk}/submit", {"verdict": "1", "note": "clearer"}, **HTMX
    )
    assert r.status_code == 200
    adj = Adjudication.objects.get()
    assert (adj.comparison, adj.choice, adj.note, adj.reviewer) == (
        lease.comparison,
        lease.display_order[0],
        "clearer",
        lead,
    )
    html = r.content.decode()
    assert "Verdict saved." in html and "<html" not in html
    assert "split-2" in html or "split-1" in html
    assert ReviewLease.objects.get(reviewer=lead, status="active").comparison in (split, second)


def test_confirm_majority_and_exclude(lead_client, project):
    plant(project, "bba", external_id="majority-b")
    project.review_min_agreement = 0.9
    Project.objects.filter(pk=project.pk).update(review_min_agreement=0.9)
    lease = _lease(lead_client)
    lead_client.post(f"/review/demo-test/{lease.pk}/submit", {"verdict": "confirm"}, **HTMX)
    assert Adjudication.objects.get().choice == "b"

    plant(project, ["a", "b", "tie"], external_id="bad-item")
    lease = _lease(lead_client)
    lead_client.post(f"/review/demo-test/{lease.pk}/submit", {"verdict": "exclude"}, **HTMX)
    assert Adjudication.objects.order_by("-id").first().choice == "exclude"


def test_a_double_submit_records_one_verdict(lead_client, split):
    lease = _lease(lead_client)
    url = f"/review/demo-test/{lease.pk}/submit"
    lead_client.post(url, {"verdict": "tie"}, **HTMX)
    lead_client.post(url, {"verdict": "2"}, **HTMX)
    assert list(Adjudication.objects.values_list("choice", flat=True)) == ["tie"]


def test_a_missing_or_bad_verdict_keeps_the_item_and_the_note(lead_client, split):
    lease = _lease(lead_client)
    url = f"/review/demo-test/{lease.pk}/submit"
    r = lead_client.post(url, {"note": "thinking"}, **HTMX)
    assert r.status_code == 422
    assert "Choose a verdict" in r.content.decode() and "thinking" in r.content.decode()
    r = lead_client.post(url, {"verdict": "confirm"}, **HTMX)  # a split has no majority
    assert r.status_code == 422 and "no majority to confirm" in r.content.decode()
    r = lead_client.post(url, {"verdict": "nonsense"})
    assert r.status_code == 422 and "<html" in r.content.decode()
    assert not Adjudication.objects.exists()


def test_without_htmx_a_verdict_redirects_to_the_page(lead_client, split):
    lease = _lease(lead_client)
    r = lead_client.post(f"/review/demo-test/{lease.pk}/submit", {"verdict": "2"})
    assert r.status_code == 302 and r["Location"] == URL
    assert Adjudication.objects.count() == 1


def test_skip_hands_the_item_back(lead_client, split):
    lease = _lease(lead_client)
    r = lead_client.post(f"/review/demo-test/{lease.pk}/skip", **HTMX)
    assert "Nothing to review" in r.content.decode()
    assert not Adjudication.objects.exists()


def test_it_requires_a_csrf_token(lead, split):
    c = Client(enforce_csrf_checks=True)
    c.force_login(lead)
    lease = _lease(c)
    assert (
        c.post(f"/review/demo-test/{lease.pk}/submit", {"verdict": "1"}, **HTMX).status_code == 403
    )
    assert not Adjudication.objects.exists()


# --- who may review ----------------------------------------------------------------------


def test_a_rater_of_the_project_gets_404(alice_client, split):
    assert alice_client.get(URL).status_code == 404


def test_a_lead_of_another_project_gets_404(client, split):
    other = LeadFactory(email="other-lead@example.com")
    ProjectFactory(slug="theirs").leads.add(other)
    client.force_login(other)
    assert client.get(URL).status_code == 404


def test_anonymous_is_sent_to_login(client, split):
    r = client.get(URL)
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_a_member_given_the_reviewer_role_may_review(client, alice, project, split):
    project.reviewers.add(alice)
    client.force_login(alice)
    assert client.get(URL).status_code == 200


def test_nobody_can_submit_on_another_reviewers_lease(client, alice, project, lead, split):
    project.reviewers.add(alice)
    lease = review.next_review(lead, project)
    client.force_login(alice)
    url = f"/review/demo-test/{lease.pk}/submit"
    assert client.post(url, {"verdict": "1"}, **HTMX).status_code == 404
    assert client.post(f"/review/demo-test/{lease.pk}/skip", **HTMX).status_code == 404
    assert not Adjudication.objects.exists()


# --- query counts ------------------------------------------------------------------------


def _grow(project, n: int):
    raters = [UserFactory(email=f"grow{i}@example.com") for i in range(3)]
    for i in range(n):
        plant(project, ["a", "b", "tie"] if i % 2 else "aab", raters=raters)


@pytest.mark.parametrize("action", ["page", "submit"])
def test_query_counts_do_not_grow_with_the_project(
    transactional_db, lead_client, project, action, django_assert_max_data_queries
):
    Project.objects.filter(pk=project.pk).update(review_min_agreement=0.9)  # all of them
    _grow(project, 3)
    lead = project.leads.get()

    def measure():
        # Each measured request leases a fresh item (the page) or saves one and leases the next.
        ReviewLease.objects.all().delete()
        lease = review.next_review(lead, project) if action == "submit" else None
        with django_assert_max_data_queries(BUDGET[action]) as queries:
            if lease is None:
                r = lead_client.get(URL)
            else:
                r = lead_client.post(
                    f"/review/demo-test/{lease.pk}/submit", {"verdict": "1"}, **HTMX
                )
        assert r.status_code == 200 and 'data-lease="' in r.content.decode()
        return len(queries)

    few = measure()
    _grow(project, 30)
    assert measure() == few
