from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

LEADS_GROUP = "Project leads"


class UserQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Accounts a user may see in the admin: all for superusers; for a lead, the raters and
        co-leads of the projects they lead (`Project.objects.visible_to`) and themselves; none
        for anyone else.

        The user admin, its autocompletes (the project's raters and leads) and its actions all
        scope through this: a lead never reaches the people of another lead's project.
        """
        if user.is_superuser:
            return self
        if not user.is_staff:
            return self.none()
        from comparisons.models import Project  # comparisons.models refers to User: a cycle

        projects = Project.objects.visible_to(user).values("pk")
        raters = Project.raters.through.objects.filter(project__in=projects).values("user_id")
        leads = Project.leads.through.objects.filter(project__in=projects).values("user_id")
        return self.filter(Q(pk=user.pk) | Q(pk__in=raters) | Q(pk__in=leads))

    def manageable_by(self, user):
        """Accounts a user may act on (edit, e-mail a password reset): the visible ones, less
        staff accounts unless the user is a superuser (leads and admins stay out of a lead's
        reach, or a lead could take over another admin)."""
        visible = self.visible_to(user)
        return visible if user.is_superuser else visible.filter(is_staff=False)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
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
        constraints = [
            # An address is one person's, whatever its case: login, password reset and invites
            # all find the account by address.
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ignoring_case"),
        ]

    def __str__(self) -> str:
        return self.email

    def drop_stale_email_addresses(self) -> None:
        """Keep allauth's address rows to this account's own address, after it has changed.

        allauth logs in and e-mails password resets by its EmailAddress rows as well as by
        User.email: a row left with the old address would let whoever holds the old mailbox
        reset the password.
        """
        EmailAddress.objects.filter(user=self).exclude(email__iexact=self.email).delete()


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
