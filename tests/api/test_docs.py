"""/api/schema/ (OpenAPI 3) and /api/docs/ (Swagger UI, vendored, under the strict CSP)."""

from __future__ import annotations

from django.test import Client

from tests.security_headers import header_problems


def test_the_schema_is_openapi_3_with_every_endpoint(as_lead):
    response = as_lead.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/projects/",
        "/api/v1/projects/{slug}/",
        "/api/v1/projects/{slug}/comparisons/",
        "/api/v1/projects/{slug}/judgments/",
        "/api/v1/projects/{slug}/exports/",
        "/api/v1/projects/{slug}/metrics/",
        "/api/v1/exports/{id}/",
        "/api/v1/exports/{id}/download",
    } <= set(schema["paths"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_schema_needs_a_token_or_a_login(db):
    assert Client().get("/api/schema/").status_code == 401


def test_the_docs_page_needs_a_login_and_sends_the_strict_policy(client, lead):
    assert client.get("/api/docs/").status_code == 302
    client.force_login(lead)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert header_problems(response.headers) == []
    # Vendored assets only: nothing from another origin.
    assert b"swagger-ui-bundle.js" in response.content and b"//cdn" not in response.content
