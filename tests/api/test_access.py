"""Every endpoint: 401 without a usable token, 403 for a user who leads nothing, 404 for a
project (or its job) the caller does not lead, and JSON {"detail"} in each case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiToken, Webhook
from api.tokens import issue_token, revoke_token
from comparisons.models import ExportJob, ImportJob

SLUG = "demo-test"


def endpoints(export_id: int, import_id: int, webhook_id: int) -> list[tuple[str, str]]:
    return [
        ("get", "/api/v1/projects/"),
        ("get", f"/api/v1/projects/{SLUG}/"),
        ("patch", f"/api/v1/projects/{SLUG}/"),
        ("get", f"/api/v1/projects/{SLUG}/comparisons/"),
        ("post", f"/api/v1/projects/{SLUG}/comparisons/"),
        ("get", f"/api/v1/projects/{SLUG}/judgments/"),
        ("post", f"/api/v1/projects/{SLUG}/exports/"),
        ("get", f"/api/v1/projects/{SLUG}/metrics/"),
        ("get", f"/api/v1/projects/{SLUG}/webhooks/"),
        ("post", f"/api/v1/projects/{SLUG}/webhooks/"),
        ("get", f"/api/v1/projects/{SLUG}/webhooks/{webhook_id}/"),
        ("patch", f"/api/v1/projects/{SLUG}/webhooks/{webhook_id}/"),
        ("get", f"/api/v1/exports/{export_id}/"),
        ("get", f"/api/v1/exports/{export_id}/download"),
        ("get", f"/api/v1/imports/{import_id}/"),
    ]


@pytest.fixture
def urls(project, lead):
    export = ExportJob.objects.create(project=project, format="trl", requested_by=lead)
    imported = ImportJob.objects.create(project=project, requested_by=lead)
    webhook = Webhook.objects.create(project=project, url="https://example.org/hook")
    return endpoints(export.pk, imported.pk, webhook.pk)


def _call(client: Client, method: str, url: str):
    if method in ("post", "patch"):
        return getattr(client, method)(url, data="{}", content_type="application/json")
    return getattr(client, method)(url)


def _assert_json_detail(response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_no_token_is_401_everywhere(urls):
    for method, url in urls:
        response = _call(Client(), method, url)
        _assert_json_detail(response, 401)
        assert response["WWW-Authenticate"] == "Token"


def test_a_session_login_is_not_a_token(urls, client, lead):
    client.force_login(lead)  # a browser session never opens the API (no CSRF there)
    for method, url in urls:
        _assert_json_detail(_call(client, method, url), 401)


@pytest.mark.parametrize("header", ["Token nope", "Token ", "Bearer x", "Token a b"])
def test_a_malformed_or_unknown_token_is_401(urls, header):
    client = Client(HTTP_AUTHORIZATION=header)
    for method, url in urls[:3]:
        _assert_json_detail(_call(client, method, url), 401)


def test_revoked_and_expired_tokens_are_401(urls, lead):
    revoked, revoked_key = issue_token(user=lead, name="old")
    revoke_token(revoked)
    _, expired_key = issue_token(user=lead, expires_at=timezone.now() - timedelta(seconds=1))
    _, live_key = issue_token(user=lead, expires_at=timezone.now() + timedelta(days=1))
    for key in (revoked_key, expired_key):
        client = Client(HTTP_AUTHORIZATION=f"Token {key}")
        for method, url in urls:
            _assert_json_detail(_call(client, method, url), 401)
    live = Client(HTTP_AUTHORIZATION=f"Token {live_key}")
    assert live.get("/api/v1/projects/").status_code == 200


def test_an_inactive_users_token_is_401(urls, lead):
    _, key = issue_token(user=lead)
    lead.is_active = False
    lead.save()
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/projects/")
    _assert_json_detail(response, 401)


def test_a_rater_who_leads_nothing_is_403_everywhere(urls, as_rater):
    for method, url in urls:
        _assert_json_detail(_call(as_rater, method, url), 403)


def test_a_lead_of_another_project_gets_404_for_this_one(urls, as_other_lead):
    for method, url in urls:
        if url == "/api/v1/projects/":
            continue  # their own list: answered, without this project
        _assert_json_detail(_call(as_other_lead, method, url), 404)
    listed = as_other_lead.get("/api/v1/projects/").json()["results"]
    assert [p["slug"] for p in listed] == ["other-project"]


def test_the_lead_reaches_every_endpoint(urls, as_lead):
    for method, url in urls:
        response = _call(as_lead, method, url)
        # Reached the view: an answer of its own (400 for the empty bodies, 404 for the
        # unfinished export's file and the missing metrics), not an access refusal.
        assert response.status_code not in (401, 403), (method, url, response.json())
        if response.status_code != 204:
            assert response["Content-Type"].startswith("application/json"), url


def test_an_unknown_api_url_is_a_json_404(as_lead):
    _assert_json_detail(as_lead.get("/api/v1/nothing-here/"), 404)
    _assert_json_detail(Client().get("/api/v2/"), 404)


def test_the_rate_limit_is_per_token_with_retry_after(as_lead, lead, settings):
    settings.RATERHUB_API_RATE_LIMIT = "3/min"
    for _ in range(3):
        assert as_lead.get("/api/v1/projects/").status_code == 200
    response = as_lead.get("/api/v1/projects/")
    _assert_json_detail(response, 429)
    assert 0 < int(response["Retry-After"]) <= 60
    # Another token of the same user has its own allowance.
    _, key = issue_token(user=lead)
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/projects/").status_code == 200


def test_using_a_token_records_when(as_lead, lead):
    token = ApiToken.objects.get(user=lead)
    assert token.last_used_at is None
    as_lead.get("/api/v1/projects/")
    token.refresh_from_db()
    assert token.last_used_at is not None
