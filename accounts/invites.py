"""Invitations: a lead invites an e-mail address; the invitee accepts with the one-time link."""

from __future__ import annotations

from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invite, User


class InviteUnusable(Exception):
    """The invite was used or expired in the meantime (e.g. a second tab accepted it)."""


class InviteMismatch(Exception):
    """The account that would accept the invite is not the invited address's own."""


def invite_url(*, token: str, request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("accept_invite", args=[token]))


def send_invite(*, invite: Invite, token: str, request: HttpRequest) -> None:
    context = {
        "invite": invite,
        "url": invite_url(token=token, request=request),
        "projects": list(invite.projects.all()),
        "invited_by": invite.invited_by,
    }
    subject = render_to_string("accounts/email/invite_subject.txt", context).strip()
    body = render_to_string("accounts/email/invite_message.txt", context)
    send_mail(subject, body, None, [invite.email])


def accept_invite(
    *, invite: Invite, user: User | None = None, password: str | None = None
) -> tuple[User, bool]:
    """Use the invite once and add an account to the invite's projects. Returns (user, created).

    The link proves access to the invited mailbox, not to an account (a lead sees the link
    too), so an existing account is never found by its address alone: it accepts as `user`,
    the account signed in, and must hold the invite's address. Without `user`, no account may
    have the address yet and a new one is created with `password`.

    Raises InviteMismatch when the invite is not for `user`, or when an account already has
    the address and `user` was not given; InviteUnusable when the invite was used or expired
    since it was loaded.
    """
    if user is not None and user.email.lower() != invite.email.lower():
        raise InviteMismatch
    if user is None and not password:
        raise ValueError("A password is required to create the account.")
    with transaction.atomic():
        # The conditional update is the one-time guard: of two concurrent accepts only one
        # changes the row; the other sees 0 rows and gives up.
        now = timezone.now()
        claimed = Invite.objects.filter(
            pk=invite.pk, accepted_at__isnull=True, expires_at__gt=now
        ).update(accepted_at=now)
        if not claimed:
            raise InviteUnusable
        created = user is None
        if created:
            if existing_account(invite) is not None:
                raise InviteMismatch  # rolls the claim back: the owner signs in to accept
            user = User.objects.create_user(email=invite.email, password=password)
        Invite.objects.filter(pk=invite.pk).update(accepted_by=user)
        for project in invite.projects.all():
            project.raters.add(user)
    invite.accepted_at, invite.accepted_by = now, user
    return user, created


def existing_account(invite: Invite) -> User | None:
    return User.objects.filter(email__iexact=invite.email).first()
