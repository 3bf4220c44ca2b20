"""Readiness checks: can this node reach the database, the cache and the broker right now?

Each check raises on failure; `readiness()` runs them all, each within a short timeout, so one
dead dependency never hangs the probe that reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.cache import caches
from django.db import connection

logger = logging.getLogger(__name__)

BROKER_TIMEOUT = 1.0  # seconds to connect to the broker before it counts as down
DEFAULT_QUEUE = "celery"


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache() -> None:
    """The default cache (sessions, rate limits) itself: a fail-soft cache is asked directly,
    because its ordinary calls hide an outage by design."""
    cache = caches["default"]
    if hasattr(cache, "ping"):
        cache.ping()
        return
    cache.set("raterhub:readyz", "1", 10)
    if cache.get("raterhub:readyz") != "1":
        raise RuntimeError("the cache did not return what was just stored")


def queue_depth(queue: str = DEFAULT_QUEUE) -> int:
    """Messages waiting in the broker's queue (raises when the broker is unreachable)."""
    from celery import current_app
    from kombu.exceptions import ChannelError

    from raterhub.celery import ensure_broker_folders

    ensure_broker_folders()  # the embedded broker's folders, as before any send
    with current_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:
            return 0  # never declared: nothing was ever sent to it


def check_broker() -> None:
    queue_depth()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


def readiness() -> dict[str, str]:
    """{"database": "ok", "cache": "ConnectionError: …", …}: "ok" or why the check failed."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            logger.warning("readiness: %s failed: %s", name, exc)
            results[name] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            results[name] = "ok"
    return results
