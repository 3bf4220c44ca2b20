"""Request middleware: the request id, latency and access log (outermost), and a retryable 503
when the database connection fails (a PostgreSQL restart) instead of a 500."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from ops import counters
from ops.logs import accept_or_make, request_id

logger = logging.getLogger("raterhub.request")

RETRY_AFTER_SECONDS = 1


def _user_id_if_loaded(request: HttpRequest) -> int | None:
    # Only a user the view already loaded: logging must not cost a query (nor fail with the
    # database down, nor touch /healthz's database-free path).
    user = request.__dict__.get("user")
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return getattr(user, "pk", None)


class RequestIdMiddleware:
    """Gives each request an id (nginx's X-Request-ID, or a new one), logs one JSON line per
    request and observes the latency histogram. First in MIDDLEWARE, so it times everything."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = accept_or_make(request.headers.get("X-Request-ID"))
        token = request_id.set(rid)
        request.request_id = rid
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            match = request.resolver_match
            route = (match.view_name or match.route) if match else "unmatched"
            counters.request_latency.labels(
                route=route, method=request.method, status=f"{response.status_code // 100}xx"
            ).observe(elapsed)
            response["X-Request-ID"] = rid
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                    "user_id": _user_id_if_loaded(request),
                },
            )
            return response
        finally:
            request_id.reset(token)


class DatabaseUnavailableMiddleware:
    """A lost database connection (PostgreSQL restarting) answers 503 with Retry-After: the
    transaction was rolled back or its commit's outcome is unknown, and every write a page
    retries (a submit, a skip, a heartbeat) is idempotent, so trying again is always safe.
    Django drops the broken connection at the end of the request; the next one reconnects."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        counters.database_unavailable.inc()
        logger.warning("database unavailable, answered 503: %s", exception)
        response = HttpResponse(
            "The database is briefly unavailable. Please try again in a moment.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response._has_been_logged = True  # logged above, once
        return response
