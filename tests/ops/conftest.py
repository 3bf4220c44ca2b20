"""A private redis-server per test that needs one: it can be stopped without touching the
shared Redis (never stopped, never flushed)."""

from __future__ import annotations

import shutil

import pytest

from conftest import REQUIRED_SERVICES
from loadtest.services import PrivateRedis, free_port


@pytest.fixture
def private_redis(tmp_path, settings):
    """The default and "rendered" caches on a private, running redis-server (ops.cache's
    fail-soft backend, as in production); the test may stop and start it."""
    if shutil.which("redis-server") is None:
        if "redis" in REQUIRED_SERVICES:
            pytest.fail("REQUIRE_SERVICES requires redis but redis-server is not installed")
        pytest.skip("needs redis-server (apt-get install redis-server)")
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    settings.CACHES = {
        "default": {
            "BACKEND": "ops.cache.FailSoftRedisCache",
            "LOCATION": server.url,
            "OPTIONS": options,
            "ALIAS": "default",
            "LOCAL_FALLBACK_PREFIXES": ["allauth:rl:"],
        },
        "rendered": {
            "BACKEND": "ops.cache.FailSoftRedisCache",
            "LOCATION": server.url,
            "OPTIONS": options,
            "ALIAS": "rendered",
            "KEY_PREFIX": "rendered",
        },
    }
    yield server  # Django rebuilds the cache handlers when CACHES changes
    server.stop()
