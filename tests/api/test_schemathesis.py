"""Schemathesis against the live schema (a live server, a lead's token): every operation gets
generated requests, bounded in examples and time; no answer is a 5xx, and every answer matches
the schema (status code, content type, body)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings

from api.models import Webhook
from api.tokens import issue_token
from comparisons.exports import create_export_job
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

EXAMPLES = 40  # per operation
BUDGET_SECONDS = 240  # for the whole run
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_generated_requests_without_5xx_and_as_its_schema_says(
    live_server, lead, project, alice, bob, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.RATERHUB_API_RATE_LIMIT = "100000/min"
    settings.RATERHUB_WEBHOOK_ALLOW_PRIVATE = False  # no generated URL is called
    for n in range(3):
        c = ComparisonFactory(project=project, external_id=f"s{n}")
        JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=alice, status="submitted"))
    export = create_export_job(project=project, format="trl", requested_by=lead)
    webhook = Webhook.objects.create(project=project, url="https://example.org/hook")
    # Generated path parameters mostly name nothing (a 404): half the cases are pinned to real
    # rows instead, so that the views' own validation meets the generated bodies and queries.
    real = {"slug": project.slug, "id": export.pk}
    _, key = issue_token(user=lead, name="schemathesis")
    auth = {"Authorization": f"Token {key}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", headers=auth)

    started = time.monotonic()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        if time.monotonic() - started > BUDGET_SECONDS:
            pytest.fail(f"over the time budget before {operation.label}")

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if case.path_parameters and hash(repr(case.body) + repr(case.query)) % 2:
                for name in case.path_parameters:
                    if name in real:
                        case.path_parameters[name] = real[name]
                if "webhooks/{id}" in case.path:
                    case.path_parameters["id"] = webhook.pk
            response = case.call(base_url=live_server.url, headers=auth, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # one report for every operation, not the first only
            failures.append(f"{operation.label}: {exc}"[:3000])
    assert failures == [], "\n\n".join(failures)
