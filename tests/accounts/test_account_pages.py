"""allauth's pages in RaterHub's layout: sign in (no sign-up link), sign out, password pages."""

from __future__ import annotations

import pytest

from accounts.models import User

PASSWORD = "pw-raterhub-test"


@pytest.mark.parametrize(
    "url", ["/accounts/login/", "/accounts/password/reset/", "/accounts/signup/"]
)
def test_anonymous_account_pages_use_the_site_layout(client, db, url):
    r = client.get(url)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'class="topbar"' in html  # base.html
    assert "raterhub.css" in html
    assert "/accounts/signup/" not in html  # invite-only: nothing points at sign-up


def test_signing_in_with_email_and_password(client, alice):
    r = client.post("/accounts/login/", {"login": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 302
    assert int(client.session["_auth_user_id"]) == alice.pk


def test_a_wrong_password_shows_an_error(client, alice):
    r = client.post("/accounts/login/", {"login": "alice@example.com", "password": "nope"})
    assert r.status_code == 200
    assert "_auth_user_id" not in client.session


def test_password_change_and_logout_pages(client, alice):
    client.force_login(alice)
    r = client.get("/accounts/password/change/")
    assert r.status_code == 200
    assert 'class="topbar"' in r.content.decode()
    new = "another-good-passphrase-5"
    r = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new, "password2": new},
    )
    assert r.status_code == 302
    assert User.objects.get(pk=alice.pk).check_password(new)
    assert client.get("/accounts/logout/").status_code == 200
    r = client.post("/accounts/logout/")
    assert r.status_code == 302
    assert "_auth_user_id" not in client.session
