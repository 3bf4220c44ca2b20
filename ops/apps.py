from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Running RaterHub in production: health and metrics endpoints, request ids and JSON
    logs, a cache that degrades when Redis is down, and a retryable answer when the database is."""

    name = "ops"
    verbose_name = "Operations"
