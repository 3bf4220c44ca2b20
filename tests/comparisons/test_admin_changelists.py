"""Comparison, judgment and assignment admin pages: filters, search, scoping, read-only
judgments, lease release, and changelists whose query count does not grow with the data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comparisons.models import AssignmentStatus, Comparison, Judgment, Project
from tests.factories import (
    AssignmentFactory,
    ComparisonFactory,
    JudgmentFactory,
    LeadFactory,
    ProjectFactory,
    UserFactory,
    bulk_comparisons,
)

COMPARISONS = "/admin/comparisons/comparison/"
JUDGMENTS = "/admin/comparisons/judgment/"
ASSIGNMENTS = "/admin/comparisons/assignment/"
PROJECTS = "/admin/comparisons/project/"

# Queries per changelist page for a lead: session, user, permissions, the filters' choices,
# counts and the page itself. Whatever it is, it must be the same for 10 rows and 1,000.
MAX_QUERIES = 10


@pytest.fixture
def other_project(db):
    p = ProjectFactory(slug="secret-project", name="Secret project")
    p.leads.add(LeadFactory(email="other-lead@example.com"))
    return p


@pytest.mark.parametrize(
    "url",
    [
        PROJECTS,
        COMPARISONS,
        f"{COMPARISONS}?gold=no&fully_judged=no&priority=normal",
        JUDGMENTS,
        f"{JUDGMENTS}?is_late__exact=0",
        ASSIGNMENTS,
        f"{ASSIGNMENTS}?lease=live",
    ],
)
def test_changelists_run_a_constant_number_of_queries(
    client, django_assert_max_num_queries, lead, project, alice, url
):
    def projects_led(n, start):
        created = Project.objects.bulk_create(
            Project(slug=f"bulk-project-{start + i}", name=f"Bulk {start + i}") for i in range(n)
        )
        created = Project.objects.filter(slug__startswith="bulk-project-")
        Project.leads.through.objects.bulk_create(
            [Project.leads.through(project_id=p.pk, user_id=lead.pk) for p in created],
            ignore_conflicts=True,
        )

    def judged_by_alice(n):
        bulk_comparisons(
            project, n, judged_by=[alice], gold_choice=lambda i: "a" if i % 10 == 0 else None
        )

    judged_by_alice(10)
    projects_led(10, 0)
    client.force_login(lead)
    with django_assert_max_num_queries(MAX_QUERIES) as small:
        assert client.get(url).status_code == 200

    judged_by_alice(990)
    projects_led(990, 10)
    with django_assert_max_num_queries(MAX_QUERIES) as large:
        assert client.get(url).status_code == 200
    assert len(large) == len(small)


# --- comparisons ---------------------------------------------------------------------------


def test_comparison_pages_load_for_a_lead(client, lead, project):
    c = ComparisonFactory(project=project)
    client.force_login(lead)
    assert client.get(COMPARISONS).status_code == 200
    r = client.get(f"{COMPARISONS}{c.pk}/change/")
    assert r.status_code == 200
    assert f"Answer A to {c.external_id}".encode() in r.content  # responses inline
    assert client.get(f"{COMPARISONS}add/").status_code == 200


def test_a_lead_sees_only_comparisons_of_projects_they_lead(client, lead, project, other_project):
    mine = ComparisonFactory(project=project, external_id="mine-1")
    theirs = ComparisonFactory(project=other_project, external_id="theirs-1")
    client.force_login(lead)
    r = client.get(COMPARISONS)
    assert b"mine-1" in r.content
    assert b"theirs-1" not in r.content
    assert b"Secret project" not in r.content  # not even in the project filter
    assert client.get(f"{COMPARISONS}{theirs.pk}/change/").status_code == 302
    assert client.get(f"{COMPARISONS}{mine.pk}/change/").status_code == 200


def _listed(client, url: str) -> set[str]:
    r = client.get(url)
    assert r.status_code == 200
    return {str(c) for c in r.context["cl"].result_list}


def test_comparison_filters(client, lead, project):
    ComparisonFactory(project=project, external_id="regular-open")
    ComparisonFactory(project=project, external_id="regular-done", judged_count=3, open_slots=0)
    ComparisonFactory(project=project, external_id="gold-1", gold_choice="tie")
    ComparisonFactory(project=project, external_id="urgent", priority=5)
    client.force_login(lead)
    assert _listed(client, f"{COMPARISONS}?gold=yes") == {"gold-1"}
    assert "gold-1" not in _listed(client, f"{COMPARISONS}?gold=no")
    assert _listed(client, f"{COMPARISONS}?fully_judged=yes") == {"regular-done"}
    assert "regular-done" not in _listed(client, f"{COMPARISONS}?fully_judged=no")
    assert _listed(client, f"{COMPARISONS}?priority=high") == {"urgent"}
    assert _listed(client, f"{COMPARISONS}?project__id__exact={project.pk}") == {
        "regular-open",
        "regular-done",
        "gold-1",
        "urgent",
    }


def test_comparison_search_by_external_id_and_prompt_text(client, lead, project):
    ComparisonFactory(
        project=project,
        external_id="tcp-1",
        prompt=[{"role": "user", "content": "Explain TCP slow start"}],
    )
    ComparisonFactory(
        project=project,
        external_id="haiku-1",
        prompt=[{"role": "user", "content": "Write a haiku"}],
    )
    client.force_login(lead)
    assert _listed(client, f"{COMPARISONS}?q=haiku-1") == {"haiku-1"}
    assert _listed(client, f"{COMPARISONS}?q=slow+start") == {"tcp-1"}


def test_adding_a_regular_comparison_in_the_admin_opens_its_slots(client, lead, project):
    client.force_login(lead)
    data = {
        "project": project.pk,
        "external_id": "hand-made",
        "prompt": '[{"role": "user", "content": "Hi"}]',
        "metadata": "{}",
        "priority": 0,
        "gold_choice": "",
        "responses-TOTAL_FORMS": 2,
        "responses-INITIAL_FORMS": 0,
        "responses-MIN_NUM_FORMS": 2,
        "responses-MAX_NUM_FORMS": 1000,
        "responses-0-position": 0,
        "responses-0-model_name": "m-a",
        "responses-0-content": "Hello!",
        "responses-1-position": 1,
        "responses-1-model_name": "m-b",
        "responses-1-content": "Hi there.",
    }
    r = client.post(f"{COMPARISONS}add/", data)
    assert r.status_code == 302, r.context and r.context["adminform"].form.errors
    c = Comparison.objects.get(external_id="hand-made")
    assert c.open_slots == project.overlap
    assert c.responses.count() == 2


def test_a_lead_cannot_add_a_comparison_to_another_leads_project(client, lead, other_project):
    client.force_login(lead)
    r = client.post(
        f"{COMPARISONS}add/",
        {
            "project": other_project.pk,
            "external_id": "sneaky",
            "prompt": "[]",
            "metadata": "{}",
            "priority": 0,
            "responses-TOTAL_FORMS": 0,
            "responses-INITIAL_FORMS": 0,
        },
    )
    assert r.status_code == 200  # the form comes back with an error
    assert not Comparison.objects.filter(external_id="sneaky").exists()


# --- judgments -----------------------------------------------------------------------------


def test_judgments_are_read_only(client, lead, project, alice):
    j = JudgmentFactory(assignment__comparison__project=project, assignment__rater=alice)
    client.force_login(lead)
    assert client.get(f"{JUDGMENTS}{j.pk}/change/").status_code == 200  # view only
    assert client.post(f"{JUDGMENTS}{j.pk}/change/", {"choice": "b"}).status_code == 403
    assert client.get(f"{JUDGMENTS}add/").status_code == 403
    assert client.post(f"{JUDGMENTS}{j.pk}/delete/", {"post": "yes"}).status_code == 403
    j.refresh_from_db()
    assert j.choice == "a"


def test_superusers_cannot_delete_judgments_either(client, project, alice):
    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    j = JudgmentFactory(assignment__comparison__project=project, assignment__rater=alice)
    client.force_login(root)
    assert client.get(JUDGMENTS).status_code == 200
    client.post(JUDGMENTS, {"action": "delete_selected", "_selected_action": [j.pk], "post": "yes"})
    assert client.post(f"{JUDGMENTS}{j.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Judgment.objects.filter(pk=j.pk).exists()


def test_judgment_filters_and_scoping(client, lead, project, other_project, alice, bob):
    a1 = JudgmentFactory(assignment__comparison__project=project, assignment__rater=alice)
    b1 = JudgmentFactory(
        assignment__comparison__project=project, assignment__rater=bob, choice="tie"
    )
    late = JudgmentFactory(
        assignment__comparison__project=project,
        assignment__rater=bob,
        is_late=True,
        counted=False,
    )
    hidden = JudgmentFactory(assignment__comparison__project=other_project, assignment__rater=alice)
    client.force_login(lead)

    def ids(url):
        r = client.get(url)
        assert r.status_code == 200
        return {j.pk for j in r.context["cl"].result_list}

    assert ids(JUDGMENTS) == {a1.pk, b1.pk, late.pk}
    assert hidden.pk not in ids(f"{JUDGMENTS}?rater={alice.pk}")
    assert ids(f"{JUDGMENTS}?rater={alice.pk}") == {a1.pk}
    assert ids(f"{JUDGMENTS}?choice__exact=tie") == {b1.pk}
    assert ids(f"{JUDGMENTS}?is_late__exact=1") == {late.pk}
    assert client.get(f"{JUDGMENTS}{hidden.pk}/change/").status_code == 302


# --- assignments ---------------------------------------------------------------------------


def test_assignments_show_active_leases_and_their_expiry(client, lead, project, alice, bob):
    live = AssignmentFactory(comparison__project=project, rater=alice)
    overdue = AssignmentFactory(
        comparison__project=project,
        rater=bob,
        leased_at=timezone.now() - timedelta(hours=1),
        expires_at=timezone.now() - timedelta(minutes=50),
    )
    client.force_login(lead)
    r = client.get(f"{ASSIGNMENTS}?lease=live")
    assert [a.pk for a in r.context["cl"].result_list] == [live.pk]
    assert b"Lease left" in r.content
    r = client.get(f"{ASSIGNMENTS}?lease=overdue")
    assert [a.pk for a in r.context["cl"].result_list] == [overdue.pk]
    assert b"expired" in r.content


def test_release_active_leases_action(client, lead, project, alice, bob):
    c1 = ComparisonFactory(project=project, open_slots=2)
    c2 = ComparisonFactory(project=project, open_slots=2)
    mine = AssignmentFactory(comparison=c1, rater=alice)
    bobs = AssignmentFactory(comparison=c2, rater=bob)
    client.force_login(lead)
    r = client.post(ASSIGNMENTS, {"action": "release_active_leases", "_selected_action": [mine.pk]})
    assert r.status_code == 302
    mine.refresh_from_db()
    bobs.refresh_from_db()
    c1.refresh_from_db()
    assert mine.status != AssignmentStatus.ACTIVE
    assert c1.open_slots == 3  # the slot went back to the queue
    assert bobs.status == AssignmentStatus.ACTIVE  # other raters keep theirs


@pytest.mark.parametrize(
    ("action", "status", "comes_back"),
    [
        ("release_active_leases", AssignmentStatus.RELEASED, True),
        ("keep_raters_away", AssignmentStatus.KEPT_AWAY, False),
    ],
)
def test_a_release_gives_the_comparison_back_to_its_rater_unless_kept_away(
    client, lead, project, alice, action, status, comes_back
):
    from comparisons import queue

    c = ComparisonFactory(project=project)
    lease = queue.next_assignment(alice, project)
    client.force_login(lead)
    r = client.post(ASSIGNMENTS, {"action": action, "_selected_action": [lease.pk]}, follow=True)
    assert "Released 1 active lease(s)" in r.content.decode()
    lease.refresh_from_db()
    assert lease.status == status
    again = queue.next_assignment(alice, project)
    assert (again is not None and again.comparison == c) == comes_back


def test_a_lead_cannot_release_leases_in_another_leads_project(client, lead, other_project, alice):
    theirs = AssignmentFactory(comparison__project=other_project, rater=alice)
    client.force_login(lead)
    client.post(ASSIGNMENTS, {"action": "release_active_leases", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.status == AssignmentStatus.ACTIVE


def test_assignment_and_judgment_pages_redirect_raters(client, alice, project):
    client.force_login(alice)
    for url in (COMPARISONS, JUDGMENTS, ASSIGNMENTS):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/"), url


def test_a_superuser_sees_every_projects_rows(client, project, other_project, alice):
    root = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    mine = JudgmentFactory(assignment__comparison__project=project, assignment__rater=alice)
    theirs = JudgmentFactory(assignment__comparison__project=other_project, assignment__rater=alice)
    client.force_login(root)
    for url, expected in (
        (COMPARISONS, {mine.comparison_id, theirs.comparison_id}),
        (ASSIGNMENTS, {mine.assignment_id, theirs.assignment_id}),
        (JUDGMENTS, {mine.pk, theirs.pk}),
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        assert {o.pk for o in r.context["cl"].result_list} == expected, url
