"""Run by test_postgres_restart.py in its own process, on a private PostgreSQL cluster that the
test created (DATABASE_URL): migrate, rate, restart the server between requests and in the
middle of a submit, and print what happened as JSON."""

from __future__ import annotations

import json
import os
import sys

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "raterhub.settings_test"
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from comparisons import queue  # noqa: E402
from comparisons.models import Judgment  # noqa: E402
from loadtest.services import PrivatePostgres  # noqa: E402
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory  # noqa: E402

HTMX = {"HTTP_HX_REQUEST": "true"}


class ProductionClient(Client):
    """The test client, with what Django's WSGI handler does at each request start and the test
    client leaves out: drop unusable connections and re-arm CONN_HEALTH_CHECKS."""

    def request(self, **request):
        close_old_connections()
        try:
            return super().request(**request)
        finally:
            close_old_connections()


def main() -> None:
    setup_test_environment()
    server = PrivatePostgres(os.environ["PRIVATE_PG_NAME"], int(os.environ["PRIVATE_PG_PORT"]))
    call_command("migrate", verbosity=0)
    rater = UserFactory(email="rater@example.com")
    project = ProjectFactory(slug="pg-restart")
    project.raters.add(rater)
    ComparisonFactory.create_batch(3, project=project)
    client = ProductionClient()
    client.force_login(rater)
    out: dict = {}

    out["page_before"] = client.get(f"/rate/{project.slug}/").status_code
    first = queue.next_assignment(rater, project)
    server.restart()  # between requests: the persistent connection is dead
    out["submit_after_restart"] = client.post(
        f"/rate/{project.slug}/{first.pk}/submit", {"choice": "1"}, **HTMX
    ).status_code

    second = queue.next_assignment(rater, project)
    real_submit = queue.submit_judgment

    def restart_then_submit(*args, **kwargs):
        server.restart()  # in flight: the submit's own connection is cut under it
        return real_submit(*args, **kwargs)

    url = f"/rate/{project.slug}/{second.pk}/submit"
    queue.submit_judgment = restart_then_submit
    response = client.post(url, {"choice": "2"}, **HTMX)
    queue.submit_judgment = real_submit
    out["submit_in_flight"] = response.status_code
    out["retry_after"] = response.headers.get("Retry-After")
    out["retry"] = client.post(url, {"choice": "2"}, **HTMX).status_code
    out["retry_again"] = client.post(url, {"choice": "2"}, **HTMX).status_code
    out["judgments_first"] = Judgment.objects.filter(assignment_id=first.pk).count()
    out["judgments_second"] = Judgment.objects.filter(assignment_id=second.pk).count()
    out["ready"] = client.get("/readyz").json()["checks"]["database"]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
