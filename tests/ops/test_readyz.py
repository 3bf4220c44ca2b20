"""/readyz: 200 when the database, the cache and the broker answer; 503 naming what failed."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_it_is_ready_when_everything_answers():
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


@pytest.mark.django_db
def test_a_broker_that_does_not_answer_is_named():
    from raterhub.celery import app

    saved = {k: app.conf[k] for k in ("broker_url", "broker_transport_options")}
    app.conf.update(broker_url="redis://127.0.0.1:1/0", broker_transport_options={})
    try:
        response = Client().get("/readyz")
    finally:
        app.conf.update(saved)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"] == "ok"
    assert (
        "refused" in body["checks"]["broker"].lower() or "error" in body["checks"]["broker"].lower()
    )


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db
def test_it_says_503_while_redis_is_down_and_200_once_it_is_back(private_redis):
    assert Client().get("/readyz").json()["checks"]["cache"] == "ok"

    private_redis.stop()
    down = Client().get("/readyz")

    assert down.status_code == 503
    assert "ConnectionError" in down.json()["checks"]["cache"]

    private_redis.start()
    assert Client().get("/readyz").json()["checks"]["cache"] == "ok"


def test_the_database_is_checked(monkeypatch):
    from django.db import OperationalError

    from ops import probes

    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setitem(probes.CHECKS, "database", refuse)
    monkeypatch.setitem(probes.CHECKS, "broker", lambda: None)
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "OperationalError: connection refused"
