"""Webhooks: which URLs may receive them, what is sent, signing, one delivery attempt, and the
sweep that notices completed comparisons and projects.

A delivery is recorded (its exact body) before it is sent, and sent by Celery after commit
(api.tasks.deliver_webhook); each attempt is logged with its answer, and a failed attempt is
tried again with exponential backoff up to RATERHUB_WEBHOOK_MAX_ATTEMPTS. An event has a key
(e.g. "export-12-succeeded") so that a task delivered twice never notifies twice.

Receivers check `X-RaterHub-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the
webhook's secret>` (see `signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from api.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery, WebhookEvent
from comparisons.models import Comparison, ExportJob, JobStatus, Judgment, Project

SIGNATURE_HEADER = "X-RaterHub-Signature"
BATCH = 1000  # external ids per comparisons.completed delivery
MAX_BACKOFF = timedelta(hours=1)


# --- where they may go -----------------------------------------------------------------------


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(f"Cannot resolve the host {host!r}: {exc}") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_webhook_url(url: str) -> None:
    """An http(s) URL whose host is public, unless RATERHUB_WEBHOOK_ALLOW_PRIVATE (SSRF: a
    webhook must not make the server call its own network's services)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("A webhook URL must be an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise ValidationError("A webhook URL may not carry a user name or password.")
    if settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE:
        return
    for address in _addresses(parts.hostname):
        if not address.is_global:
            raise ValidationError(
                f"{parts.hostname} is a private, loopback or reserved address ({address}); "
                "set RATERHUB_WEBHOOK_ALLOW_PRIVATE=1 to allow it."
            )


# --- what is sent ----------------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (shown in the README; used by the tests' receiver)."""
    return hmac.compare_digest(signature(secret, body), header or "")


def public_url(path: str) -> str:
    return settings.RATERHUB_PUBLIC_URL.rstrip("/") + path


def start_position(project: Project) -> int:
    """Where a new webhook's completion sweep starts: now, not the project's past."""
    return Judgment.objects.filter(project=project).aggregate(m=Max("id"))["m"] or 0


def create_webhook(
    *, project: Project, url: str, events: Iterable[str], created_by=None
) -> Webhook:
    check_webhook_url(url)
    return Webhook.objects.create(
        project=project,
        url=url,
        events=sorted(set(events)),
        created_by=created_by,
        judgments_seen_through=start_position(project),
    )


def notify(project: Project, event: str, data: dict, *, key: str) -> list[WebhookDelivery]:
    """Record a delivery of `event` for each active webhook of the project that wants it, and
    send each once the transaction commits. `key` names the occurrence: the same key twice
    (a task run again) records nothing new."""
    return [
        delivery
        for webhook in Webhook.objects.filter(project=project, active=True).order_by("id")
        if event in webhook.events
        for delivery in _notify_one(webhook, event, data, key=key)
    ]


def export_finished(job: ExportJob) -> None:
    """export.succeeded or export.failed for a job that has just finished."""
    if job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        return
    event = (
        WebhookEvent.EXPORT_SUCCEEDED
        if job.status == JobStatus.SUCCEEDED
        else WebhookEvent.EXPORT_FAILED
    )
    data = {
        "export": {
            "id": job.pk,
            "format": job.format,
            "status": job.status,
            "rows": job.row_count,
            "error": job.error,
            "url": public_url(reverse("api:export_detail", args=[job.pk])),
            "download_url": public_url(reverse("api:export_download", args=[job.pk]))
            if job.status == JobStatus.SUCCEEDED
            else None,
        }
    }
    notify(job.project, event, data, key=f"export-{job.pk}-{job.status}")


# --- one attempt -----------------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: doubling from RATERHUB_WEBHOOK_RETRY_SECONDS."""
    base = settings.RATERHUB_WEBHOOK_RETRY_SECONDS
    return min(base * 2 ** (attempt - 1), MAX_BACKOFF.total_seconds())


def attempt_delivery(delivery: WebhookDelivery) -> bool:
    """POST the delivery once and log the attempt; True when it is finished (delivered, or out
    of attempts, or its URL refused), False when it should be tried again."""
    webhook = delivery.webhook
    body = delivery.body.encode()
    number = delivery.attempts + 1
    attempt = WebhookAttempt(delivery=delivery, number=number)
    started = time.monotonic()
    refused = False
    try:
        check_webhook_url(webhook.url)  # again: DNS may point elsewhere since it was saved
        answer = requests.post(
            webhook.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "RaterHub-Webhook/1",
                SIGNATURE_HEADER: signature(webhook.secret, body),
                "X-RaterHub-Event": delivery.event,
                "X-RaterHub-Delivery": str(delivery.pk),
            },
            timeout=settings.RATERHUB_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,  # a redirect could lead to a private address
        )
        attempt.status_code = answer.status_code
        attempt.ok = 200 <= answer.status_code < 300
        attempt.response_excerpt = answer.text[:500]
    except ValidationError as exc:
        attempt.error = "; ".join(exc.messages)
        refused = True
    except requests.RequestException as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"[:2000]
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    finished = attempt.ok or refused or number >= settings.RATERHUB_WEBHOOK_MAX_ATTEMPTS
    with transaction.atomic():
        attempt.save()
        delivery.attempts = number
        if finished:
            delivery.status = DeliveryStatus.SUCCEEDED if attempt.ok else DeliveryStatus.FAILED
            delivery.finished_at = timezone.now()
        delivery.save(update_fields=["attempts", "status", "finished_at"])
    return finished


# --- the completion sweep (beat) ---------------------------------------------------------------


def sweep_completions() -> int:
    """Send comparisons.completed (batched) for comparisons completed since the last sweep, and
    project.completed when a project's last comparison is complete; returns deliveries made."""
    wanted = {WebhookEvent.COMPARISONS_COMPLETED, WebhookEvent.PROJECT_COMPLETED}
    sent = 0
    webhooks = Webhook.objects.filter(active=True).select_related("project").order_by("id")
    for webhook in webhooks:
        if wanted.isdisjoint(webhook.events):
            continue
        with transaction.atomic():
            # One sweep at a time per webhook: two beats overlapping would report twice.
            locked = Webhook.objects.select_for_update().get(pk=webhook.pk)
            sent += _sweep(locked, webhook.project)
    return sent


def _sweep(webhook: Webhook, project: Project) -> int:
    sent = 0
    high = start_position(project)
    if (
        WebhookEvent.COMPARISONS_COMPLETED in webhook.events
        and high > webhook.judgments_seen_through
    ):
        completed = (
            Comparison.objects.filter(project=project)
            .regular()
            .complete()
            .filter(
                judgments__id__gt=webhook.judgments_seen_through,
                judgments__id__lte=high,
                judgments__counted=True,
            )
            .distinct()
            .order_by("id")
            .values_list("external_id", flat=True)
        )
        ids = list(completed)
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            key = f"completed-{webhook.judgments_seen_through}-{high}-{start}"
            sent += len(
                _notify_one(
                    webhook,
                    WebhookEvent.COMPARISONS_COMPLETED,
                    {"count": len(batch), "external_ids": batch},
                    key=key,
                )
            )
    webhook.judgments_seen_through = max(high, webhook.judgments_seen_through)
    if WebhookEvent.PROJECT_COMPLETED in webhook.events:
        regular = Comparison.objects.filter(project=project).regular()
        total = regular.count()
        done = regular.complete().count()
        if total and done == total and not webhook.project_completed_sent:
            sent += len(
                _notify_one(
                    webhook,
                    WebhookEvent.PROJECT_COMPLETED,
                    {"comparisons": total, "complete": done},
                    key=f"project-completed-{high}",
                )
            )
            webhook.project_completed_sent = True
        elif done < total:
            webhook.project_completed_sent = False  # work was added: notify again when done
    webhook.save(update_fields=["judgments_seen_through", "project_completed_sent"])
    return sent


def _notify_one(webhook: Webhook, event: str, data: dict, *, key: str) -> list[WebhookDelivery]:
    from api.tasks import deliver_webhook  # the sender; api.tasks imports this module

    body = json.dumps(
        {
            "event": event,
            "project": webhook.project.slug,
            "created_at": timezone.now().isoformat(),
            "data": data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    delivery, created = WebhookDelivery.objects.get_or_create(
        webhook=webhook, key=key, defaults={"event": event, "body": body}
    )
    if not created:
        return []
    deliver_webhook.delay_on_commit(delivery.pk, 1)
    return [delivery]
