from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone

LEADS_GROUP = "Project leads"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in with an e-mail address: rater, lead, or both."""

    username = None
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InviteQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(accepted_at__isnull=True, expires_at__gt=timezone.now())


class Invite(models.Model):
    """A one-time invitation link; only the token's hash is stored."""

    email = models.EmailField()
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    projects = models.ManyToManyField("comparisons.Project", blank=True, related_name="invites")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invite for {self.email}"

    @classmethod
    def issue(cls, *, email: str, invited_by=None, days: int = 14) -> tuple[Invite, str]:
        """Create an invite and return it with the raw token (shown once, never stored)."""
        token = secrets.token_urlsafe(32)
        invite = cls.objects.create(
            email=email.strip().lower(),
            token_hash=_hash_token(token),
            invited_by=invited_by,
            expires_at=timezone.now() + timedelta(days=days),
        )
        return invite, token

    @classmethod
    def find_usable(cls, token: str) -> Invite | None:
        return cls.objects.usable().filter(token_hash=_hash_token(token)).first()
