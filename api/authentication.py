"""`Authorization: Token <key>`: DRF's header parsing, our hashed lookup."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from api.tokens import find_token, touch


class TokenAuthentication(authentication.TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key):
        token = find_token(key)
        if token is None:
            # One message for unknown, revoked and expired keys: it tells nothing to a guesser.
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        touch(token)
        return token.user, token
