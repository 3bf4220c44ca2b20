"""Tokens: stored hashed, `manage.py create_api_token`, and the account page (/accounts/tokens/)."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from api.models import ApiToken
from api.tokens import find_token, issue_token


def test_only_the_keys_hash_and_prefix_are_stored(lead):
    token, key = issue_token(user=lead, name="nb")
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(token.prefix) and len(token.prefix) == 8
    assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert find_token(key) == token and find_token(key + "x") is None


def test_the_command_prints_the_key_alone_on_its_last_line(lead, project):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token", "LEAD@example.com", "--name", "pipeline", stdout=out, stderr=err
    )
    key = out.getvalue().splitlines()[-1]
    token = find_token(key)
    assert token is not None and token.user == lead and token.name == "pipeline"
    assert key not in err.getvalue()
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/projects/").status_code == 200


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match=r"nobody@example\.com"):
        call_command("create_api_token", "nobody@example.com")


def test_the_command_can_set_an_expiry(lead):
    out = StringIO()
    call_command(
        "create_api_token", lead.email, "--expires-days", "7", stdout=out, stderr=StringIO()
    )
    assert find_token(out.getvalue().splitlines()[-1]).expires_at is not None


# --- the account page --------------------------------------------------------------------------

PAGE = "/accounts/tokens/"


def test_the_page_needs_a_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_new_token_is_shown_once_and_then_only_its_prefix(client, lead):
    client.force_login(lead)
    created = client.post(PAGE, {"name": "notebook", "expires": "30"})
    assert created.status_code == 200
    key = created.context["new_key"]
    assert key.encode() in created.content and b"shown only once" in created.content
    token = find_token(key)
    assert token.name == "notebook" and token.expires_at is not None

    later = client.get(PAGE)
    assert key.encode() not in later.content
    assert token.prefix.encode() in later.content and b"notebook" in later.content
    assert "no-store" in later["Cache-Control"]


def test_a_user_sees_and_revokes_only_their_own_tokens(client, lead, alice):
    mine, mine_key = issue_token(user=lead, name="mine")
    theirs, _ = issue_token(user=alice, name="alices")
    client.force_login(lead)

    page = client.get(PAGE)
    assert b"mine" in page.content and b"alices" not in page.content

    assert client.post(f"/accounts/tokens/{theirs.pk}/revoke").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None

    assert client.post(f"/accounts/tokens/{mine.pk}/revoke").status_code == 302
    assert find_token(mine_key) is None
    assert (
        Client(HTTP_AUTHORIZATION=f"Token {mine_key}").get("/api/v1/projects/").status_code == 401
    )


def test_revoking_needs_a_post_with_csrf(lead):
    token, _ = issue_token(user=lead)
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    assert client.get(f"/accounts/tokens/{token.pk}/revoke").status_code == 405
    assert client.post(f"/accounts/tokens/{token.pk}/revoke").status_code == 403
    assert client.post(PAGE, {"name": "x"}).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None and ApiToken.objects.count() == 1


def test_a_name_is_required(client, lead):
    client.force_login(lead)
    response = client.post(PAGE, {"name": ""})
    assert response.context["new_key"] is None and not ApiToken.objects.exists()


def test_the_page_query_count_is_constant(client, lead, django_assert_max_num_queries):
    client.force_login(lead)
    client.get(PAGE)
    for n in range(10):
        issue_token(user=lead, name=f"t{n}")
    with django_assert_max_num_queries(8):
        assert client.get(PAGE).status_code == 200
