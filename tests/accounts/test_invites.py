"""Invite-only accounts: a lead invites an e-mail from the admin; the link works once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.invites import InviteUnusable, accept_invite
from accounts.models import Invite, User
from tests.factories import LeadFactory, ProjectFactory

STRONG = "correct-horse-battery-9"


@pytest.fixture
def invite_and_token(project, lead):
    invite, token = Invite.issue(email="newbie@example.com", invited_by=lead)
    invite.projects.add(project)
    return invite, token


def _accept_url(token: str) -> str:
    return f"/accounts/invite/{token}/"


def test_a_lead_invites_from_the_admin_and_the_link_is_emailed(
    client, lead, project, django_capture_on_commit_callbacks
):
    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            "/admin/accounts/invite/add/",
            {"email": "Newbie@Example.com", "projects": [project.pk], "days": 7},
        )
    assert r.status_code == 302
    invite = Invite.objects.get()
    assert invite.email == "newbie@example.com"
    assert list(invite.projects.all()) == [project]
    assert invite.invited_by == lead
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newbie@example.com"]
    token = re.search(r"/accounts/invite/([\w-]+)/", mail.outbox[0].body).group(1)
    assert Invite.find_usable(token) == invite  # the e-mailed link is the real one
    assert token not in invite.token_hash  # only the hash is stored
    assert project.name in mail.outbox[0].body


def test_a_lead_cannot_invite_to_another_leads_project(client, lead):
    theirs = ProjectFactory(slug="theirs")
    theirs.leads.add(LeadFactory(email="someone@example.com"))
    client.force_login(lead)
    r = client.post(
        "/admin/accounts/invite/add/",
        {"email": "x@example.com", "projects": [theirs.pk], "days": 7},
    )
    assert r.status_code == 200  # form error
    assert not Invite.objects.exists()


def test_the_invite_admin_pages_load(client, lead, invite_and_token):
    client.force_login(lead)
    assert client.get("/admin/accounts/invite/").status_code == 200
    assert client.get("/admin/accounts/invite/add/").status_code == 200
    r = client.get(f"/admin/accounts/invite/{invite_and_token[0].pk}/change/")
    assert r.status_code == 200


def test_accepting_creates_the_account_joins_the_projects_and_logs_in(
    client, project, invite_and_token
):
    invite, token = invite_and_token
    r = client.get(_accept_url(token))
    assert r.status_code == 200
    assert project.name.encode() in r.content
    r = client.post(_accept_url(token), {"new_password1": STRONG, "new_password2": STRONG})
    assert r.status_code == 302
    assert r["Location"] == "/rate/"
    user = User.objects.get(email="newbie@example.com")
    assert user.check_password(STRONG)
    assert not user.is_staff
    assert project.raters.filter(pk=user.pk).exists()
    assert int(client.session["_auth_user_id"]) == user.pk
    invite.refresh_from_db()
    assert invite.accepted_at is not None and invite.accepted_by == user


def test_an_invite_works_only_once(client, invite_and_token):
    _, token = invite_and_token
    client.post(_accept_url(token), {"new_password1": STRONG, "new_password2": STRONG})
    client.logout()
    r = client.get(_accept_url(token))
    assert r.status_code == 404
    assert b"not valid" in r.content
    r = client.post(_accept_url(token), {"new_password1": STRONG, "new_password2": STRONG})
    assert r.status_code == 404
    assert User.objects.filter(email="newbie@example.com").count() == 1


def test_accepting_twice_concurrently_uses_the_invite_once(invite_and_token):
    invite, _ = invite_and_token
    stale_copy = Invite.objects.get(pk=invite.pk)  # loaded by a second request meanwhile
    accept_invite(invite=invite, password=STRONG)
    with pytest.raises(InviteUnusable):
        accept_invite(invite=stale_copy, password="another-password-77")
    assert User.objects.get(email="newbie@example.com").check_password(STRONG)


def test_an_expired_invite_gives_a_clear_page(client, invite_and_token):
    _, token = invite_and_token
    with time_machine.travel(timezone.now() + timedelta(days=15)):
        r = client.get(_accept_url(token))
        assert r.status_code == 404
        assert b"expired" in r.content
        r = client.post(_accept_url(token), {"new_password1": STRONG, "new_password2": STRONG})
        assert r.status_code == 404
    assert not User.objects.filter(email="newbie@example.com").exists()


def test_an_unknown_token_gives_the_same_page(client, db):
    r = client.get(_accept_url("no-such-token"))
    assert r.status_code == 404
    assert b"not valid" in r.content


@pytest.mark.parametrize(
    ("password1", "password2", "problem"),
    [
        ("123", "123", b"too short"),
        ("password123", "password123", b"too common"),
        ("newbie-example", "newbie-example", b"too similar"),
        ("1234567890123", "1234567890123", b"entirely numeric"),
        (STRONG, STRONG + "x", b"didn"),
    ],
)
def test_passwords_are_validated(client, invite_and_token, password1, password2, problem):
    invite, token = invite_and_token
    r = client.post(_accept_url(token), {"new_password1": password1, "new_password2": password2})
    assert r.status_code == 200
    assert problem in r.content
    assert not User.objects.filter(email="newbie@example.com").exists()
    invite.refresh_from_db()
    assert invite.accepted_at is None  # still usable after a typo


def test_an_existing_account_signs_in_as_itself_to_accept(client, alice, lead):
    second = ProjectFactory(slug="second", name="Second project")
    invite, token = Invite.issue(email="ALICE@example.com", invited_by=lead)
    invite.projects.add(second)
    r = client.get(_accept_url(token))
    assert r.status_code == 200
    assert b"new_password1" not in r.content  # no password to choose
    login_link = f"/accounts/login/?next=%2Faccounts%2Finvite%2F{token}%2F"
    assert login_link.encode() in r.content.replace(b"&amp;", b"&")

    # The link alone proves access to the mailbox, not to the account: nothing happens.
    r = client.post(_accept_url(token))
    assert r.status_code == 302 and r["Location"] == login_link
    assert not second.raters.filter(pk=alice.pk).exists()
    assert Invite.objects.usable().filter(pk=invite.pk).exists()
    assert "_auth_user_id" not in client.session

    r = client.post(
        login_link, {"login": "alice@example.com", "password": "pw-raterhub-test"}, follow=True
    )
    assert r.redirect_chain[-1][0] == _accept_url(token)
    assert b"Accept the invitation" in r.content
    r = client.post(_accept_url(token))
    assert r.status_code == 302 and r["Location"] == "/rate/"
    assert second.raters.filter(pk=alice.pk).exists()
    invite.refresh_from_db()
    assert invite.accepted_by == alice
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_an_existing_signed_in_account_goes_straight_to_rating(client, alice, lead):
    second = ProjectFactory(slug="second")
    invite, token = Invite.issue(email="alice@example.com", invited_by=lead)
    invite.projects.add(second)
    client.force_login(alice)
    r = client.post(_accept_url(token))
    assert r.status_code == 302 and r["Location"] == "/rate/"
    assert second.raters.filter(pk=alice.pk).exists()


def test_another_signed_in_account_cannot_accept_someone_elses_invite(client, alice, bob, lead):
    second = ProjectFactory(slug="second")
    invite, token = Invite.issue(email="alice@example.com", invited_by=lead)
    invite.projects.add(second)
    client.force_login(bob)
    r = client.get(_accept_url(token))
    assert r.status_code == 200
    assert b"bob@example.com" in r.content and b"Accept the invitation" not in r.content
    client.post(_accept_url(token))
    assert not second.raters.exists()
    assert Invite.objects.usable().filter(pk=invite.pk).exists()


def test_an_invite_is_never_attached_to_an_account_that_is_not_the_signed_in_one(alice, bob, lead):
    from accounts.invites import InviteMismatch

    invite, _ = Invite.issue(email="alice@example.com", invited_by=lead)
    with pytest.raises(InviteMismatch):
        accept_invite(invite=invite, user=bob)
    with pytest.raises(InviteMismatch):
        accept_invite(invite=invite, password=STRONG)  # alice exists: she must sign in
    invite.refresh_from_db()
    assert invite.accepted_at is None and invite.accepted_by is None


def test_a_rater_who_took_the_invitees_address_does_not_get_the_invite(
    client, alice, lead, django_capture_on_commit_callbacks
):
    """The reported attack, end to end: claim the address, wait for the invite, profit."""
    theirs = ProjectFactory(slug="theirs", name="Their project")
    theirs.leads.add(lead)
    client.force_login(alice)
    client.post("/accounts/email/", {"action_add": "", "email": "newbie@example.com"})
    client.post("/accounts/email/", {"action_primary": "", "email": "newbie@example.com"})
    client.logout()

    client.force_login(lead)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/accounts/invite/add/",
            {"email": "newbie@example.com", "projects": [theirs.pk], "days": 7},
        )
    invite_mail = next(m for m in mail.outbox if "/accounts/invite/" in m.body)
    token = re.search(r"/accounts/invite/([\w-]+)/", invite_mail.body).group(1)
    client.logout()

    # The real invitee follows the link and accepts.
    r = client.get(_accept_url(token))
    if b"new_password1" in r.content:
        client.post(_accept_url(token), {"new_password1": STRONG, "new_password2": STRONG})
    else:
        client.post(_accept_url(token))
    assert not theirs.raters.filter(pk=alice.pk).exists()
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


def test_open_signup_is_closed(client, db):
    r = client.get("/accounts/signup/")
    assert r.status_code == 200
    client.post(
        "/accounts/signup/",
        {"email": "walk-in@example.com", "password1": STRONG, "password2": STRONG},
    )
    assert not User.objects.filter(email="walk-in@example.com").exists()


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_invite_page_runs_a_constant_number_of_queries(
    client, alice, lead, signed_in, django_assert_max_num_queries
):
    invite, token = Invite.issue(email="alice@example.com", invited_by=lead)
    invite.projects.add(ProjectFactory(slug="first"))
    if signed_in:
        client.force_login(alice)
    with django_assert_max_num_queries(8) as few:
        assert client.get(_accept_url(token)).status_code == 200
    invite.projects.add(*(ProjectFactory(slug=f"more-{i}") for i in range(20)))
    with django_assert_max_num_queries(len(few.captured_queries)):
        r = client.get(_accept_url(token))
    assert r.content.count(b"<li>") == 21
