"""The lead's pages fit their screens: every admin list and the dashboard at 1280x800, the
dashboard at 390x844 too (its tables scroll inside their cards), and no chart label is cut.

Widths are measured by Chromium's layout, so a column that only clips with real fonts and
real data (long model names, e-mails, dates) fails here.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from accounts.models import Invite
from api.models import Webhook, WebhookDelivery
from api.tokens import issue_token
from comparisons import queue, review
from comparisons.exports import create_export_job, run_export_job
from comparisons.models import ExportJob, ImportJob, JobStatus
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# For each table of the page: its width and the width of the box that holds it.
TABLE_WIDTHS = """() => [...document.querySelectorAll('#content table, main table')].map(t => ({
    id: t.id || t.className,
    table: t.scrollWidth,
    container: t.parentElement.clientWidth,
}))"""

# Chart labels outside their SVG are cut off by it.
CUT_LABELS = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('text')].filter(t => {
        const r = t.getBoundingClientRect();
        return r.width && (r.right > box.right + 1 || r.left < box.left - 1 || r.top < box.top - 1);
    }).map(t => svg.getAttribute('aria-label') + ': ' + t.textContent);
})"""

# A dashboard card whose content is wider than the card spills out of it.
SPILLING_CARDS = """() => [...document.querySelectorAll('.dash-card, .dash-stat')]
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => (c.querySelector('h2, .dash-label') || c).textContent.trim())"""


@pytest.fixture
def root(transactional_db):
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def data(project, alice, bob, charlie, lead, root, settings, tmp_path):
    """Every list with rows as long as real ones: model names, e-mails, file names, dates."""
    settings.MEDIA_ROOT = str(tmp_path)
    project.name = "Assistant quality, December batch"
    project.criteria = ["helpfulness", "harmlessness", "honesty"]
    project.save()
    models = ("cirrus-70b-instruct-v2", "borealis-13b-chat", "atlas-7b", "delta-mini-2026")
    for i in range(8):
        ComparisonFactory(
            project=project,
            external_id=f"eval-set-3/long-answers/question-{i:04d}",
            responses=[(models[i % 4], f"Answer {i}"), (models[(i + 1) % 4], f"Other {i}")],
        )
    raters = [alice, bob, charlie]
    raters += [UserFactory(email=f"a.rather.long.rater.address.{i}@example.org") for i in range(2)]
    project.raters.add(*raters)
    for n, rater in enumerate(raters):
        for k in range(3):
            assignment = queue.next_assignment(rater, project)
            criteria = dict.fromkeys(project.criteria, "a")
            queue.submit_judgment(
                assignment, choice="ab"[(n + k) % 2], criteria=criteria, duration_ms=12_345
            )
    queue.next_assignment(alice, project)  # a live lease
    done = run_export_job(
        create_export_job(project=project, format="judgments-parquet", requested_by=lead).pk
    )
    assert done.status == JobStatus.SUCCEEDED, done.error
    ExportJob.objects.create(project=project, format="trl-kto", requested_by=lead)
    ImportJob.objects.create(
        project=project,
        requested_by=lead,
        filename="eval-set-3-long-answers-2026-12-01-final.jsonl",
        status=JobStatus.SUCCEEDED,
        total_lines=9000,
        lines_read=9000,
        created_count=9000,
    )
    invite, _token = Invite.issue(
        email="new.rater.with.a.long.address@example.org", invited_by=lead
    )
    invite.projects.add(project)
    issue_token(user=lead, name="nightly-export-pipeline", expires_at=None)
    webhook = Webhook.objects.create(
        project=project,
        url="https://hooks.example.org/raterhub/assistant-quality-december",
        events=["export.succeeded", "export.failed", "comparisons.completed"],
    )
    WebhookDelivery.objects.create(
        webhook=webhook, event="export.succeeded", key="export-1-succeeded", body="{}"
    )
    review.adjudicate(
        project.comparisons.first(), reviewer=lead, choice="b", note="Both miss the point."
    )
    return project


def _changelists() -> list[str]:
    return sorted(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    )


def _too_wide(page) -> list[str]:
    problems = [
        f"table {t['id']!r} is {t['table']} px in a {t['container']} px box"
        for t in page.evaluate(TABLE_WIDTHS)
        if t["table"] > t["container"] + 1
    ]
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    if width > viewport + 1:
        problems.append(f"the page is {width} px wide on a {viewport} px screen")
    return problems


def test_every_admin_list_and_the_dashboard_fit_1280_px(live_server, page, data, root):
    from comparisons.metrics import compute_snapshot

    compute_snapshot(data)
    log_in(page, live_server.url, root.email, reverse("admin:index"))
    problems, empty = [], []
    for path in [*_changelists(), reverse("project_dashboard", args=[data.slug])]:
        response = page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        assert response.status == 200, path
        if not page.locator("#result_list tbody tr, .dash-table tbody tr").count():
            empty.append(path)  # a list without rows measures nothing
        problems += [f"{path}: {p}" for p in _too_wide(page)]
    problems += [f"dashboard: label cut: {label}" for label in page.evaluate(CUT_LABELS)]
    assert problems == [], "\n".join(problems)
    assert empty == []


def test_the_dashboard_fits_a_phone_inside_its_cards(live_server, make_page, data, lead):
    from comparisons.metrics import compute_snapshot

    compute_snapshot(data)
    page = make_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    url = reverse("project_dashboard", args=[data.slug])
    log_in(page, live_server.url, lead.email, url)
    page.wait_for_load_state("networkidle")
    assert page.evaluate(SPILLING_CARDS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(CUT_LABELS) == []
    # Touch has no hover: the throughput cells print their counts.
    counts = page.locator("svg[aria-label='Judgments per rater per day'] text[aria-hidden=true]")
    assert counts.count() >= 1 and counts.first.text_content().strip() == "3"


def test_a_first_visit_computes_the_metrics_and_shows_them_without_a_reload(
    live_server, page, data, lead
):
    # No snapshot yet, judgments exist: the page says it is computing (tasks run eagerly here,
    # so the snapshot is ready by the first poll), then htmx brings the metrics in.
    url = reverse("project_dashboard", args=[data.slug])
    log_in(page, live_server.url, lead.email, url)
    assert page.locator("#dash-pending").is_visible()
    assert "Computing the metrics" in page.locator("#dash-pending").text_content()
    assert page.locator("text=No metrics yet").count() == 0
    page.wait_for_selector("text=Krippendorff", timeout=30_000)
    assert page.locator("#dash-pending").count() == 0
    assert page.url == live_server.url + url
    assert "just now" in page.locator(".dash-head time").text_content()
