"""One login page for everyone: the admin's own login form hands over to allauth's rate-limited one.

The attack this closes: 40 password guesses on /admin/login/ went through, while allauth's
login locks an address out after 5 failures.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

PASSWORD = "pw-raterhub-test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # allauth counts failures in the cache; start and end every test with none.
    cache.clear()
    yield
    cache.clear()


def test_the_admin_login_redirects_to_the_site_login_keeping_next(client, db):
    r = client.get("/admin/login/", {"next": "/admin/comparisons/project/"})
    assert r.status_code == 302
    assert r["Location"] == "/accounts/login/?next=%2Fadmin%2Fcomparisons%2Fproject%2F"
    r = client.get("/admin/login/")
    assert r["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_the_admin_login_form_checks_no_password(client, lead):
    r = client.post("/admin/login/", {"username": lead.email, "password": PASSWORD})
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_guessing_through_the_admin_login_is_rate_limited(client, lead):
    for _ in range(40):
        client.post("/admin/login/", {"username": lead.email, "password": "guess"})
    r = client.post("/admin/login/", {"username": lead.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session

    # The way in from the admin: /admin/ → /admin/login/ → allauth's login with next=/admin/.
    r = client.get("/admin/", follow=True)
    login_url = r.redirect_chain[-1][0]
    assert login_url == "/accounts/login/?next=%2Fadmin%2F"
    for _ in range(5):
        r = client.post(login_url, {"login": lead.email, "password": "guess"})
        assert r.status_code == 200
    r = client.post(login_url, {"login": lead.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session  # locked out, even with the right password
    assert b"Too many failed login attempts" in r.content


def test_a_lead_signs_in_on_the_site_login_and_lands_in_the_admin(client, lead):
    r = client.get("/admin/comparisons/project/", follow=True)
    login_url = r.redirect_chain[-1][0]
    r = client.post(login_url, {"login": lead.email, "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/admin/comparisons/project/"
    assert client.get("/admin/comparisons/project/").status_code == 200


def test_a_signed_in_lead_on_the_admin_login_goes_on_to_next(client, lead):
    client.force_login(lead)
    r = client.get("/admin/login/", {"next": "/admin/accounts/invite/"}, follow=True)
    assert r.redirect_chain[-1][0] == "/admin/accounts/invite/"
    assert r.status_code == 200


def test_a_signed_in_rater_is_told_the_admin_is_not_for_them_without_a_loop(client, alice):
    client.force_login(alice)
    r = client.get("/admin/", follow=True)
    assert r.status_code == 200
    assert r.redirect_chain[-1][0] == "/rate/"
    assert len(r.redirect_chain) <= 3
    assert b"no access to the admin" in r.content


def test_the_admin_password_change_is_the_sites_rate_limited_one(client, lead):
    client.force_login(lead)
    r = client.get("/admin/password_change/")
    assert r.status_code == 302 and r["Location"] == "/accounts/password/change/"
