"""/healthz is liveness: it answers without touching the database, the cache or the broker."""

from __future__ import annotations

from unittest import mock

from django.test import Client


def test_it_answers_ok_without_any_dependency():
    # No django_db mark: pytest-django makes any database access in this test an error.
    with (
        mock.patch("ops.probes.readiness") as readiness,
        mock.patch("django.core.cache.caches.__getitem__") as cache,
    ):
        response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    readiness.assert_not_called()
    cache.assert_not_called()


def test_it_needs_no_login_and_refuses_a_post():
    assert Client().get("/healthz").status_code == 200
    assert Client().post("/healthz").status_code == 405


def test_every_response_carries_a_request_id_and_an_incoming_one_is_kept():
    made = Client().get("/healthz")["X-Request-ID"]
    assert len(made) == 32

    kept = Client().get("/healthz", headers={"X-Request-ID": "abcdef0123456789"})
    assert kept["X-Request-ID"] == "abcdef0123456789"

    forged = Client().get("/healthz", headers={"X-Request-ID": "bad id\nwith a newline"})
    assert forged["X-Request-ID"] != "bad id\nwith a newline"
    assert len(forged["X-Request-ID"]) == 32
