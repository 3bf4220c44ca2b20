"""The review page in a real browser: a reviewer adjudicates three items by keyboard alone,
under the strict Content-Security-Policy."""

from __future__ import annotations

import pytest

from comparisons.models import Adjudication, Project
from tests.browser.conftest import log_in
from tests.browser.test_csp_browser import Watcher
from tests.comparisons._review_helpers import plant
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser]


def _lease_id(page) -> str | None:
    return page.get_attribute("#panel", "data-lease")


def _wait_for_next_item(page, previous: str | None) -> None:
    page.wait_for_function(
        "prev => { const p = document.getElementById('panel');"
        " return p && p.getAttribute('data-lease') !== prev; }",
        arg=previous,
    )


def test_a_reviewer_adjudicates_three_items_by_keyboard(
    transactional_db, live_server, page, project, lead
):
    Project.objects.filter(pk=project.pk).update(review_min_agreement=0.9)
    raters = [UserFactory(email=f"kb{i}@example.com") for i in range(3)]
    split = plant(project, ["a", "b", "tie"], raters=raters, external_id="kb-split")
    bad = plant(project, ["a", "b", "both_bad"], raters=raters, external_id="kb-bad")
    two_to_one = plant(project, "bba", raters=raters, external_id="kb-majority")
    watcher = Watcher(live_server.url)
    watcher.watch(page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server.url, lead.email, "/review/demo-test/")

    # 1: the left-hand response is better.
    page.wait_for_selector("text=kb-split")
    left_is_a = page.inner_text(".response:nth-child(1) .md").startswith("Answer A")
    first = _lease_id(page)
    page.keyboard.press("1")
    assert page.is_checked("input[name=verdict][value='1']")
    page.keyboard.press("Enter")
    _wait_for_next_item(page, first)

    # 2: reveal the models (M), exclude (X) with a note (N, type, Esc), save (Enter).
    page.wait_for_selector("text=kb-bad")
    assert not page.is_visible("text=model-a")
    second = _lease_id(page)
    page.keyboard.press("m")
    page.wait_for_selector(".response .model")
    assert page.inner_text(".response:nth-child(1) .model") in ("model-a", "model-b")
    page.keyboard.press("x")
    page.keyboard.press("n")
    page.keyboard.type("Prompt is unanswerable")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    _wait_for_next_item(page, second)

    # 3: confirm the raters' majority (C).
    page.wait_for_selector("text=kb-majority")
    third = _lease_id(page)
    page.keyboard.press("c")
    page.keyboard.press("Enter")
    _wait_for_next_item(page, third)
    page.wait_for_selector("text=Nothing to review")
    page.wait_for_load_state("networkidle")

    verdicts = {a.comparison_id: (a.choice, a.note) for a in Adjudication.objects.all()}
    assert verdicts == {
        split.pk: ("a" if left_is_a else "b", ""),
        bad.pk: ("exclude", "Prompt is unanswerable"),
        two_to_one.pk: ("b", ""),
    }
    assert watcher.problems == [] and errors == []
