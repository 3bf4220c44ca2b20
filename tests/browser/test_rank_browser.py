"""The ranking page in a real browser: keyboard-only ranking with a tie, drag-and-drop, no JS."""

from __future__ import annotations

import pytest

from comparisons.models import Assignment, Judgment, TaskType
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory, ProjectFactory

pytestmark = [pytest.mark.browser]

URL = "/rate/rank-b/"


@pytest.fixture
def ranking_project(transactional_db, alice):
    project = ProjectFactory(slug="rank-b", task_type=TaskType.RANKING)
    project.raters.add(alice)
    for i in range(2):
        ComparisonFactory(
            project=project,
            external_id=f"rk-{i}",
            responses=[(f"model-{k}", f"Answer {k} to {i}") for k in "abcd"],
        )
    return project


def _lease(alice) -> Assignment:
    return Assignment.objects.get(rater=alice, status="active")


def _order_text(page) -> str:
    return " ".join(page.inner_text("#rank-order").split())


def test_a_rater_ranks_four_responses_with_the_keyboard_alone_tying_two(
    live_server, page, ranking_project, alice
):
    # CSP violations (an inline style set by script, say) are collected in the page.
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.effectiveDirective + ' ' + e.blockedURI));"
    )
    log_in(page, live_server.url, "alice@example.com", URL)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.wait_for_selector(".rank-hint-keys:not([hidden])")
    lease = _lease(alice)
    shown = lease.display_order
    assert page.inner_text("#rank-grid .rank-card:nth-child(1) .md").startswith(
        f"Answer {shown[0]}"
    )

    page.keyboard.press("2")
    assert _order_text(page) == "1st Response 2"
    page.keyboard.press("Enter")  # not all placed: nothing is sent
    assert "Place every response first (3 left)" in page.inner_text("#rank-status")
    page.keyboard.press("3")
    page.keyboard.press("=")
    page.keyboard.press("1")  # ties with Response 3
    page.keyboard.press("4")
    page.keyboard.press("Backspace")  # takes Response 4 back
    assert _order_text(page) == "1st Response 2 2nd Response 3 = Response 1"
    assert page.input_value("#id_rank_4") == ""
    page.keyboard.press("4")
    assert _order_text(page) == "1st Response 2 2nd Response 3 = Response 1 3rd Response 4"
    # The selects (what is posted) follow the bar.
    assert [page.input_value(f"#id_rank_{n}") for n in range(1, 5)] == ["2", "1", "2", "3"]
    page.keyboard.press("u")  # rate.js's flag shortcut still works here
    assert page.is_checked("input[name=flags][value=unsafe]")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "prev => document.getElementById('panel').getAttribute('data-assignment') !== prev",
        arg=str(lease.pk),
    )
    judgment = Judgment.objects.get(assignment=lease)
    assert judgment.ranking == [[shown[1]], sorted([shown[0], shown[2]]), [shown[3]]]
    assert judgment.flags == ["unsafe"]
    assert judgment.duration_ms and judgment.duration_ms > 0
    # The next panel starts empty and takes keys again.
    assert _order_text(page) == "Your order appears here, best first."
    page.keyboard.press("1")
    assert _order_text(page) == "1st Response 1"
    assert errors == []
    assert page.evaluate("window.__csp") == []


def test_drag_and_drop_builds_the_order_too(live_server, page, ranking_project, alice):
    log_in(page, live_server.url, "alice@example.com", URL)
    page.wait_for_selector(".rank-hint-keys:not([hidden])")
    lease = _lease(alice)
    shown = lease.display_order
    page.drag_and_drop("#resp-4 header", "#rank-order")
    page.drag_and_drop("#resp-2 header", "#rank-order")
    page.drag_and_drop("#resp-1 header", "#rank-order .tier:nth-child(2)")  # ties with 2
    page.drag_and_drop("#resp-3 header", "#rank-order")
    assert _order_text(page) == "1st Response 4 2nd Response 2 = Response 1 3rd Response 3"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "prev => document.getElementById('panel').getAttribute('data-assignment') !== prev",
        arg=str(lease.pk),
    )
    judgment = Judgment.objects.get(assignment=lease)
    assert judgment.ranking == [[shown[3]], sorted([shown[0], shown[1]]), [shown[2]]]


def test_without_javascript_the_place_menus_rank(live_server, make_page, ranking_project, alice):
    page = make_page(java_script_enabled=False)
    log_in(page, live_server.url, "alice@example.com", URL)
    lease = _lease(alice)
    shown = lease.display_order
    for n, place in zip(range(1, 5), ["4", "1", "2", "2"], strict=True):
        page.select_option(f"#id_rank_{n}", place)
    page.click("#judgment-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}{URL}")
    judgment = Judgment.objects.get(assignment=lease)
    assert judgment.ranking == [[shown[1]], sorted([shown[2], shown[3]]), [shown[0]]]


def test_the_place_menus_drive_the_bar_with_javascript_too(
    live_server, page, ranking_project, alice
):
    log_in(page, live_server.url, "alice@example.com", URL)
    page.wait_for_selector(".rank-hint-keys:not([hidden])")
    page.select_option("#id_rank_3", "4")  # kept as picked, not renumbered
    assert page.input_value("#id_rank_3") == "4"
    assert _order_text(page) == "1st Response 3"
    page.keyboard.press("Enter")
    assert "Place every response first (3 left)" in page.inner_text("#rank-status")
    page.select_option("#id_rank_1", "1")
    assert _order_text(page) == "1st Response 1 2nd Response 3"
    assert page.inner_text("#rank-status") == "2 of 4 still to place"  # the stale message went
