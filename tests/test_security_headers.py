"""Every URL pattern of the project answers with the security headers, whatever the answer is.

The list of URLs is computed from the URL resolver (admin and allauth included), so a new URL is
covered without touching this file. Parameters are filled automatically where the pattern says
what they are (an admin page of a registered model takes that model's object; the admin's app
index takes each app label); every other parameterised pattern needs an entry in `_explicit`,
and the test fails for a pattern that has none, or for an entry whose pattern is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver, path, resolve, reverse

from accounts.models import Invite
from api.models import Webhook, WebhookAttempt, WebhookDelivery
from api.tokens import issue_token
from comparisons import queue, review
from comparisons.exports import create_export_job, run_export_job
from comparisons.models import Adjudication, Comparison, ImportJob
from raterhub import urls as root_urls
from tests.factories import ComparisonFactory, JudgmentFactory
from tests.security_headers import header_problems

# A path() parameter (<int:pk>, <token>) or a re_path() named group, one level of nesting deep.
PARAMETER = re.compile(r"<(?:\w+:)?(?P<a>\w+)>|\(\?P<(?P<b>\w+)>(?:[^()]|\([^()]*\))*\)")


def url_patterns(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(route, key) of every endpoint: the route joined as Django's resolver joins it, the key
    the namespaced URL name ("admin:index"), or the route for a pattern without a name."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(p.pattern).removeprefix("^") if prefix else str(p.pattern)
        if isinstance(p, URLResolver):
            inner = ":".join(filter(None, [namespace, p.namespace]))
            yield from url_patterns(p.url_patterns, route, inner)
        else:
            yield route, ":".join(filter(None, [namespace, p.name])) if p.name else route


def _fill(route: str, values: dict[str, str]) -> str:
    url = PARAMETER.sub(lambda m: str(values[m["a"] or m["b"]]), route)
    return "/" + url.replace("^", "").replace("$", "")


def _parameters(route: str) -> set[str]:
    return {m["a"] or m["b"] for m in PARAMETER.finditer(route)}


@pytest.fixture
def objects(project, alice, lead, settings, tmp_path):
    """One real object of every model the admin shows, and what the project's URLs take."""
    settings.MEDIA_ROOT = str(tmp_path)
    project.raters.add(lead)  # so the rating URLs reach their views for the lead, too
    judgment = JudgmentFactory(
        assignment__comparison=ComparisonFactory(project=project), assignment__rater=alice
    )
    ComparisonFactory(project=project)
    assignment = queue.next_assignment(lead, project)
    job = run_export_job(
        create_export_job(project=project, format="judgments-csv", requested_by=lead).pk
    )
    assert job.file, job.error
    EmailAddress.objects.create(user=lead, email=lead.email, primary=True, verified=True)
    invite, token = Invite.issue(email="newcomer@example.com", invited_by=lead)
    invite.projects.add(project)
    import_job = ImportJob.objects.create(project=project, requested_by=lead, total_lines=9)
    review.send_to_review(Comparison.objects.filter(project=project))
    review_lease = review.next_review(lead, project)
    Adjudication.objects.create(
        project=project, comparison=review_lease.comparison, reviewer=lead, choice="exclude"
    )
    api_token, _ = issue_token(user=lead, name="walk")
    webhook = Webhook.objects.create(project=project, url="https://example.org/hook")
    delivery = WebhookDelivery.objects.create(webhook=webhook, event="export.failed", key="k")
    WebhookAttempt.objects.create(delivery=delivery, number=1, status_code=500)
    return {
        "review_lease": review_lease,
        "api_token": api_token,
        "webhook": webhook,
        "project": project,
        "assignment": assignment,
        "job": job,
        "import_job": import_job,
        "token": token,
        "judgment": judgment,
    }


def _explicit(objects: dict) -> dict[str, list[dict]]:
    """Parameter values for the patterns whose parameters say nothing about what they are."""
    project, assignment, job = objects["project"], objects["assignment"], objects["job"]
    on_the_rating_page = [{"slug": project.slug, "pk": assignment.pk}]
    return {
        "admin:view_on_site": [
            {
                "content_type_id": ContentType.objects.get_for_model(project).pk,
                "object_id": project.pk,
            }
        ],
        "admin/(?P<url>.*)$": [{"url": "no-such-page/"}],
        "accept_invite": [{"token": objects["token"]}, {"token": "not-a-token"}],
        "account_confirm_email": [{"key": "not-a-key"}],
        "account_reset_password_from_key": [{"uidb36": "1", "key": "not-a-key"}],
        "rate_project": [{"slug": project.slug}, {"slug": "no-such-project"}],
        "rate_submit": on_the_rating_page,
        "rate_skip": on_the_rating_page,
        "rate_heartbeat": on_the_rating_page,
        "rate_revise": [{"slug": project.slug, "pk": objects["judgment"].pk}],
        "export_download": [{"pk": job.pk}],
        "export_manifest": [{"pk": job.pk}],
        "export_progress": [{"pk": job.pk}],
        "import_progress": [{"pk": objects["import_job"].pk}],
        "project_dashboard": [{"slug": project.slug}],
        "review_project": [{"slug": project.slug}, {"slug": "no-such-project"}],
        "review_submit": [{"slug": project.slug, "pk": objects["review_lease"].pk}],
        "review_skip": [{"slug": project.slug, "pk": objects["review_lease"].pk}],
        "project_dashboard_recompute": [{"slug": project.slug}],
        "project_dashboard_status": [{"slug": project.slug}],
        "project_dashboard_by_pk": [{"pk": project.pk}],
        # The token API (api/urls.py) answers JSON, with the same headers.
        "api:project_detail": [{"slug": project.slug}, {"slug": "no-such-project"}],
        "api:comparisons": [{"slug": project.slug}],
        "api:judgments": [{"slug": project.slug}],
        "api:exports": [{"slug": project.slug}],
        "api:metrics": [{"slug": project.slug}],
        "api:webhooks": [{"slug": project.slug}],
        "api:webhook_detail": [{"slug": project.slug, "pk": objects["webhook"].pk}],
        "api:export_detail": [{"pk": job.pk}],
        "api:export_download": [{"pk": job.pk}],
        "api:import_detail": [{"pk": objects["import_job"].pk}],
        "api:not_found": [{"rest": "v1/no-such-endpoint/"}],
        "api:token_revoke": [{"pk": objects["api_token"].pk}],
    }


def _automatic(route: str, parameters: set[str]) -> list[dict] | None:
    """Values for the admin's own patterns, or None when this pattern is not one of them."""
    admin_root = reverse("admin:index").lstrip("/")
    registered = set(admin.site._registry)
    if parameters == {"app_label"} and route.startswith(admin_root):
        return [{"app_label": label} for label in sorted({m._meta.app_label for m in registered})]
    for model in registered:
        model_root = f"{admin_root}{model._meta.app_label}/{model._meta.model_name}/"
        if route.startswith(model_root) and parameters in ({"object_id"}, {"id"}):
            obj = model._default_manager.order_by("pk").first()
            assert obj is not None, f"make a {model.__name__} in the fixture to fill {route}"
            return [dict.fromkeys(parameters, obj.pk)]
    return None


def every_url(objects: dict) -> list[str]:
    explicit = _explicit(objects)
    urls, unmapped, used = [], [], set()
    for route, key in url_patterns():
        parameters = _parameters(route)
        if key in explicit:
            fills = explicit[key]
            used.add(key)
        elif not parameters:
            fills = [{}]
        else:
            fills = _automatic(route, parameters)
        if fills is None:
            unmapped.append(f"{key} ({route})")
            continue
        for values in fills:
            url = _fill(route, values)
            # The filled URL reaches this very pattern, not the admin's catch-all or a 404.
            assert resolve(url).route == route, f"{url} does not resolve to {route}"
            urls.append(url)
    assert unmapped == [], f"add these patterns to _explicit: {unmapped}"
    assert used == set(explicit), f"stale entries in _explicit: {set(explicit) - used}"
    return urls


def test_every_url_sends_the_security_headers(objects, lead):
    urls = every_url(objects)
    anonymous, as_lead = Client(), Client()
    as_lead.force_login(lead)

    problems, lead_answers = [], {}
    for url in urls:
        for who, client in (("anonymous", anonymous), ("lead", as_lead)):
            response = client.get(url)
            problems += [
                f"{who} GET {url} ({response.status_code}): {problem}"
                for problem in header_problems(response.headers)
            ]
            if who == "lead":
                lead_answers[url] = (response.status_code, response["Content-Type"])
            if response.streaming:  # read to the end, which closes the file (the client's way)
                b"".join(response.streaming_content)

    assert problems == [], "\n".join(problems)
    # The walk met every kind of answer it claims to cover: a file and a JSON download among them.
    assert {200, 302, 404, 405} <= {status for status, _ in lead_answers.values()}
    job = objects["job"].pk
    assert lead_answers[f"/exports/{job}/download"] == (200, "text/csv")
    assert lead_answers[f"/exports/{job}/manifest"] == (200, "application/json")
    # The probes and the metrics (the test client comes from 127.0.0.1, an allowed network).
    assert lead_answers["/healthz"][0] == 200 and lead_answers["/readyz"][0] in (200, 503)
    assert lead_answers["/metrics"][0] == 200
    # The API's docs page (Swagger UI under the strict policy, see tests/api/test_docs.py) and
    # the schema it reads (a session may read it); the API itself wants a token.
    assert lead_answers["/api/docs/"] == (200, "text/html; charset=utf-8")
    assert lead_answers["/api/schema/"][0] == 200
    assert lead_answers["/api/v1/projects/"][0] == 401
    assert lead_answers["/accounts/tokens/"][0] == 200


def test_the_restricted_metrics_answer_sends_the_security_headers(db, settings):
    settings.METRICS_ALLOWED_NETWORKS = []
    response = Client(REMOTE_ADDR="192.0.2.7").get("/metrics")

    assert response.status_code == 404
    assert header_problems(response.headers) == []


def _new_view(request):  # pragma: no cover - never called: the walk fails before any request
    raise AssertionError


def test_a_new_url_with_a_parameter_the_walk_cannot_fill_fails_it(objects, settings):
    settings.ROOT_URLCONF = "tests.test_security_headers"

    with pytest.raises(AssertionError, match=r"add these patterns to _explicit: \['new_thing"):
        every_url(objects)


urlpatterns = [*root_urls.urlpatterns, path("new/<int:thing>/", _new_view, name="new_thing")]
