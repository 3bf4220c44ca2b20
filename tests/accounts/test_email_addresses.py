"""Nobody changes their own address through the site; an address belongs to one account only.

The attack this closes: a rater added the address a lead was about to invite on allauth's
/accounts/email/ page, made it primary, and so received the invite's projects.
"""

from __future__ import annotations

import importlib

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.core import mail
from django.db import IntegrityError, transaction

from accounts.models import User
from tests.factories import ProjectFactory, UserFactory

PASSWORD = "pw-raterhub-test"


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


def test_the_email_page_cannot_add_an_address_or_make_one_primary(alice_client, alice):
    for data in (
        {"action_add": "", "email": "invitee@example.com"},
        {"action_primary": "", "email": "invitee@example.com"},
    ):
        r = alice_client.post("/accounts/email/", data)
        assert r.status_code == 405
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert not EmailAddress.objects.filter(email__iexact="invitee@example.com").exists()


def test_an_address_another_account_holds_cannot_be_claimed(alice_client, alice, bob):
    # Today's path to a 500 (IntegrityError on User.email) and to bob's address.
    alice_client.post("/accounts/email/", {"action_add": "", "email": "bob@example.com"})
    alice_client.post("/accounts/email/", {"action_primary": "", "email": "bob@example.com"})
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert not EmailAddress.objects.filter(user=alice, email__iexact="bob@example.com").exists()


def test_the_email_page_says_who_manages_the_address(alice_client):
    r = alice_client.get("/accounts/email/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "alice@example.com" in html
    assert "project lead" in html
    assert 'name="email"' not in html  # no form to add or change one
    assert 'class="topbar"' in html  # the site's layout


def test_the_email_page_needs_login(client, db):
    r = client.get("/accounts/email/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_accounts_root_still_redirects(client, alice):
    # allauth's middleware sends /accounts/ to the e-mail page or the login page.
    assert client.get("/accounts/")["Location"] == "/accounts/login/"
    client.force_login(alice)
    assert client.get("/accounts/")["Location"] == "/accounts/email/"


def test_addresses_are_unique_whatever_the_case_in_the_database(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Alice@Example.COM")


def _change_email_in_admin(client, user: User, email: str):
    return client.post(
        f"/admin/accounts/user/{user.pk}/change/",
        {"email": email, "is_active": "on"},
    )


def test_a_superuser_changes_an_address_and_the_old_one_stops_working(client, superuser, alice):
    # allauth keeps its own row for the address (made at login, password change or reset).
    EmailAddress.objects.create(user=alice, email=alice.email, primary=True, verified=True)
    client.force_login(superuser)
    r = _change_email_in_admin(client, alice, "Alice.New@Example.com")
    assert r.status_code == 302, r.content.decode()[:2000]
    alice.refresh_from_db()
    assert alice.email == "alice.new@example.com"
    assert set(EmailAddress.objects.filter(user=alice).values_list("email", flat=True)) <= {
        "alice.new@example.com"
    }
    client.logout()
    # Whoever has the old mailbox now gets neither a reset link nor a login.
    client.post("/accounts/password/reset/", {"email": "alice@example.com"})
    assert not [m for m in mail.outbox if "/accounts/password/reset/key/" in m.body]
    client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    client.post("/accounts/login/", {"login": "alice.new@example.com", "password": PASSWORD})
    assert int(client.session["_auth_user_id"]) == alice.pk


def test_the_migration_drops_address_rows_that_are_not_the_accounts_own(alice, bob):
    EmailAddress.objects.create(user=alice, email="alice@example.com", primary=True)
    EmailAddress.objects.create(user=alice, email="claimed-by-alice@example.com")
    EmailAddress.objects.create(user=bob, email="BOB@example.com", primary=True)
    migration = importlib.import_module("accounts.migrations.0005_email_addresses_match_accounts")
    migration.drop_foreign_addresses(apps, None)
    assert sorted(EmailAddress.objects.values_list("user__email", "email")) == [
        ("alice@example.com", "alice@example.com"),
        ("bob@example.com", "BOB@example.com"),
    ]


def test_the_email_page_runs_a_constant_number_of_queries(
    alice_client, alice, django_assert_max_num_queries
):
    with django_assert_max_num_queries(4) as few:
        alice_client.get("/accounts/email/")
    for i in range(20):
        ProjectFactory(slug=f"p{i}").raters.add(alice)
        EmailAddress.objects.create(user=UserFactory(), email=f"other{i}@example.com")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert alice_client.get("/accounts/email/").status_code == 200
