"""The rating page in a real browser: keyboard-only rating, hostile content, no JavaScript."""

from __future__ import annotations

import pytest

from comparisons import queue
from comparisons.models import Judgment
from tests.browser.conftest import ARTIFACTS, log_in
from tests.factories import ComparisonFactory

pytestmark = [pytest.mark.browser]

PANEL_ID = "#panel"


def _assignment_id(page) -> str | None:
    return page.get_attribute(PANEL_ID, "data-assignment")


def _wait_for_new_panel(page, previous: str | None) -> None:
    page.wait_for_function(
        "prev => { const p = document.getElementById('panel');"
        " return p && p.getAttribute('data-assignment') !== prev; }",
        arg=previous,
    )


def _make_comparisons(project, n: int) -> list:
    return [
        ComparisonFactory(
            project=project,
            external_id=f"kb-{i}",
            responses=[("model-x", f"Alpha answer {i}"), ("model-y", f"Beta answer {i}")],
        )
        for i in range(n)
    ]


def test_a_rater_rates_with_the_keyboard_alone(
    transactional_db, live_server, page, project, alice, bob
):
    _make_comparisons(project, 6)
    # bob takes and skips the first three, so alice sees those swapped (lease_count is odd).
    for _ in range(3):
        queue.skip_assignment(queue.next_assignment(bob, project), reason="setup")

    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    keys = ["1", "2", "3", "4", "2"]
    expected = {}
    for key in keys:
        current = _assignment_id(page)
        left = page.inner_text(".response:nth-child(1) .md")
        left_is_a = left.startswith("Alpha")
        canonical = {
            "1": "a" if left_is_a else "b",
            "2": "b" if left_is_a else "a",
            "3": "tie",
            "4": "both_bad",
        }[key]
        expected[int(current)] = canonical
        page.keyboard.press(key)
        shown = {"1": "1", "2": "2", "3": "tie", "4": "both_bad"}[key]
        assert page.is_checked(f"#judgment-form input[name=choice][value='{shown}']")
        page.keyboard.press("Enter")
        _wait_for_new_panel(page, current)

    # Skip the sixth with S, which leaves the done state.
    current = _assignment_id(page)
    page.keyboard.press("s")
    _wait_for_new_panel(page, current)
    page.wait_for_selector("text=All done")
    assert "/rate/demo-test/" in page.url

    got = {j.assignment_id: j.choice for j in Judgment.objects.filter(rater=alice)}
    assert got == expected
    assert Judgment.objects.filter(rater=alice, swapped=True).count() == 3
    assert all(j.duration_ms is not None for j in Judgment.objects.filter(rater=alice))
    skipped = alice.assignments.get(status="skipped")
    assert skipped.pk == int(current)
    assert errors == []


def test_shortcuts_help_and_validation_message(transactional_db, live_server, page, project, alice):
    _make_comparisons(project, 2)
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    page.keyboard.press("Escape")
    assert not page.is_visible("#shortcuts")
    current = _assignment_id(page)
    # Enter with no choice: the panel comes back with a message, same comparison, text kept.
    page.keyboard.press("r")
    page.keyboard.type("Reasoning kept on error")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Choose which response is better")
    assert _assignment_id(page) == current
    assert page.input_value("textarea[name=rationale]") == "Reasoning kept on error"
    # Ctrl+Enter inside the rationale submits once a choice is made.
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.keyboard.press("Control+Enter")
    _wait_for_new_panel(page, current)
    assert Judgment.objects.get().rationale == "Reasoning kept on error"


def test_a_script_payload_does_not_execute(transactional_db, live_server, page, project, alice):
    ComparisonFactory(
        project=project,
        responses=[
            (
                "m1",
                "<script>window.__pwned = 1; alert('xss')</script>\n\n<img src=x onerror=\"alert('img')\">",
            ),
            ("m2", "[click me](javascript:alert('link'))\n\n<style>body{display:none}</style>"),
        ],
    )
    dialogs, console_errors = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    page.wait_for_selector(".response")
    page.wait_for_timeout(300)  # give any injected handler the chance to fire (not an assertion)
    if page.is_visible("text=click me"):  # a stripped href leaves plain text or a dead link
        page.click("text=click me")
    assert dialogs == []
    assert console_errors == []
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".response img, .response script, .response style").count() == 0
    assert page.is_visible(".response")  # the <style> did not hide the page


def test_the_page_works_without_javascript(
    transactional_db, live_server, make_page, project, alice
):
    _make_comparisons(project, 2)
    page = make_page(java_script_enabled=False)
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    first = _assignment_id(page)
    page.click("button:has-text('Submit')")  # no choice: the server says so
    page.wait_for_selector("text=Choose which response is better")
    page.check("#judgment-form input[name=choice][value='tie']")
    page.click("button:has-text('Submit')")
    page.wait_for_load_state()
    assert _assignment_id(page) not in (None, first)
    page.fill("#skip-reason", "No JS skip")
    page.click("button[form=skip-form]")
    page.wait_for_selector("text=All done")
    assert Judgment.objects.get().choice == "tie"
    assert alice.assignments.get(status="skipped").skip_reason == "No JS skip"


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_layout_side_by_side_and_stacked(
    transactional_db, live_server, make_page, project, alice, width, height
):
    ComparisonFactory(
        project=project,
        prompt=[{"role": "user", "content": "Write a Python function that reverses a list."}],
        responses=[
            (
                "m1",
                "Use slicing:\n\n```python\ndef rev(xs):\n    return xs[::-1]\n```\n\n| approach | cost |\n|---|---|\n| slice | O(n) |",
            ),
            (
                "m2",
                "## Two ways\n\n1. `reversed(xs)`\n2. `xs.reverse()` (in place)\n\n"
                + "More detail. " * 80,
            ),
        ],
    )
    page = make_page(viewport={"width": width, "height": height})
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"rate-{width}x{height}.png"))
    page.screenshot(path=str(ARTIFACTS / f"rate-{width}x{height}-full.png"), full_page=True)
    one = page.locator(".response").nth(0).bounding_box()
    two = page.locator(".response").nth(1).bounding_box()
    if width >= 1000:
        assert abs(one["y"] - two["y"]) < 1 and two["x"] > one["x"] + one["width"] - 1
    else:
        assert two["y"] >= one["y"] + one["height"] - 1
    # No horizontal page scroll at phone width: long lines scroll inside their box.
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_network_error_keeps_the_form_and_a_retry_records_once(
    transactional_db, live_server, page, project, alice
):
    _make_comparisons(project, 2)
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    current = _assignment_id(page)
    # The request reaches the server (the judgment is recorded) but the answer never arrives.
    page.route("**/submit", lambda route: (route.fetch(), route.abort("internetdisconnected")))
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.keyboard.type("Typed before the network dropped")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#net-error", state="visible")
    assert _assignment_id(page) == current
    assert page.input_value("textarea[name=rationale]") == "Typed before the network dropped"
    assert page.is_checked("input[name=choice][value='2']")
    # static/js/retry.js sends the same submit again by itself once the network is back.
    page.unroute("**/submit")
    _wait_for_new_panel(page, current)
    assert page.is_hidden("#net-error")
    j = Judgment.objects.get()  # the retry did not record a second one
    assert j.rationale == "Typed before the network dropped"
    assert j.assignment_id == int(current)
