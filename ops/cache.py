"""A Redis cache that degrades instead of failing: with Redis down, reads miss, writes are dropped,
and both are logged, so every page still works from the database.

Django's RedisCache raises on a refused connection, which turned every page (sessions are read
from this cache) into a 500 while Redis was down. This client catches the error, answers a miss,
and stops trying for `RETRY_AFTER` seconds so a dead server costs one failed connection per
process per few seconds, not one per call.

Two things need more than "miss":
- Keys whose write or delete failed (a session saved or deleted meanwhile, in the database) are
  deleted from Redis once it answers again, so an old copy never outlives the outage there.
- Keys under a `LOCAL_FALLBACK_PREFIXES` prefix (allauth's login rate limits) go to this
  process's own memory while Redis is down: a limit that needs no Redis, counted per process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

from ops import counters

logger = logging.getLogger(__name__)

RETRY_AFTER = 2.0  # seconds a process waits before it tries a Redis that failed again
LOG_EVERY = 10.0  # at most one warning per cache and process this often; the rest are counted
MAX_STALE = 10_000  # keys remembered for deletion on recovery (beyond that, logged as lost)
_ERRORS = (RedisError, OSError)


class _FailSoftClient(RedisCacheClient):
    def __init__(self, servers, *, alias: str, local_prefixes: tuple[str, ...], **options):
        super().__init__(servers, **options)
        self.alias = alias
        self.local_prefixes = local_prefixes
        self.local = LocMemCache(f"failsoft-{alias}", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
        self.down_until = 0.0
        self.stale: set[str] = set()
        self.lock = threading.Lock()
        self.last_log = 0.0
        self.suppressed = 0
        self.clients: dict[int, Any] = {}

    def get_client(self, key=None, *, write=False):
        # Django builds a new redis.Redis per call, which copies its table of ~200 response
        # callbacks: that cost more CPU than the command it then sent. One client per pool
        # serves every call (the pool is what holds the connections, and is thread-safe).
        pool = self._get_connection_pool(write)
        client = self.clients.get(id(pool))
        if client is None:
            client = self.clients[id(pool)] = self._client(connection_pool=pool)
        return client

    # -- the guard ------------------------------------------------------------------------
    def _down(self) -> bool:
        return time.monotonic() < self.down_until

    def _failed(self, operation: str, keys, exc: BaseException | None, *, local: bool) -> None:
        """Note a miss (Redis down now, or known to be down) and log it, throttled."""
        counters.cache_errors.labels(cache=self.alias, operation=operation).inc()
        now = time.monotonic()
        with self.lock:
            if exc is not None:
                self.down_until = now + RETRY_AFTER
            if operation in ("set", "set_many", "delete", "delete_many", "add", "touch", "incr"):
                for key in keys:
                    if len(self.stale) < MAX_STALE:
                        self.stale.add(key)
            if now - self.last_log < LOG_EVERY:
                self.suppressed += 1
                return
            suppressed, self.suppressed, self.last_log = self.suppressed, 0, now
        logger.warning(
            "cache %r unavailable, %s %s (%s more since the last warning): %s",
            self.alias,
            operation,
            "kept in this process's memory" if local else "treated as a miss",
            suppressed,
            exc or "Redis known to be down",
            extra={"cache": self.alias, "operation": operation},
        )

    def _recovered(self) -> bool:
        """Delete the keys that went stale during the outage; False if Redis still fails."""
        with self.lock:
            stale, self.stale = list(self.stale), set()
        if not stale:
            return True
        try:
            super().delete_many(stale)
        except _ERRORS:
            with self.lock:
                self.stale.update(stale)
                self.down_until = time.monotonic() + RETRY_AFTER
            return False
        logger.info(
            "cache %r is back; dropped %s keys written during the outage", self.alias, len(stale)
        )
        return True

    def _is_local(self, key: str) -> bool:
        # A full key is "<KEY_PREFIX>:<version>:<key>"; the prefixes name the last part.
        return bool(self.local_prefixes) and key.split(":", 2)[-1].startswith(self.local_prefixes)

    def _run(self, operation: str, keys: list[str], call, miss, local=None):
        """`call()` against Redis; on failure (or while Redis is known to be down) `local()`
        for keys kept locally, else `miss`."""
        use_local = bool(local is not None and keys and all(self._is_local(k) for k in keys))
        # Before anything else once Redis answers again: an old copy is never read first.
        if self._down() or (self.stale and not self._recovered()):
            self._failed(operation, keys, None, local=use_local)
            return local() if use_local else miss
        try:
            return call()
        except _ERRORS as exc:
            self._failed(operation, keys, exc, local=use_local)
            return local() if use_local else miss

    # -- RedisCacheClient's interface (full keys) -----------------------------------------
    def add(self, key, value, timeout):
        return self._run(
            "add", [key], lambda: super(_FailSoftClient, self).add(key, value, timeout), False,
            lambda: self.local.add(key, value, timeout),
        )  # fmt: skip

    def get(self, key, default):
        return self._run(
            "get", [key], lambda: super(_FailSoftClient, self).get(key, default), default,
            lambda: self.local.get(key, default),
        )  # fmt: skip

    def set(self, key, value, timeout):
        return self._run(
            "set", [key], lambda: super(_FailSoftClient, self).set(key, value, timeout), None,
            lambda: self.local.set(key, value, timeout),
        )  # fmt: skip

    def touch(self, key, timeout):
        return self._run(
            "touch", [key], lambda: super(_FailSoftClient, self).touch(key, timeout), False,
            lambda: self.local.touch(key, timeout),
        )  # fmt: skip

    def delete(self, key):
        return self._run(
            "delete", [key], lambda: super(_FailSoftClient, self).delete(key), False,
            lambda: self.local.delete(key),
        )  # fmt: skip

    def get_many(self, keys):
        keys = list(keys)
        return self._run(
            "get_many", keys, lambda: super(_FailSoftClient, self).get_many(keys), {},
            lambda: self.local.get_many(keys),
        )  # fmt: skip

    def has_key(self, key):
        return self._run(
            "has_key", [key], lambda: super(_FailSoftClient, self).has_key(key), False,
            lambda: self.local.has_key(key),
        )  # fmt: skip

    def incr(self, key, delta):
        # Django's incr raises ValueError for a missing key; a miss is exactly that.
        def local():
            return self.local.incr(key, delta)

        result = self._run(
            "incr", [key], lambda: super(_FailSoftClient, self).incr(key, delta), None, local
        )
        if result is None:
            raise ValueError(f"Key '{key}' not found (cache unavailable).")
        return result

    def set_many(self, data, timeout):
        return self._run(
            "set_many", list(data), lambda: super(_FailSoftClient, self).set_many(data, timeout), None,
            lambda: self.local.set_many(data, timeout),
        )  # fmt: skip

    def delete_many(self, keys):
        keys = list(keys)
        return self._run(
            "delete_many", keys, lambda: super(_FailSoftClient, self).delete_many(keys), None,
            lambda: self.local.delete_many(keys),
        )  # fmt: skip

    def clear(self):
        return self._run("clear", [], lambda: super(_FailSoftClient, self).clear(), False)

    def ping(self) -> bool:
        """Redis itself, unguarded: for the readiness probe."""
        return self.get_client(write=True).ping()


class FailSoftRedisCache(RedisCache):
    """RedisCache whose every call degrades to a miss (see the module docstring).

    Settings: the usual LOCATION/OPTIONS, plus LOCAL_FALLBACK_PREFIXES (keys counted in this
    process's memory while Redis is down)."""

    def __init__(self, server, params: dict[str, Any]):
        super().__init__(server, params)
        self._alias = params.get("ALIAS") or params.get("KEY_PREFIX") or "default"
        self._local_prefixes = tuple(params.get("LOCAL_FALLBACK_PREFIXES", ()))

    @property
    def _cache(self) -> _FailSoftClient:
        # One client per cache object (Django keeps one cache object per thread).
        client = self.__dict__.get("_failsoft_client")
        if client is None:
            client = _FailSoftClient(
                self._servers,
                alias=self._alias,
                local_prefixes=self._local_prefixes,
                **self._options,
            )
            self.__dict__["_failsoft_client"] = client
        return client

    def ping(self) -> bool:
        return self._cache.ping()
