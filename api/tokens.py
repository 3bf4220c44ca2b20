"""API tokens: issue (the key is returned once), find by key, revoke."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from api.models import PREFIX_CHARS, ApiToken

KEY_PREFIX = "rh_"  # says what a leaked string is (secret scanners look for such prefixes)
LAST_USED_EVERY = timedelta(minutes=1)  # at most one write per token per minute of use


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(
    *, user, name: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for `user` and its key, which is not stored and cannot be shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=key[:PREFIX_CHARS],
        key_hash=hash_key(key),
        expires_at=expires_at,
    )
    return token, key


def find_token(key: str) -> ApiToken | None:
    """The usable token with this key (and its user), or None: unknown, revoked or expired."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()
    if token is None or not token.is_usable or not token.user.is_active:
        return None
    return token


def touch(token: ApiToken) -> None:
    """Record that the token was used; a conditional update, so a busy token writes rarely."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_EVERY:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db(fields=["revoked_at"])
