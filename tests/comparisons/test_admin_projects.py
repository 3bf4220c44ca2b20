"""The lead admin's project pages: access, scoping to the projects a lead leads, progress,
status actions, creating a project and editing its overlap."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

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
        "overlap_policy": project.overlap_policy,
        "task_type": project.task_type,
        "overlap": project.overlap,
        "min_overlap": project.min_overlap,
        "max_overlap": project.max_overlap,
        "lease_seconds": project.lease_seconds,
        "gold_rate": project.gold_rate,
        "criteria": [],
        "rationale": project.rationale,
        "rationale_min_chars": project.rationale_min_chars,
        "break_reminder_minutes": project.break_reminder_minutes,
        "min_seconds_per_judgment": project.min_seconds_per_judgment,
        "gold_accuracy_threshold": project.gold_accuracy_threshold,
        "position_bias_threshold": project.position_bias_threshold,
    }
    data.update(overrides)
    # The criteria rows as the form posts them: criteria-<i>-name and criteria-<i>-help.
    for i, row in enumerate(data.pop("criteria")):
        name, help_text = (row, "") if isinstance(row, str) else row
        data[f"criteria-{i}-name"], data[f"criteria-{i}-help"] = name, help_text
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


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        (["helpful", "Helpful"], "is listed twice"),
        (["x" * 41], "longer than 40 characters"),
        ([f"c{i}" for i in range(11)], "At most 10 criteria"),
        ([("", "Is it kind?")], "has no criterion name"),
        ([("kind", "x" * 301)], "to 300 characters"),
    ],
)
def test_a_scheme_that_would_break_the_rating_page_is_refused(
    client, lead, project, criteria, message
):
    client.force_login(lead)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", _form_data(project, criteria=criteria))
    assert r.status_code == 200  # the form again, with the error, and nothing saved
    assert message in r.content.decode().replace("&quot;", '"')
    assert b"errorlist" in r.content
    project.refresh_from_db()
    assert (project.criteria, project.criteria_help) == ([], {})


def test_criteria_are_edited_as_rows_with_help_text(client, lead, project):
    client.force_login(lead)
    change = f"{CHANGELIST}{project.pk}/change/"
    rows = [("honesty", "Facts and code are right."), ("", ""), ("helpfulness", ""), " "]
    r = client.post(change, _form_data(project, criteria=rows))
    assert r.status_code == 302
    project.refresh_from_db()
    assert project.criteria == ["honesty", "helpfulness"]  # in order, empty rows dropped
    assert project.criteria_help == {"honesty": "Facts and code are right."}
    html = client.get(change).content.decode()
    assert 'name="criteria-0-name" value="honesty"' in html
    assert 'name="criteria-0-help" value="Facts and code are right."' in html
    assert 'name="criteria-1-name" value="helpfulness"' in html
    assert 'name="criteria-4-name" value=""' in html  # three empty rows to add more
    assert 'name="criteria-5-name"' not in html
    # Emptying a name removes its criterion and its help text.
    r = client.post(change, _form_data(project, criteria=[("", ""), "helpfulness"]))
    assert r.status_code == 302
    project.refresh_from_db()
    assert (project.criteria, project.criteria_help) == (["helpfulness"], {})


def test_a_good_scheme_saves_and_the_rating_page_shows_it(client, lead, alice, project):
    ComparisonFactory(project=project)
    client.force_login(lead)
    data = _form_data(
        project, criteria=[("helpfulness", "Does it answer the question?"), "honesty"]
    )
    r = client.post(f"{CHANGELIST}{project.pk}/change/", data)
    assert r.status_code == 302
    client.force_login(alice)
    page = client.get(f"/rate/{project.slug}/")
    assert page.status_code == 200
    assert b"Helpfulness" in page.content and b"Honesty" in page.content
    assert b"Does it answer the question?" in page.content  # the help, under its criterion


def test_switching_to_adaptive_in_the_admin_recomputes_the_slots(client, lead, project):
    from comparisons import queue

    alice, bob = project.raters.order_by("email")[:2]
    agreed = ComparisonFactory(project=project)
    untouched = ComparisonFactory(project=project)
    for rater in (alice, bob):
        queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
    client.force_login(lead)
    data = _form_data(project, overlap_policy="adaptive", min_overlap=2, max_overlap=4)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", data)
    assert r.status_code == 302
    project.refresh_from_db()
    assert (project.overlap_policy, project.min_overlap, project.max_overlap) == ("adaptive", 2, 4)
    agreed.refresh_from_db()
    untouched.refresh_from_db()
    # 2-0 with 2 left up to 4 is not decided: one more slot; untouched: min_overlap.
    assert (agreed.open_slots, agreed.completed_at) == (1, None)
    assert untouched.open_slots == 2
    changelist = client.get(CHANGELIST).content.decode()
    assert "adaptive 2 to 4" in changelist


def test_min_above_max_is_refused_in_the_admin_and_changes_nothing(client, lead, project):
    c = ComparisonFactory(project=project)
    client.force_login(lead)
    data = _form_data(project, overlap_policy="adaptive", min_overlap=4, max_overlap=3)
    r = client.post(f"{CHANGELIST}{project.pk}/change/", data)
    assert r.status_code == 200
    assert "1 ≤ min ≤ max" in r.content.decode()
    project.refresh_from_db()
    c.refresh_from_db()
    assert (project.overlap_policy, c.open_slots) == ("fixed", 3)


# -- the instructions' preview ----------------------------------------------------------------

PREVIEW = reverse("admin:comparisons_project_preview_instructions")


def test_the_change_page_previews_the_saved_instructions_as_raters_see_them(client, lead, project):
    project.instructions = "Pick the **better** reply.\n\n<script>alert(1)</script>"
    project.save()
    client.force_login(lead)
    html = client.get(f"{CHANGELIST}{project.pk}/change/").content.decode()
    preview = html[html.index('id="rh-preview-body"') :]
    assert "<strong>better</strong>" in preview
    assert "<script>alert(1)</script>" not in html  # shown as text, never run
    assert f'hx-post="{PREVIEW}"' in html
    assert "django_htmx/htmx-2.min.js" in html


def test_the_preview_renders_the_text_being_edited_sanitized(client, lead):
    client.force_login(lead)
    text = "# Rules\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<img src=x onerror=alert(1)>"
    r = client.post(PREVIEW, {"instructions": text}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<div class="md rh-preview">' in html and "<h1>Rules</h1>" in html
    assert "<table>" in html
    assert "<img" not in html and "&lt;img" in html
    assert "<html" not in html  # the panel alone


def test_the_preview_is_a_post_for_staff_with_a_csrf_token(client, lead, alice, project):
    client.force_login(lead)
    assert client.get(PREVIEW, HTTP_HX_REQUEST="true").status_code == 405
    assert client.post(PREVIEW, {"instructions": "x"}).status_code == 302  # not a page
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(lead)
    assert strict.post(PREVIEW, {"instructions": "x"}, HTTP_HX_REQUEST="true").status_code == 403
    client.force_login(alice)  # a rater: the admin's login page, no preview
    r = client.post(PREVIEW, {"instructions": "**x**"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 302 and b"<strong>" not in r.content


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
