"""A PostgreSQL restart, on a private cluster this test creates with Debian's pg_createcluster
on a port of its own (never the shared server): connections recover by themselves, a submit in
flight fails with a retryable 503, and the page's retry records it exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from django.conf import settings

from conftest import REQUIRED_SERVICES
from loadtest.services import PrivatePostgres, free_port


@pytest.fixture
def private_postgres():
    if shutil.which("pg_createcluster") is None or os.geteuid() != 0:
        reason = "needs Debian's pg_createcluster, run as root"
        if "postgres" in REQUIRED_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES requires postgres: {reason}")
        pytest.skip(reason)
    server = PrivatePostgres(f"raterhub_test_{os.getpid()}", free_port())
    server.create()
    server.create_database("raterhub")
    try:
        yield server
    finally:
        server.drop()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_submit_survives_a_postgres_restart(private_postgres):
    env = {
        **os.environ,
        "DATABASE_URL": private_postgres.url("raterhub"),
        "PRIVATE_PG_NAME": private_postgres.name,
        "PRIVATE_PG_PORT": str(private_postgres.port),
        "PYTHONPATH": str(settings.BASE_DIR),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.ops._postgres_restart_child"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["page_before"] == 200
    assert out["submit_after_restart"] == 200  # CONN_HEALTH_CHECKS replaced the dead connection
    assert (out["submit_in_flight"], out["retry_after"]) == (503, "1")
    assert (out["retry"], out["retry_again"]) == (200, 200)
    assert (out["judgments_first"], out["judgments_second"]) == (1, 1)
    assert out["ready"] == "ok"
