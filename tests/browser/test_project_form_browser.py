"""The project form in a browser: the instructions' preview button renders the text being edited
(htmx, under the CSP), and criteria rows save as the scheme's criteria with their help."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_preview_and_criteria_rows(live_server, page, project, lead, transactional_db):
    lead.is_superuser = True  # the flushed test database has no leads group permissions
    lead.save()
    dialogs, violations = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    change = reverse("admin:comparisons_project_change", args=[project.pk])
    log_in(page, live_server.url, lead.email, change)

    page.fill(
        "textarea[name=instructions]", "## Be fair\n\nRead **both**.\n\n<script>alert(1)</script>"
    )
    with page.expect_response(lambda r: "preview-instructions" in r.url):
        page.click("text=Preview changes")
    preview = page.locator("#rh-preview-body")
    preview.locator("h2", has_text="Be fair").wait_for()
    assert preview.locator("strong").text_content() == "both"
    assert "<script>alert(1)</script>" in preview.text_content()  # shown as text
    assert dialogs == [] and violations == []

    page.fill("input[name=criteria-0-name]", "honesty")
    page.fill("input[name=criteria-0-help]", "Facts and code are right.")
    page.click("input[name=_continue]")
    page.wait_for_selector("input[name=criteria-0-name][value=honesty]")
    project.refresh_from_db()
    assert project.criteria == ["honesty"]
    assert project.criteria_help == {"honesty": "Facts and code are right."}
    assert "Read **both**." in project.instructions
