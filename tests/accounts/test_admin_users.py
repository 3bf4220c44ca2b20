"""The e-mail based user admin, the set-password e-mail, and the "Project leads" group."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from accounts.models import LEADS_GROUP, User
from tests.factories import UserFactory

USERS = "/admin/accounts/user/"
NEW_PASSWORD = "a-fresh-passphrase-42"


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


def test_the_leads_group_has_what_leads_need_and_no_more(db):
    group = Group.objects.get(name=LEADS_GROUP)
    perms = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
    for needed in (
        "comparisons.view_project",
        "comparisons.add_project",
        "comparisons.change_project",
        "comparisons.add_comparison",
        "comparisons.change_comparison",
        "comparisons.change_response",
        "comparisons.view_assignment",
        "comparisons.view_judgment",
        "comparisons.view_exportjob",
        "comparisons.add_exportjob",
        "accounts.add_invite",
        "accounts.view_user",
        "accounts.add_user",
    ):
        assert needed in perms, needed
    assert not {p for p in perms if p.split(".")[1].startswith("delete_")}
    assert "comparisons.change_judgment" not in perms


@pytest.mark.parametrize("url", [USERS, f"{USERS}add/", "/admin/"])
def test_user_admin_pages_load_for_leads_and_superusers(client, lead, superuser, alice, url):
    for who in (lead, superuser):
        client.force_login(who)
        assert client.get(url).status_code == 200, (who, url)
    client.force_login(superuser)
    assert client.get(f"{USERS}{alice.pk}/change/").status_code == 200


def test_raters_and_anonymous_users_get_no_user_admin(client, alice):
    r = client.get(USERS)
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
    client.force_login(alice)
    r = client.get(USERS)
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")


def test_a_lead_cannot_grant_staff_status(client, lead, project, alice):
    client.force_login(lead)
    r = client.post(
        f"{USERS}{alice.pk}/change/",
        {
            "email": alice.email,
            "first_name": "Alice",
            "is_staff": "on",
            "is_superuser": "on",
            "is_active": "on",
        },
    )
    assert r.status_code == 302
    alice.refresh_from_db()
    assert alice.first_name == "Alice"  # the lead may edit a rater's details…
    assert not alice.is_staff and not alice.is_superuser  # …but not hand out staff status


def test_a_lead_cannot_edit_staff_accounts(client, lead, project, superuser):
    project.leads.add(superuser)  # a co-lead: the lead sees the account, but may not edit it
    client.force_login(lead)
    assert client.get(f"{USERS}{superuser.pk}/change/").status_code == 200  # read-only
    r = client.post(
        f"{USERS}{superuser.pk}/change/", {"email": "taken@example.com", "is_active": "on"}
    )
    assert r.status_code == 403
    assert client.post(
        f"{USERS}{superuser.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    ).status_code in (403, 404)
    superuser.refresh_from_db()
    assert superuser.email == "root@example.com"
    assert not superuser.check_password(NEW_PASSWORD)


def test_a_lead_creates_an_account_without_a_password(client, lead, project):
    client.force_login(lead)
    r = client.post(f"{USERS}add/", {"email": "Rater9@Example.com", "projects": [project.pk]})
    assert r.status_code == 302
    user = User.objects.get(email="rater9@example.com")
    assert not user.has_usable_password()
    assert not user.is_staff


def test_emails_are_unique_whatever_the_case(client, lead, project, alice):
    client.force_login(lead)
    r = client.post(f"{USERS}add/", {"email": "ALICE@example.com", "projects": [project.pk]})
    assert r.status_code == 200
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_set_password_email_lets_the_person_choose_a_password(client, lead, project):
    newbie = User.objects.create_user(email="newbie@example.com")  # no usable password
    project.raters.add(newbie)
    client.force_login(lead)
    r = client.post(USERS, {"action": "send_set_password_email", "_selected_action": [newbie.pk]})
    assert r.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newbie@example.com"]
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    client.logout()
    r = client.get(link.group(1), follow=True)
    assert r.status_code == 200
    set_password_url = r.redirect_chain[-1][0] if r.redirect_chain else link.group(1)
    r = client.post(set_password_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert r.status_code == 302
    newbie.refresh_from_db()
    assert newbie.check_password(NEW_PASSWORD)


def test_set_password_email_skips_inactive_accounts(client, lead, project):
    gone = User.objects.create_user(email="gone@example.com", is_active=False)
    project.raters.add(gone)
    client.force_login(lead)
    client.post(USERS, {"action": "send_set_password_email", "_selected_action": [gone.pk]})
    assert mail.outbox == []


@pytest.mark.parametrize("url", [USERS, "/admin/accounts/invite/"])
def test_account_changelists_run_a_constant_number_of_queries(
    client, lead, project, url, django_assert_max_num_queries
):
    from accounts.models import Invite

    def add(n, start):
        users = User.objects.bulk_create(
            User(email=f"bulk{start + i}@example.com") for i in range(n)
        )
        Invite.objects.bulk_create(
            Invite(
                email=u.email,
                token_hash=f"{start + i:064d}",
                invited_by=lead,
                expires_at=lead.date_joined,
            )
            for i, u in enumerate(users)
        )
        project.raters.through.objects.bulk_create(  # in the lead's scope, so they are listed
            project.raters.through(project_id=project.pk, user_id=u.pk) for u in users
        )
        invites = Invite.objects.filter(email__startswith="bulk")
        Invite.projects.through.objects.bulk_create(
            [Invite.projects.through(invite_id=i.pk, project_id=project.pk) for i in invites],
            ignore_conflicts=True,
        )

    client.force_login(lead)
    counts = []
    for n, start in ((10, 0), (990, 10)):
        add(n, start)
        with django_assert_max_num_queries(12) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
