"""Shared fixtures, the service markers and the query-count helper.

Tests marked `postgres`, `redis` or `browser` need a real service. Without it they skip with
the reason printed; with REQUIRE_SERVICES=1 (CI) they fail instead, so CI never passes by skipping.
CI's SQLite pass sets REQUIRE_SERVICES=redis,browser: its postgres tests run in the PostgreSQL pass.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from contextlib import contextmanager
from urllib.parse import urlparse

import pytest

# REQUIRE_SERVICES=1 requires every service; a comma list (e.g. "redis,browser") only those.
_required = os.environ.get("REQUIRE_SERVICES", "").strip().lower()
REQUIRED_SERVICES = (
    {"postgres", "redis", "browser"}
    if _required in {"1", "true", "yes"}
    else {name.strip() for name in _required.split(",") if name.strip()}
)
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _redis_reachable() -> bool:
    url = urlparse(REDIS_URL)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def _missing_service(marker: str) -> str | None:
    """Why a test with this marker cannot run here, or None when it can."""
    if marker == "postgres":
        from django.conf import settings

        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            return "needs PostgreSQL: set DATABASE_URL=postgres://…"
    elif marker == "redis":
        if not _redis_reachable():
            return f"needs Redis at {REDIS_URL}"
    elif marker == "browser":
        if not os.path.exists(CHROMIUM) and not shutil.which("chromium"):
            return f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
        try:
            import playwright  # noqa: F401
        except ImportError:
            return "needs the playwright package"
    return None


def pytest_configure(config):
    from django.conf import settings

    # WhiteNoise warns on every request when STATIC_ROOT is missing (collectstatic not run).
    os.makedirs(settings.STATIC_ROOT, exist_ok=True)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    # A test with a browser or a live server is slow, whichever file it is in.
    for item in items:
        if item.get_closest_marker("browser") or "live_server" in item.fixturenames:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    for marker in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing_service(marker)
        if reason is None:
            continue
        if marker in REQUIRED_SERVICES:
            pytest.fail(f"REQUIRE_SERVICES requires {marker} but the test {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def alice(db):
    from tests.factories import UserFactory

    return UserFactory(email="alice@example.com")


@pytest.fixture
def bob(db):
    from tests.factories import UserFactory

    return UserFactory(email="bob@example.com")


@pytest.fixture
def charlie(db):
    from tests.factories import UserFactory

    return UserFactory(email="charlie@example.com")


@pytest.fixture
def lead(db):
    from django.contrib.auth.models import Group

    from accounts.models import LEADS_GROUP
    from tests.factories import LeadFactory

    user = LeadFactory(email="lead@example.com")
    group, _ = Group.objects.get_or_create(name=LEADS_GROUP)
    user.groups.add(group)
    return user


@pytest.fixture
def alice_client(client, alice):
    """The test client, logged in as alice."""
    client.force_login(alice)
    return client


@pytest.fixture
def project(db, alice, bob, charlie, lead):
    """An active project with overlap 3 whose raters are alice, bob and charlie, led by lead."""
    from tests.factories import ProjectFactory

    p = ProjectFactory(slug="demo-test", name="Demo test")
    p.raters.add(alice, bob, charlie)
    p.leads.add(lead)
    return p


# Statements that only open or close a transaction: constant per request, and backend- and
# test-mode-specific (SQLite logs BEGIN IMMEDIATE, the test transaction adds SAVEPOINTs).
_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


@pytest.fixture
def django_assert_max_data_queries():
    """pytest-django's django_assert_max_num_queries, counting data queries only.

    For budgets that must hold on SQLite and PostgreSQL alike with real transactions
    (transactional_db): every other query count uses django_assert_max_num_queries itself.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    class DataQueries(CaptureQueriesContext):
        @property
        def captured_queries(self):
            return [q for q in super().captured_queries if not _TRANSACTION_CONTROL.match(q["sql"])]

    @contextmanager
    def assert_max(budget: int):
        with DataQueries(connection) as queries:
            yield queries
        if len(queries) > budget:
            sqls = "\n".join(q["sql"] for q in queries)
            pytest.fail(f"Expected {budget} data queries or less, {len(queries)} done:\n{sqls}")

    return assert_max


@pytest.fixture
def one_judgment_completes(request):
    """For tests about export files, not about which comparisons are complete (that is
    test_export_complete.py): with overlap 1 every judged comparison of `project` is complete,
    so the default export (complete comparisons only) has it."""
    if "project" in request.fixturenames:
        project = request.getfixturevalue("project")
        type(project).objects.filter(pk=project.pk).update(overlap=1)
        project.overlap = 1
