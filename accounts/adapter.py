from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class InviteOnlyAccountAdapter(DefaultAccountAdapter):
    """No open sign-up: raters join through a lead's invite link (accounts.views.accept_invite)."""

    def is_open_for_signup(self, request) -> bool:
        return False
