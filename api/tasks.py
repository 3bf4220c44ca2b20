"""Celery tasks of the API: thin wrappers over api.webhooks."""

from __future__ import annotations

from celery import shared_task

from api.models import DeliveryStatus, WebhookDelivery
from api.webhooks import attempt_delivery, retry_delay, sweep_completions


@shared_task
def deliver_webhook(delivery_id: int, attempt: int) -> str | None:
    """Attempt `attempt` of a delivery; a failure sends the next attempt with a longer delay.

    The attempt number makes a redelivered message harmless: only the expected attempt runs.
    """
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.attempts != attempt - 1:
        return delivery.status
    if not attempt_delivery(delivery):
        deliver_webhook.apply_async((delivery_id, attempt + 1), countdown=retry_delay(attempt))
    return delivery.status


@shared_task
def sweep_webhook_completions() -> int:
    """Beat entry: comparisons.completed and project.completed since the last sweep."""
    return sweep_completions()
