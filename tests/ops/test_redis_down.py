"""With Redis (the cache) stopped, nothing fails: sessions come from the database, the rendered-
HTML cache misses and says so, logins work under a per-process rate limit, and once Redis is
back, keys written meanwhile are not served stale. A private redis-server, stopped by the test."""

from __future__ import annotations

import logging
import re
import time

import pytest
from django.core.cache import caches
from django.test import Client

from comparisons import queue, rendering
from comparisons.models import Judgment
from ops import cache as failsoft
from tests.factories import ComparisonFactory

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db]  # a redis-server each

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def quick_retry(monkeypatch):
    # Production waits 2 s before trying a failed Redis again; tests restart it at once.
    monkeypatch.setattr(failsoft, "RETRY_AFTER", 0.0)


def _login(client: Client, email: str, password: str = "pw-raterhub-test"):
    return client.post("/accounts/login/", {"login": email, "password": password})


def test_a_logged_in_rater_keeps_rating_with_nothing_lost(private_redis, project, alice):
    ComparisonFactory.create_batch(3, project=project)
    client = Client()
    assert _login(client, alice.email).status_code == 302
    page = client.get(f"/rate/{project.slug}/")
    assert page.status_code == 200
    lease = queue.next_assignment(alice, project)

    private_redis.stop()

    again = client.get(f"/rate/{project.slug}/")  # the session, from the database now
    assert again.status_code == 200
    assert alice.email in again.content.decode()
    submit = client.post(f"/rate/{project.slug}/{lease.pk}/submit", {"choice": "1"}, **HTMX)
    assert submit.status_code == 200
    assert Judgment.objects.filter(assignment=lease).count() == 1
    beat = client.post(f"/rate/{project.slug}/{queue.next_assignment(alice, project).pk}/heartbeat")
    assert beat.status_code == 200


def test_a_new_login_works_while_redis_is_down(private_redis, project, bob):
    private_redis.stop()

    client = Client()
    response = _login(client, bob.email)

    assert response.status_code == 302
    assert client.get("/rate/?list=1").status_code == 200


def test_the_login_lockout_still_holds_per_process_while_redis_is_down(private_redis, bob):
    private_redis.stop()
    client = Client()
    # allauth: 5 failures for one address in 5 minutes, then locked out.
    for _ in range(5):
        assert _login(client, bob.email, "wrong-password").status_code == 200
    locked = _login(client, bob.email)  # the right password, too late

    assert locked.status_code in (200, 429)
    assert "_auth_user_id" not in client.session
    assert re.search(r"too many|Too many", locked.content.decode())


def test_the_rendered_html_cache_reports_a_miss_and_logs_it(private_redis, caplog):
    rendering.render_many(["**hello**"])  # stored while Redis is up
    private_redis.stop()
    caplog.set_level(logging.WARNING, logger="ops.cache")

    html = rendering.render_many(["**hello**", "*new*"])

    assert html == ["<p><strong>hello</strong></p>\n", "<p><em>new</em></p>\n"]
    assert any(
        "'rendered' unavailable, get_many treated as a miss" in r.getMessage()
        for r in caplog.records
    )


def test_a_key_deleted_during_the_outage_is_not_served_when_redis_is_back(private_redis):
    cache = caches["default"]
    cache.set("session-like", "old data")
    # Redis stops answering (paused, so that it keeps its data) while the key is deleted.
    client = cache._cache.get_client(write=True)
    client.execute_command("CLIENT", "PAUSE", "1500", "ALL")
    cache.delete("session-like")  # times out: remembered as stale
    assert cache._cache.stale  # the failed delete, to redo
    time.sleep(1.6)

    # The first call once Redis answers drops what went stale, before it reads anything.
    assert cache.get("session-like") is None
    assert not cache._cache.stale


def test_one_redis_client_serves_every_call_and_outlives_a_restart(private_redis):
    cache = caches["default"]
    client = cache._cache.get_client(write=True)
    # Django's own client builds a redis.Redis per call, at more CPU than the command costs.
    assert cache._cache.get_client() is client
    private_redis.stop()
    private_redis.start()

    for _ in range(3):  # the pool's old connection fails once at most, as a miss
        cache.set("after-restart", "value")
        if cache.get("after-restart") == "value":
            break
    assert cache.get("after-restart") == "value"
    assert cache._cache.get_client() is client
