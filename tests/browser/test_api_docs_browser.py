"""/api/docs/ in a real browser: Swagger UI (vendored) renders the schema under the strict CSP."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import log_in
from tests.browser.test_csp_browser import Watcher


@pytest.mark.browser
def test_swagger_ui_renders_under_the_csp(live_server, make_page, lead):
    watcher = Watcher(live_server.url)
    page = make_page()
    watcher.watch(page)
    log_in(page, live_server.url, lead.email, reverse("api:docs"))
    watcher.open(page, reverse("api:docs"))
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/api/v1/projects/{slug}/comparisons/" in p for p in paths), paths
    assert watcher.problems == [], "\n".join(watcher.problems)
