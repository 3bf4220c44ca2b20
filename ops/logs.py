"""Structured logs: every record carries the id of the request (or Celery task) it belongs to.

The id comes from the `X-Request-ID` header that nginx sets (`$request_id`), so the load
balancer's access log and the app's lines join on it; without one (direct to gunicorn, tests)
the middleware makes one. Formatting is python-json-logger's (settings.LOGGING).
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")

# What an incoming id may look like: nginx's 32 hex digits, a UUID, or similar. Anything else
# (too long, control characters) is replaced, so a client cannot forge log lines through it.
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def accept_or_make(incoming: str | None) -> str:
    if incoming and _VALID_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (empty outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id.get()
        return True
