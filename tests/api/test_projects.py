"""GET/POST /api/v1/projects/ and GET/PATCH /api/v1/projects/<slug>/."""

from __future__ import annotations

import pytest

from comparisons.models import Comparison, Project
from tests.factories import ComparisonFactory, ProjectFactory


def _progress(client, slug="demo-test"):
    return client.get(f"/api/v1/projects/{slug}/").json()["progress"]


def test_progress_counts_regular_comparisons_complete_judgments_and_target(as_lead, project):
    done = ComparisonFactory(project=project, judged_count=3, open_slots=0)
    ComparisonFactory(project=project, judged_count=1, open_slots=2)
    ComparisonFactory(project=project, gold_choice="a")  # gold: not part of the work
    assert done.judged_count == 3

    assert _progress(as_lead) == {"comparisons": 2, "complete": 1, "judgments": 4, "target": 6}


def test_complete_follows_the_querysets_definition(as_lead, project):
    ComparisonFactory(project=project, judged_count=2, open_slots=1)
    ComparisonFactory(project=project, judged_count=3, open_slots=0)
    expected = Comparison.objects.filter(project=project).regular().complete().count()

    assert _progress(as_lead)["complete"] == expected == 1


def test_the_list_is_the_callers_projects_paginated(as_lead, lead, project, settings):
    settings.RATERHUB_API_PAGE_SIZE = 2
    for n in range(4):
        ProjectFactory(slug=f"mine-{n}").leads.add(lead)
    ProjectFactory(slug="not-mine")

    first = as_lead.get("/api/v1/projects/").json()
    second = as_lead.get(first["next"]).json()
    third = as_lead.get(second["next"]).json()

    slugs = [p["slug"] for page in (first, second, third) for p in page["results"]]
    assert sorted(slugs) == ["demo-test", "mine-0", "mine-1", "mine-2", "mine-3"]
    assert third["next"] is None


def test_a_superuser_sees_every_project(project, other_project, db):
    from tests.api.conftest import token_client
    from tests.factories import UserFactory

    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    listed = token_client(root).get("/api/v1/projects/").json()["results"]
    assert {p["slug"] for p in listed} == {"demo-test", "other-project"}


def test_the_list_query_count_is_constant(as_lead, lead, django_assert_max_num_queries):
    as_lead.get("/api/v1/projects/")  # warm: the token's last_used_at write
    for n in range(5):
        p = ProjectFactory(slug=f"bulk-{n}")
        p.leads.add(lead)
        ComparisonFactory(project=p)
    with django_assert_max_num_queries(5):
        response = as_lead.get("/api/v1/projects/")
    assert len(response.json()["results"]) == 6


def test_creating_a_project_makes_the_caller_its_lead(as_lead, lead):
    response = as_lead.post(
        "/api/v1/projects/",
        {"slug": "new-one", "name": "New one", "overlap": 2, "criteria": ["honesty"]},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    project = Project.objects.get(slug="new-one")
    assert list(project.leads.all()) == [lead]
    assert project.created_by == lead
    assert response.json()["progress"] == {
        "comparisons": 0,
        "complete": 0,
        "judgments": 0,
        "target": 0,
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"slug": "demo-test", "name": "Taken"}, "slug"),
        ({"slug": "x y", "name": "Bad slug"}, "slug"),
        ({"slug": "ok", "name": "N", "overlap": 0}, "overlap"),
        ({"slug": "ok", "name": "N", "gold_rate": 2}, "gold_rate"),
        ({"slug": "ok", "name": "N", "lease_seconds": 5}, "lease_seconds"),
        ({"slug": "ok", "name": "N", "criteria": "honesty"}, "criteria"),
        ({"slug": "ok", "name": "N", "criteria": ["a", "A"]}, "criteria"),
        ({"slug": "ok", "name": "N", "status": "gone"}, "status"),
    ],
)
def test_a_bad_project_is_refused_with_the_field_named(as_lead, body, field):
    before = Project.objects.count()
    response = as_lead.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 400
    data = response.json()
    assert field in data["fields"] and field in data["detail"]
    assert Project.objects.count() == before


def test_patch_changes_status_and_settings(as_lead, project):
    response = as_lead.patch(
        "/api/v1/projects/demo-test/",
        {"status": "paused", "instructions": "Be careful."},
        content_type="application/json",
    )
    assert response.status_code == 200
    project.refresh_from_db()
    assert (project.status, project.instructions) == ("paused", "Be careful.")


def test_patching_the_overlap_moves_the_open_slots(as_lead, project):
    c = ComparisonFactory(project=project, judged_count=1, open_slots=2)
    response = as_lead.patch(
        "/api/v1/projects/demo-test/", {"overlap": 5}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["progress"]["target"] == 5
    c.refresh_from_db()
    assert c.open_slots == 4  # the queue's change_overlap ran, not a bare save


def test_the_slug_cannot_be_changed(as_lead, project):
    as_lead.patch("/api/v1/projects/demo-test/", {"slug": "moved"}, content_type="application/json")
    assert Project.objects.filter(slug="demo-test").exists()


def test_patching_to_adaptive_recomputes_every_comparison(as_lead, project, alice, bob):
    from comparisons import queue

    agreed = ComparisonFactory(project=project)
    for rater in (alice, bob):
        queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
    untouched = ComparisonFactory(project=project)
    response = as_lead.patch(
        "/api/v1/projects/demo-test/",
        {"overlap_policy": "adaptive", "min_overlap": 2, "max_overlap": 3},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["overlap_policy"], body["min_overlap"], body["max_overlap"]) == ("adaptive", 2, 3)
    agreed.refresh_from_db()
    untouched.refresh_from_db()
    # 2-0 with one judgment left up to 3 cannot be overturned: complete, no slot; untouched: 2.
    assert (agreed.open_slots, agreed.completed_at is not None) == (0, True)
    assert untouched.open_slots == 2
    assert body["progress"]["complete"] == 1


def test_min_above_max_is_refused_and_changes_nothing(as_lead, project):
    c = ComparisonFactory(project=project)
    response = as_lead.patch(
        "/api/v1/projects/demo-test/",
        {"overlap_policy": "adaptive", "min_overlap": 4, "max_overlap": 3},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "max_overlap" in response.json()["fields"]
    project.refresh_from_db()
    c.refresh_from_db()
    assert (project.overlap_policy, project.min_overlap, c.open_slots) == ("fixed", 2, 3)


def test_reviewers_are_set_from_the_projects_raters_only(as_lead, project, alice, other_lead):
    url = "/api/v1/projects/demo-test/"
    response = as_lead.patch(url, {"reviewers": [alice.email]}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["reviewers"] == [alice.email]
    assert list(project.reviewers.all()) == [alice]
    # Someone who is not a rater here (another project's lead), or nobody at all: refused alike.
    for email in (other_lead.email, "nobody@example.com"):
        response = as_lead.patch(url, {"reviewers": [email]}, content_type="application/json")
        assert response.status_code == 400
        assert "Not a rater of this project" in str(response.json()["fields"]["reviewers"])
    assert list(project.reviewers.all()) == [alice]


def test_a_ranking_project_is_created_through_the_api_and_stays_fixed(as_lead):
    body = {"slug": "ranked", "name": "Ranked", "task_type": "ranking"}
    response = as_lead.post("/api/v1/projects/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["task_type"] == "ranking"
    response = as_lead.patch(
        "/api/v1/projects/ranked/", {"overlap_policy": "adaptive"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "fixed overlap policy" in str(response.json()["fields"]["overlap_policy"])
    assert Project.objects.get(slug="ranked").overlap_policy == "fixed"
