"""Request ids in JSON logs, and a lost database answered with a retryable 503."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError

from comparisons import queue
from comparisons.models import Judgment
from tests.factories import ComparisonFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def json_log():
    """The production JSON handler (settings.LOGGING's formatter and filter) into a buffer."""
    config = settings.LOGGING
    stream = io.StringIO()
    formatter = logging.config.DictConfigurator({"version": 1}).configure_formatter(
        config["formatters"]["json"]
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    from ops.logs import RequestIdFilter

    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("raterhub.request")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_each_request_logs_one_json_line_with_its_request_id(client, json_log):
    response = client.get("/healthz", headers={"X-Request-ID": "req-0123456789"})

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert response["X-Request-ID"] == "req-0123456789"
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-0123456789"
    assert line["level"] == "INFO" and line["logger"] == "raterhub.request"
    assert (line["method"], line["path"], line["status"], line["route"]) == (
        "GET", "/healthz", 200, "healthz",
    )  # fmt: skip
    assert isinstance(line["duration_ms"], float)


def test_a_lost_database_during_a_submit_is_a_503_to_retry(alice_client, project, alice):
    ComparisonFactory.create_batch(2, project=project)
    lease = queue.next_assignment(alice, project)
    url = f"/rate/{project.slug}/{lease.pk}/submit"

    with mock.patch.object(
        queue, "submit_judgment", side_effect=OperationalError("server closed the connection")
    ):
        failed = alice_client.post(url, {"choice": "1"}, **HTMX)

    assert failed.status_code == 503
    assert failed["Retry-After"] == "1"
    assert not Judgment.objects.exists()
    # The page sends the same request again: recorded once.
    assert alice_client.post(url, {"choice": "1"}, **HTMX).status_code == 200
    assert alice_client.post(url, {"choice": "1"}, **HTMX).status_code == 200
    assert Judgment.objects.filter(assignment=lease).count() == 1
