"""The admin's side of review: sending comparisons by hand, reviewers and review settings."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import LEADS_GROUP
from comparisons import review
from comparisons.models import Adjudication, Comparison, Project
from tests.comparisons._review_helpers import plant
from tests.factories import ComparisonFactory, ProjectFactory


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def test_a_lead_sends_comparisons_to_review_by_hand(lead_client, project):
    unfinished = ComparisonFactory(project=project, external_id="look-at-me")
    ComparisonFactory(project=project, external_id="leave-me")
    r = lead_client.post(
        "/admin/comparisons/comparison/",
        {"action": "send_comparisons_to_review", "_selected_action": [unfinished.pk]},
    )
    assert r.status_code == 302
    assert list(review.review_queue(project).values_list("external_id", flat=True)) == [
        "look-at-me"
    ]


def test_the_action_cannot_reach_another_projects_comparisons(lead_client, project):
    theirs = ComparisonFactory(project=ProjectFactory(slug="theirs"))
    lead_client.post(
        "/admin/comparisons/comparison/",
        {"action": "send_comparisons_to_review", "_selected_action": [theirs.pk]},
    )
    assert Comparison.objects.get(pk=theirs.pk).review_requested_at is None


def test_a_lead_gives_the_reviewer_role_and_sets_the_rules(lead_client, project, alice):
    page = lead_client.get(f"/admin/comparisons/project/{project.pk}/change/").content.decode()
    assert 'name="reviewers"' in page and 'name="review_min_agreement"' in page
    assert 'name="gold_feedback"' in page


def test_leads_see_their_projects_verdicts(lead_client, project, lead):
    c = plant(project, ["a", "b", "tie"], external_id="judged")
    review.adjudicate(c, reviewer=lead, choice="exclude", note="broken prompt")
    assert (
        Group.objects.get(name=LEADS_GROUP)
        .permissions.filter(codename="view_adjudication")
        .exists()
    )
    page = lead_client.get("/admin/comparisons/adjudication/").content.decode()
    assert "judged" in page and "exclude" in page
    assert Adjudication.objects.count() == 1
    assert Project.objects.get(pk=project.pk).reviewers.count() == 0
