"""manage.py create_api_token EMAIL [--name NAME] [--expires-days N]: the key alone on the last line."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from api.tokens import issue_token


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown once) on the last line."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire after N days.")

    def handle(self, *args, email: str, name: str, expires_days: int | None, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail {email}.")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        token, key = issue_token(user=user, name=name, expires_at=expires_at)
        self.stderr.write(
            f"Token {token.prefix}… for {user.email}"
            f"{f' expiring {expires_at:%Y-%m-%d}' if expires_at else ''}. It is not stored: "
            "copy it now."
        )
        self.stdout.write(key)
