"""A lead sees and acts on the accounts of the projects they lead, and on no other.

The attack this closes: a lead set the password of a rater who belonged only to another lead's
project, signed in as that rater and rated.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.models import LEADS_GROUP, User
from comparisons.models import Project
from tests.factories import LeadFactory, ProjectFactory, UserFactory

USERS = "/admin/accounts/user/"
NEW_PASSWORD = "a-fresh-passphrase-42"
AUTOCOMPLETE = "/admin/autocomplete/"


@pytest.fixture
def olga(db):
    """Another lead, of another project."""
    user = LeadFactory(email="olga@example.com")
    user.groups.add(Group.objects.get(name=LEADS_GROUP))
    return user


@pytest.fixture
def dave(db):
    return UserFactory(email="dave@example.com")


@pytest.fixture
def other_project(olga, dave):
    p = ProjectFactory(slug="olgas", name="Olga's project")
    p.leads.add(olga)
    p.raters.add(dave)
    return p


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


def _listed(client, **params) -> set[str]:
    r = client.get(USERS, params)
    assert r.status_code == 200
    return {u.email for u in r.context["cl"].result_list}


def test_visible_to_is_the_members_and_co_leads_of_the_leads_projects(
    project, lead, olga, other_project, superuser, alice
):
    project.leads.add(olga)  # olga co-leads the lead's project
    assert set(User.objects.visible_to(lead).values_list("email", flat=True)) == {
        "alice@example.com",
        "bob@example.com",
        "charlie@example.com",
        "lead@example.com",
        "olga@example.com",
    }
    assert User.objects.visible_to(superuser).count() == User.objects.count()
    assert not User.objects.visible_to(alice).exists()  # not staff: nobody


def test_a_lead_lists_only_the_people_of_their_projects(client, lead, project, other_project):
    client.force_login(lead)
    listed = _listed(client)
    assert "alice@example.com" in listed
    assert "dave@example.com" not in listed and "olga@example.com" not in listed
    assert "dave@example.com" not in _listed(client, q="dave")


def test_another_leads_rater_is_out_of_reach_on_every_page(client, lead, project, dave):
    ProjectFactory(slug="olgas").raters.add(dave)
    client.force_login(lead)
    missing = client.get(f"{USERS}987654/change/")
    for page in ("change", "history", "delete"):
        r = client.get(f"{USERS}{dave.pk}/{page}/")
        # Refused, or the same answer as for an account that does not exist.
        assert r.status_code == 403 or (r.status_code, r.get("Location")) == (
            missing.status_code,
            missing["Location"],
        )
    r = client.post(f"{USERS}{dave.pk}/change/", {"email": "dave@example.com", "first_name": "X"})
    assert r.status_code == 302
    dave.refresh_from_db()
    assert dave.first_name == ""


def test_only_superusers_set_passwords(client, lead, project, alice, dave, superuser):
    ProjectFactory(slug="olgas").raters.add(dave)
    form = {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    client.force_login(lead)
    for user in (alice, dave):  # their own project's rater too: a lead never knows a password
        assert client.get(f"{USERS}{user.pk}/password/").status_code == 403
        assert client.post(f"{USERS}{user.pk}/password/", form).status_code == 403
        user.refresh_from_db()
        assert not user.check_password(NEW_PASSWORD)
    r = client.get(f"{USERS}{alice.pk}/change/")
    assert r.status_code == 200
    assert "password/" not in r.content.decode()  # no link to the password form

    client.force_login(superuser)
    assert client.post(f"{USERS}{dave.pk}/password/", form).status_code == 302
    dave.refresh_from_db()
    assert dave.check_password(NEW_PASSWORD)


def test_a_lead_cannot_change_a_raters_address(client, lead, project, alice):
    # The address is where the password-reset link goes: changing it would hand the lead the
    # account, in every project the rater belongs to.
    client.force_login(lead)
    r = client.post(
        f"{USERS}{alice.pk}/change/",
        {"email": "lead+alice@example.com", "first_name": "Alice", "is_active": "on"},
    )
    assert r.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert alice.first_name == "Alice"


def test_set_password_email_only_reaches_raters_of_the_leads_projects(
    client, lead, project, alice, dave, olga, superuser
):
    ProjectFactory(slug="olgas").raters.add(dave)
    project.leads.add(olga)  # a co-lead is visible, but staff: out of reach
    client.force_login(lead)
    client.post(
        USERS,
        {
            "action": "send_set_password_email",
            "_selected_action": [dave.pk, olga.pk, superuser.pk, alice.pk],
        },
    )
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_the_raters_autocomplete_offers_only_the_leads_people(client, lead, project, other_project):
    client.force_login(lead)

    def found(term: str, field: str = "raters") -> set[str]:
        r = client.get(
            AUTOCOMPLETE,
            {
                "app_label": "comparisons",
                "model_name": "project",
                "field_name": field,
                "term": term,
            },
        )
        assert r.status_code == 200
        return {row["text"] for row in r.json()["results"]}

    assert found("alice") == {"alice@example.com"}
    assert found("dave") == set()
    assert found("olga", "leads") == set()


def test_a_lead_cannot_put_another_leads_rater_in_their_project(
    client, lead, project, other_project, dave
):
    from tests.comparisons.test_admin_projects import _form_data

    client.force_login(lead)
    r = client.post(
        f"/admin/comparisons/project/{project.pk}/change/",
        _form_data(project, raters=[*project.raters.values_list("pk", flat=True), dave.pk]),
    )
    assert r.status_code == 200  # form error: not a valid choice
    assert not project.raters.filter(pk=dave.pk).exists()


def test_a_lead_adds_a_new_rater_into_one_of_their_projects(client, lead, project, other_project):
    client.force_login(lead)
    r = client.get(f"{USERS}add/")
    html = r.content.decode()
    assert "password1" not in html  # leads never choose a password for someone
    assert project.name in html and other_project.name not in html

    r = client.post(
        f"{USERS}add/",
        {
            "email": "New.Rater@Example.com",
            "projects": [project.pk],
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert r.status_code == 302
    user = User.objects.get(email="new.rater@example.com")
    assert not user.has_usable_password()
    assert list(user.rating_projects.all()) == [project]
    assert "new.rater@example.com" in _listed(client)  # in the lead's scope from the start


def test_a_new_account_from_a_lead_needs_one_of_their_projects(
    client, lead, project, other_project
):
    client.force_login(lead)
    for projects in ([], [other_project.pk]):
        r = client.post(
            f"{USERS}add/",
            {"email": "stray@example.com", "projects": projects, "usable_password": "false"},
        )
        assert r.status_code == 200  # form error
    assert not User.objects.filter(email="stray@example.com").exists()
    assert not Project.objects.get(pk=other_project.pk).raters.filter(email="stray@example.com")


def test_an_existing_address_is_pointed_to_the_invites(client, lead, project, dave):
    client.force_login(lead)
    r = client.post(
        f"{USERS}add/",
        {"email": "DAVE@example.com", "projects": [project.pk], "usable_password": "false"},
    )
    assert r.status_code == 200
    assert "send an invite" in r.content.decode()
    assert not project.raters.filter(pk=dave.pk).exists()


def test_a_superuser_still_adds_anyone_with_or_without_a_project(client, superuser):
    client.force_login(superuser)
    r = client.post(
        f"{USERS}add/",
        {
            "email": "ops@example.com",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert r.status_code == 302
    assert User.objects.get(email="ops@example.com").check_password(NEW_PASSWORD)
