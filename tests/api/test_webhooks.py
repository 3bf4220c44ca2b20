"""Webhooks against a real local HTTP receiver (http.server in a thread): signed bodies, retries
of a failing receiver with backoff, every attempt logged; the events; the URL rules."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from api.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery
from api.webhooks import (
    check_webhook_url,
    create_webhook,
    export_finished,
    retry_delay,
    sweep_completions,
    verify_signature,
)
from comparisons.exports import create_export_job, run_export_job
from comparisons.tasks import run_export
from tests.factories import ComparisonFactory


class Receiver:
    """Answers each POST with the next status of `statuses` (then 200), recording what came."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hook(project, receiver):
    return create_webhook(project=project, url=receiver.url, events=["export.succeeded"])


def _export(project, lead):
    return create_export_job(project=project, format="judgments", requested_by=lead)


def test_an_export_that_succeeds_is_posted_signed(
    hook, receiver, project, lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    job = _export(project, lead)
    with django_capture_on_commit_callbacks(execute=True):
        run_export(job.pk)  # the task, as a worker runs it

    (got,) = receiver.received
    assert verify_signature(hook.secret, got["body"], got["headers"]["X-RaterHub-Signature"])
    assert not verify_signature(
        "another secret", got["body"], got["headers"]["X-RaterHub-Signature"]
    )
    body = json.loads(got["body"])
    assert body["event"] == "export.succeeded" and body["project"] == "demo-test"
    assert body["data"]["export"]["id"] == job.pk
    assert body["data"]["export"]["download_url"].endswith(f"/api/v1/exports/{job.pk}/download")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    (attempt,) = WebhookAttempt.objects.all()
    assert attempt.status_code == 200 and attempt.ok


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_logged(
    hook,
    receiver,
    project,
    lead,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    settings.MEDIA_ROOT = str(tmp_path)
    receiver.statuses = [500, 500]
    delays = []
    from api import tasks

    real_apply_async = tasks.deliver_webhook.apply_async

    def record_countdown(args=None, kwargs=None, countdown=None, **options):
        if countdown is not None:  # a retry (the first send, after commit, has none)
            delays.append(countdown)
        return real_apply_async(args, kwargs, **options)  # eager: runs now

    monkeypatch.setattr(tasks.deliver_webhook, "apply_async", record_countdown)
    job = run_export_job(_export(project, lead).pk)
    with django_capture_on_commit_callbacks(execute=True):
        export_finished(job)

    assert len(receiver.received) == 3
    assert delays == [retry_delay(1), retry_delay(2)] and retry_delay(2) == 2 * retry_delay(1)
    attempts = list(
        WebhookAttempt.objects.order_by("number").values_list("number", "status_code", "ok")
    )
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 3)


def test_a_delivery_gives_up_after_the_last_attempt(
    hook, receiver, project, lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.RATERHUB_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [503, 503, 503]
    job = run_export_job(_export(project, lead).pk)
    with django_capture_on_commit_callbacks(execute=True):
        export_finished(job)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)
    assert len(receiver.received) == 2


def test_a_task_run_twice_notifies_once(
    hook, receiver, project, lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    job = run_export_job(_export(project, lead).pk)
    with django_capture_on_commit_callbacks(execute=True):
        export_finished(job)
        export_finished(job)  # a redelivered task finds the job finished and says so again
    assert len(receiver.received) == 1


def test_completions_are_batched_and_the_project_completion_sent_once(
    project, receiver, django_capture_on_commit_callbacks
):
    done = [ComparisonFactory(project=project, external_id=f"d{n}") for n in range(2)]
    ComparisonFactory(project=project, external_id="open")
    create_webhook(
        project=project,
        url=receiver.url,
        events=["comparisons.completed", "project.completed"],
    )
    from tests.factories import AssignmentFactory, JudgmentFactory, UserFactory

    def complete(comparison):
        for _ in range(3):
            rater = UserFactory()
            JudgmentFactory(
                assignment=AssignmentFactory(comparison=comparison, rater=rater, status="submitted")
            )  # the factory keeps the comparison's counters as the queue would

    for c in done:
        complete(c)
    with django_capture_on_commit_callbacks(execute=True):
        sweep_completions()
        sweep_completions()  # nothing new: nothing sent
    (batch,) = [json.loads(r["body"]) for r in receiver.received]
    assert batch["event"] == "comparisons.completed"
    assert batch["data"] == {"count": 2, "external_ids": ["d0", "d1"]}

    complete(project.comparisons.get(external_id="open"))
    with django_capture_on_commit_callbacks(execute=True):
        sweep_completions()
    events = [json.loads(r["body"])["event"] for r in receiver.received]
    assert events == ["comparisons.completed", "comparisons.completed", "project.completed"]


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/x", "javascript:alert(1)", "http://", "http://user:pw@example.org/"],
)
def test_only_http_urls_with_a_host(url, settings):
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(ValidationError):
        check_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://10.0.0.5/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/",
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_allowed(url, settings):
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError, match="RATERHUB_WEBHOOK_ALLOW_PRIVATE"):
        check_webhook_url(url)
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = True
    check_webhook_url(url)


def test_a_webhook_refused_at_send_time_fails_without_retrying(
    hook, receiver, project, lead, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    job = run_export_job(_export(project, lead).pk)
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = False  # e.g. its DNS now points inside
    with django_capture_on_commit_callbacks(execute=True):
        export_finished(job)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "private" in WebhookAttempt.objects.get().error
    assert receiver.received == []


def test_webhooks_through_the_api(as_lead, project, receiver, settings):
    url = "/api/v1/projects/demo-test/webhooks/"
    created = as_lead.post(
        url, {"url": receiver.url, "events": ["export.failed"]}, content_type="application/json"
    )
    assert created.status_code == 201
    assert len(created.json()["secret"]) == 64
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = False
    refused = as_lead.post(
        url,
        {"url": "http://127.0.0.1/x", "events": ["export.failed"]},
        content_type="application/json",
    )
    assert refused.status_code == 400 and "url" in refused.json()["fields"]
    bad_event = as_lead.post(
        url, {"url": "https://example.org/", "events": ["nope"]}, content_type="application/json"
    )
    assert bad_event.status_code == 400
    assert [w["id"] for w in as_lead.get(url).json()] == [created.json()["id"]]
    assert Webhook.objects.count() == 1


def test_the_admin_shows_a_lead_the_deliveries_and_attempts(
    hook, receiver, project, lead, client, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    receiver.statuses = [500]
    job = run_export_job(_export(project, lead).pk)
    with django_capture_on_commit_callbacks(execute=True):
        export_finished(job)
    client.force_login(lead)
    delivery = WebhookDelivery.objects.get()
    page = client.get(f"/admin/api/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert b"boom" in page.content and b"500" in page.content
    assert client.get("/admin/api/webhookdelivery/").status_code == 200


def test_a_lead_adds_a_webhook_in_the_admin_with_the_same_rules(client, lead, project, settings):
    client.force_login(lead)
    url = "/admin/api/webhook/add/"
    form = {"project": project.pk, "url": "https://example.org/in", "active": "on", "secret": "s"}
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = False

    bad_event = client.post(url, {**form, "events": '["nope"]'})
    private = client.post(url, {**form, "url": "http://10.1.2.3/", "events": '["export.failed"]'})
    assert bad_event.status_code == private.status_code == 200  # the form again, with errors
    assert b"Unknown event" in bad_event.content and b"private" in private.content
    assert not Webhook.objects.exists()

    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = True  # example.org resolves; no DNS needed here
    ok = client.post(url, {**form, "events": '["export.failed"]'})
    assert ok.status_code == 302
    assert Webhook.objects.get().created_by == lead


def test_the_webhook_list_query_count_is_constant(as_lead, project, django_assert_max_num_queries):
    url = "/api/v1/projects/demo-test/webhooks/"
    as_lead.get(url)
    for n in range(8):
        Webhook.objects.create(project=project, url=f"https://example.org/{n}")
    with django_assert_max_num_queries(4):
        assert len(as_lead.get(url).json()) == 8
