"""The lead admin's project pages: access, scoping to the projects a lead leads, progress,
status actions, creating a project and editing its overlap."""

from __future__ import annotations

import pytest

from comparisons.models import Comparison, Project, ProjectStatus
from tests.factories import ComparisonFactory, LeadFactory, ProjectFactory, UserFactory

CHANGELIST = "/admin/comparisons/project/"


@pytest.fixture
def other_project(db):
    """A project led by someone else: the `lead` persona must never see it."""
    other_lead = LeadFactory(email="other-lead@example.com")
    p = ProjectFactory(slug="secret-project", name="Secret project")
    p.leads.add(other_lead)
    return p


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


def _form_data(project: Project, **overrides) -> dict:
    data = {
        "name": project.name,
        "slug": project.slug,
        "description": project.description,
        "instructions": project.instructions,
        "status": project.status,
        "task_type": project.task_type,
        "overlap": project.overlap,
        "lease_seconds": project.lease_seconds,
        "gold_rate": project.gold_rate,
        "criteria": "[]",
        "rationale": project.rationale,
        "rationale_min_chars": project.rationale_min_chars,
        "min_seconds_per_judgment": project.min_seconds_per_judgment,
        "gold_accuracy_threshold": project.gold_accuracy_threshold,
        "position_bias_threshold": project.position_bias_threshold,
    }
    data.update(overrides)
    for people in ("leads", "raters"):
        if people not in data:
            data[people] = [u.pk for u in getattr(project, people).all()]
    return {k: v for k, v in data.items() if v is not None}


def test_it_shows_the_changelist_to_a_lead(client, lead, project):
    client.force_login(lead)
    r = client.get(CHANGELIST)
    assert r.status_code == 200
    assert b"Demo test" in r.content


def test_it_shows_every_project_to_a_superuser(client, superuser, project, other_project):
    client.force_login(superuser)
    r = client.get(CHANGELIST)
    assert r.status_code == 200
    assert b"Demo test" in r.content and b"Secret project" in r.content


def test_it_redirects_anonymous_users_to_the_admin_login(client, project):
    r = client.get(CHANGELIST)
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/")


def test_it_gives_raters_no_admin(client, alice, project):
    client.force_login(alice)
    for url in ("/admin/", CHANGELIST, f"{CHANGELIST}{project.pk}/change/"):
        r = client.get(url)
        assert r.status_code == 302, url
        assert r["Location"].startswith("/admin/login/")


def test_a_lead_does_not_see_other_leads_projects(client, lead, project, other_project):
    client.force_login(lead)
    r = client.get(CHANGELIST)
    assert b"Secret project" not in r.content
    r = client.get(f"{CHANGELIST}{other_project.pk}/change/")
    assert r.status_code == 302  # the admin's "does not exist" redirect, nothing shown
    r = client.get(f"{CHANGELIST}{other_project.pk}/import/")
    assert r.status_code == 302


def test_the_change_page_links_to_the_import_page(client, lead, project):
    client.force_login(lead)
    r = client.get(f"{CHANGELIST}{project.pk}/change/")
    assert r.status_code == 200
    assert f"{CHANGELIST}{project.pk}/import/".encode() in r.content


def test_progress_counts_fully_judged_regular_comparisons_and_judgments(client, lead, project):
    ComparisonFactory(project=project, judged_count=3, open_slots=0)
    ComparisonFactory(project=project, judged_count=1, open_slots=2)
    ComparisonFactory(project=project)
    ComparisonFactory(project=project)
    ComparisonFactory(project=project, gold_choice="a", judged_count=3)  # gold: not progress
    client.force_login(lead)
    r = client.get(CHANGELIST)
    html = r.content.decode()
    assert "1 / 4 (25%)" in html  # comparisons fully judged / regular comparisons
    assert "4 / 12 (33%)" in html  # counted judgments / comparisons x overlap


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("pause_projects", ProjectStatus.ACTIVE, ProjectStatus.PAUSED),
        ("resume_projects", ProjectStatus.PAUSED, ProjectStatus.ACTIVE),
        ("archive_projects", ProjectStatus.ACTIVE, ProjectStatus.ARCHIVED),
    ],
)
def test_status_actions(client, lead, project, action, start, end):
    Project.objects.filter(pk=project.pk).update(status=start)
    client.force_login(lead)
    r = client.post(CHANGELIST, {"action": action, "_selected_action": [project.pk]})
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.status == end


def test_status_actions_ignore_projects_a_lead_does_not_lead(client, lead, project, other_project):
    client.force_login(lead)
    client.post(
        CHANGELIST,
        {"action": "pause_projects", "_selected_action": [project.pk, other_project.pk]},
    )
    project.refresh_from_db()
    other_project.refresh_from_db()
    assert project.status == ProjectStatus.PAUSED
    assert other_project.status == ProjectStatus.ACTIVE


def test_a_lead_who_creates_a_project_leads_it(client, lead):
    client.force_login(lead)
    new = Project(slug="fresh", name="Fresh project")
    r = client.post(f"{CHANGELIST}add/", _form_data(new, leads=[], raters=[]))
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    created = Project.objects.get(slug="fresh")
    assert list(created.leads.all()) == [lead]
    assert created.created_by == lead


def test_editing_overlap_moves_open_slots(client, lead, project):
    untouched = ComparisonFactory(project=project)  # 3 open slots
    half_done = ComparisonFactory(project=project, judged_count=2, open_slots=1)
    gold = ComparisonFactory(project=project, gold_choice="b", open_slots=0)
    client.force_login(lead)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, overlap=5))
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.overlap == 5
    slots = dict(Comparison.objects.values_list("pk", "open_slots"))
    assert slots[untouched.pk] == 5
    assert slots[half_done.pk] == 3
    assert slots[gold.pk] == 0


def test_editing_other_fields_keeps_overlap_and_slots(client, lead, project):
    c = ComparisonFactory(project=project)
    client.force_login(lead)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, name="Renamed"))
    assert r.status_code == 302
    project.refresh_from_db()
    c.refresh_from_db()
    assert (project.name, project.overlap, c.open_slots) == ("Renamed", 3, 3)


def test_a_lead_adds_raters_on_the_change_page(client, lead, project):
    # A rater of another project of theirs (people from elsewhere join through an invite).
    dave = UserFactory(email="dave@example.com")
    second = ProjectFactory(slug="second")
    second.leads.add(lead)
    second.raters.add(dave)
    client.force_login(lead)
    raters = [u.pk for u in project.raters.all()] + [dave.pk]
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, raters=raters))
    assert r.status_code == 302
    assert project.raters.filter(pk=dave.pk).exists()


@pytest.mark.parametrize("criteria", ["5", '{"helpfulness": 1}', '["helpful", ""]', '["a", "A"]'])
def test_a_scheme_that_would_break_the_rating_page_is_refused(client, lead, project, criteria):
    client.force_login(lead)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, criteria=criteria))
    assert r.status_code == 200  # the form again, with the error
    assert b"errorlist" in r.content
    project.refresh_from_db()
    assert project.criteria == []


def test_a_good_scheme_saves_and_the_rating_page_shows_it(client, lead, alice, project):
    ComparisonFactory(project=project)
    client.force_login(lead)
    data = _form_data(project, criteria='["helpfulness", "honesty"]')
    r = client.post(f"{CHANGELIST}{project.pk}/change/", data)
    assert r.status_code == 302
    client.force_login(alice)
    page = client.get(f"/rate/{project.slug}/")
    assert page.status_code == 200
    assert b"Helpfulness" in page.content and b"Honesty" in page.content


def test_a_lead_creates_a_ranking_project(client, lead):
    client.force_login(lead)
    new = Project(slug="ranked", name="Ranked", task_type="ranking")
    r = client.post(f"{CHANGELIST}add/", _form_data(new, leads=[], raters=[]))
    assert r.status_code == 302
    assert Project.objects.get(slug="ranked").is_ranking


def test_the_task_type_cannot_change_once_comparisons_exist(client, lead, project):
    client.force_login(lead)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, task_type="ranking"))
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.is_ranking  # no comparisons yet: free to change
    ComparisonFactory(project=project)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, task_type="pairwise"))
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.is_ranking  # read-only now: the posted value is ignored
    page = client.get(f"{CHANGELIST}{project.pk}/change/").content.decode()
    assert 'name="task_type"' not in page
