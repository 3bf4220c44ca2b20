"""API tokens and project webhooks.

A token's key is shown once: only its SHA-256 is stored (a random 32-byte key needs no slow
hash), with a short prefix to tell tokens apart in a list. A webhook delivery is one event for
one webhook; each of its attempts is a row of its own, so a lead sees every try and its answer.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from comparisons.models import Project

PREFIX_CHARS = 8


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        """Neither revoked nor expired, now."""
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_CHARS, help_text="The key's first characters.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the key (hex).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class WebhookEvent(models.TextChoices):
    EXPORT_SUCCEEDED = "export.succeeded", "An export succeeded"
    EXPORT_FAILED = "export.failed", "An export failed"
    PROJECT_COMPLETED = "project.completed", "Every comparison of the project is complete"
    COMPARISONS_COMPLETED = "comparisons.completed", "Comparisons completed (batched)"


def validate_events(value) -> None:
    """A webhook's events: a non-empty list of WebhookEvent values."""
    if not isinstance(value, list) or not value:
        raise ValidationError('A list of events, e.g. ["export.succeeded"].')
    unknown = sorted({str(v) for v in value} - set(WebhookEvent.values))
    if unknown:
        raise ValidationError(
            f"Unknown event(s) {', '.join(unknown)}; choose from {', '.join(WebhookEvent.values)}."
        )


def _new_secret() -> str:
    return secrets.token_hex(32)


def _all_events() -> list[str]:
    return list(WebhookEvent.values)


class Webhook(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500, help_text="http(s) URL that receives a JSON POST.")
    secret = models.CharField(
        max_length=128,
        default=_new_secret,
        help_text="Signs each body: X-RaterHub-Signature: sha256=<HMAC-SHA256 hex>.",
    )
    events = models.JSONField(
        default=_all_events, validators=[validate_events], help_text="Events to send."
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The completion sweep's place: judgments up to this id have been looked at, and whether
    # project.completed was sent for the project's current state (reset when work is added).
    judgments_seen_through = models.BigIntegerField(default=0)
    project_completed_sent = models.BooleanField(default=False)

    class Meta:
        ordering = ["project", "id"]

    def __str__(self) -> str:
        return f"{self.project} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32, choices=WebhookEvent)
    key = models.CharField(max_length=100, help_text="The occurrence, e.g. export-12-succeeded.")
    body = models.TextField(help_text="The exact JSON sent (what the signature covers).")
    status = models.CharField(max_length=16, choices=DeliveryStatus, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # One delivery per occurrence: a task run twice does not notify twice.
            models.UniqueConstraint(fields=["webhook", "key"], name="webhookdelivery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook.url} #{self.pk}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error[:40]}"
