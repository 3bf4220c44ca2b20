"""Every kind of page, in a real browser, under the strict Content-Security-Policy.

A violation shows up two ways in Chromium: a `securitypolicyviolation` event in the page and a
console error. The test listens for both on every page (the event through a binding installed
before any page script runs), and also checks the policy and the other security headers on each
page's response, so a page that silently lost its policy fails as well.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Invite
from comparisons import queue
from comparisons.exports import create_export_job, run_export_job
from comparisons.metrics import compute_snapshot
from comparisons.models import ExportJob, ImportJob, JobStatus
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory
from tests.security_headers import header_problems

pytestmark = [pytest.mark.browser]

# Installed in every document before its own scripts; the binding reports to Python.
LISTEN_FOR_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__rhCspViolation({
    directive: e.effectiveDirective,
    blocked: e.blockedURI,
    sample: e.sample,
    source: e.sourceFile + ":" + e.lineNumber,
  });
});
"""


@pytest.fixture
def data(project, alice, bob, charlie, lead, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    comparisons = [
        ComparisonFactory(
            project=project,
            external_id=f"csp-{i}",
            responses=[
                ("model-x", f"**Bold** answer {i}\n\n```python\nprint({i})\n```"),
                ("model-y", f"| a | b |\n|---|---|\n| {i} | {i + 1} |"),
            ],
        )
        for i in range(6)
    ]
    for rater in (bob, charlie):
        for _ in range(3):
            queue.submit_judgment(queue.next_assignment(rater, project), choice="a")
    compute_snapshot(project)
    done = run_export_job(
        create_export_job(project=project, format="trl", requested_by=lead, options={}).pk
    )
    assert done.status == JobStatus.SUCCEEDED
    # A running job: its progress cell polls with htmx, so the export list runs htmx in the admin.
    ExportJob.objects.create(project=project, format="judgments", status=JobStatus.RUNNING)
    # Import jobs: one running (its cell polls), one rejected with its bad lines listed.
    ImportJob.objects.create(project=project, status=JobStatus.RUNNING, total_lines=9000)
    rejected = ImportJob.objects.create(
        project=project,
        status=JobStatus.FAILED,
        total_lines=9000,
        lines_read=9000,
        error_count=2,
        errors=[{"line": n, "message": "not valid JSON", "code": "invalid"} for n in (3, 7)],
    )
    _, token = Invite.issue(email="newcomer@example.com", invited_by=lead)
    return {
        "project": project,
        "comparison": comparisons[0],
        "job": done,
        "import_job": rejected,
        "token": token,
    }


class Watcher:
    """Collects CSP violations and header problems per page, for one report at the end."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.problems: list[str] = []

    def watch(self, page) -> None:
        page.context.expose_binding(
            "__rhCspViolation",
            lambda source, v: self.problems.append(
                f"{self._where(source['page'])}: violates {v['directive']} "
                f"(blocked {v['blocked'] or '-'}, sample {v['sample']!r}, at {v['source']})"
            ),
        )
        page.context.add_init_script(LISTEN_FOR_VIOLATIONS)
        page.on(
            "console",
            lambda m: (
                "Content Security Policy" in m.text
                and self.problems.append(f"{self._where(page)}: console: {m.text}")
            ),
        )

    def open(self, page, path: str) -> None:
        response = page.goto(self.base_url + path)
        page.wait_for_load_state("networkidle")
        if response.status != 200:  # an error page would not test the page meant
            self.problems.append(f"{path}: status {response.status}")
        for problem in header_problems(response.headers):
            self.problems.append(f"{path}: {problem}")

    def _where(self, page) -> str:
        return page.url.removeprefix(self.base_url)


def test_no_page_violates_the_content_security_policy(live_server, make_page, data, lead, alice):
    project, job = data["project"], data["job"]
    watcher = Watcher(live_server.url)

    # Signed out: the entrance pages.
    page = make_page()
    watcher.watch(page)
    for path in [
        reverse("account_login"),
        reverse("account_reset_password"),
        reverse("accept_invite", args=[data["token"]]),
        reverse("admin:login"),
    ]:
        watcher.open(page, path)

    # The lead: the admin pages they work in, and the dashboard.
    page = make_page()
    watcher.watch(page)
    log_in(page, live_server.url, lead.email, reverse("admin:index"))
    for path in [
        reverse("admin:index"),
        reverse("admin:app_list", args=["comparisons"]),
        reverse("admin:comparisons_project_add"),
        reverse("admin:comparisons_project_history", args=[project.pk]),
        reverse("admin:comparisons_project_import", args=[project.pk]),
        reverse("admin:comparisons_comparison_changelist"),
        reverse("admin:comparisons_comparison_change", args=[data["comparison"].pk]),
        reverse("admin:comparisons_judgment_changelist"),
        reverse("admin:comparisons_exportjob_change", args=[job.pk]),
        reverse("admin:comparisons_importjob_change", args=[data["import_job"].pk]),
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[alice.pk]),
        reverse("admin:password_change"),
        reverse("admin:accounts_invite_add"),
        reverse("project_dashboard", args=[project.slug]),
    ]:
        watcher.open(page, path)
    # The changelist's actions script: select every row.
    watcher.open(page, reverse("admin:comparisons_project_changelist"))
    page.check("#action-toggle")
    assert page.is_checked("input.action-select")
    # The change form's autocomplete (select2) opens its dropdown and loads raters.
    watcher.open(page, reverse("admin:comparisons_project_change", args=[project.pk]))
    page.click("#id_raters + .select2 .select2-selection")
    page.wait_for_selector(".select2-results__option")
    # The export list's progress cell polls the server with htmx.
    with page.expect_response(lambda r: "/progress" in r.url, timeout=30_000):
        watcher.open(page, reverse("admin:comparisons_exportjob_changelist"))
    # So does the import list's, for the running import.
    with page.expect_response(lambda r: "/imports/" in r.url, timeout=30_000):
        watcher.open(page, reverse("admin:comparisons_importjob_changelist"))

    # A rater: the project list and the rating page, with one judgment swapped in by htmx.
    page = make_page()
    watcher.watch(page)
    log_in(page, live_server.url, "alice@example.com", reverse("rate_project", args=[project.slug]))
    watcher.open(page, reverse("rate_index") + "?list=1")
    watcher.open(page, reverse("rate_project", args=[project.slug]))
    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    page.keyboard.press("Escape")
    current = page.get_attribute("#panel", "data-assignment")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "prev => document.getElementById('panel').getAttribute('data-assignment') !== prev",
        arg=current,
    )
    page.wait_for_load_state("networkidle")
    for path in [
        reverse("account_email"),
        reverse("account_change_password"),
        reverse("account_logout"),  # a GET shows the confirmation page
    ]:
        watcher.open(page, path)

    assert watcher.problems == [], "\n".join(watcher.problems)
