"""The per-token rate limit, counted in the shared cache (Redis in production)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str:
        # Read per request (not at import like DRF's own), so the setting can change in tests.
        return settings.RATERHUB_API_RATE_LIMIT

    def get_cache_key(self, request, view) -> str | None:
        if request.auth is None:
            return None  # unauthenticated: refused before any work, by authentication
        # The key's hash, not the row id: a deleted token's id may be given to a new one.
        return self.cache_format % {"scope": self.scope, "ident": request.auth.key_hash[:32]}
