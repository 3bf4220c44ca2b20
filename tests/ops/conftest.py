"""A private redis-server per test that needs one: it can be stopped without touching the
shared Redis (never stopped, never flushed)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from conftest import REQUIRED_SERVICES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server child process on a free port, keeping nothing on disk."""

    def __init__(self, tmp_path):
        self.port = _free_port()
        self.dir = tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path, settings):
    """The default and "rendered" caches on a private, running redis-server (ops.cache's
    fail-soft backend, as in production); the test may stop and start it."""
    if shutil.which("redis-server") is None:
        if "redis" in REQUIRED_SERVICES:
            pytest.fail("REQUIRE_SERVICES requires redis but redis-server is not installed")
        pytest.skip("needs redis-server (apt-get install redis-server)")
    server = PrivateRedis(tmp_path)
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
