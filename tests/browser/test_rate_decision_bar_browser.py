"""The rating page's second pass in a real browser: the decision bar always on screen, three
keys per comparison on the demo, errors focused, scroll keys, Undo, the diff view, touch."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from comparisons.models import Choice, Comparison, Judgment, Project, RationaleMode
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO_PASSWORD = "raterhub-demo"
# About 1,200 words: long enough to scroll, short enough for the diff view.
LONG = "\n\n".join(f"Paragraph {i}: " + "words that go on and on " * 12 for i in range(20))

# [first choice in the viewport, submit in the viewport] for the panel on screen.
IN_VIEW = """() => {
  const inView = el => { if (!el) return false; const r = el.getBoundingClientRect();
    return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; };
  return [inView(document.querySelector('#judgment-form input[name=choice]').closest('label')),
          inView(document.querySelector('#judgment-form button[type=submit]'))];
}"""


def _assignment_id(page) -> str | None:
    return page.get_attribute("#panel", "data-assignment")


def _wait_for_new_panel(page, previous: str | None) -> None:
    page.wait_for_function(
        "prev => { const p = document.getElementById('panel');"
        " return p && p.getAttribute('data-assignment') !== prev; }",
        arg=previous,
    )


def _demo_login(page, base_url: str) -> None:
    call_command("seed_demo", force=True, verbosity=0)
    page.goto(f"{base_url}/accounts/login/?next=/rate/demo/")
    page.fill("input[name=login]", "rater1@example.com")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/rate/demo/*")


def test_on_every_demo_comparison_1_q_enter_is_a_whole_judgment_with_the_bar_in_view(
    transactional_db, live_server, page
):
    _demo_login(page, live_server.url)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    seen = 0
    while page.locator("#judgment-form").count():
        assert page.evaluate(IN_VIEW) == [True, True], f"bar out of view on panel {seen}"
        current = _assignment_id(page)
        for key in ("1", "q", "Enter"):
            page.keyboard.press(key)
        _wait_for_new_panel(page, current)
        seen += 1
    page.wait_for_selector("text=All done")
    demo = Project.objects.get(slug="demo")
    judgments = list(Judgment.objects.filter(project=demo, rater__email="rater1@example.com"))
    # Every comparison of the demo (gold ones on gold turns) came by and took three keys.
    assert seen == len(judgments) == Comparison.objects.filter(project=demo).count()
    for j in judgments:
        assert j.choice == (Choice.B if j.swapped else Choice.A) and j.strength == "slightly"
        assert j.criteria == dict.fromkeys(demo.criteria, j.choice)  # "same as overall"
    assert errors == []


def test_a_differing_criterion_takes_one_key_to_reach_and_one_to_set(
    transactional_db, live_server, page
):
    _demo_login(page, live_server.url)
    current = _assignment_id(page)
    for key in ("2", "w", "g", "1", "Enter"):  # G reaches the 3rd criterion (honesty)
        page.keyboard.press(key)
    _wait_for_new_panel(page, current)
    j = Judgment.objects.get(assignment_id=int(current))
    shown_1, shown_2 = ("b", "a") if j.swapped else ("a", "b")
    assert (j.choice, j.strength) == (shown_2, "clearly")
    assert j.criteria == {"helpfulness": shown_2, "harmlessness": shown_2, "honesty": shown_1}


def test_on_a_phone_the_submit_is_on_screen_without_overflow_or_key_hints(
    transactional_db, live_server, make_page
):
    page = make_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    _demo_login(page, live_server.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(IN_VIEW) == [True, True]
    assert page.locator("kbd:visible").count() == 0
    heights = page.evaluate(
        "() => [...document.querySelectorAll('.decision-bar .option, .decision-bar button')]"
        ".filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 44
    page.tap("#judgment-form .decision-bar label.option >> nth=0")
    page.tap("#judgment-form input[name=strength] >> xpath=.. >> nth=0")
    current = _assignment_id(page)
    page.tap("#judgment-form button[type=submit]")
    _wait_for_new_panel(page, current)
    assert Judgment.objects.filter(assignment_id=int(current)).exists()


@pytest.fixture
def long_project(project):
    Project.objects.filter(pk=project.pk).update(
        rationale=RationaleMode.REQUIRED, rationale_min_chars=10
    )
    ComparisonFactory(
        project=project,
        prompt=[{"role": "user", "content": "Tell me a long story."}],
        responses=[("m1", LONG), ("m2", "Short <script>window.__pwned = 1</script> " + LONG)],
    )
    ComparisonFactory(project=project)
    return project


def test_an_error_takes_the_focus_is_scrolled_to_and_announced(
    transactional_db, live_server, page, long_project, alice
):
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    current = _assignment_id(page)
    page.keyboard.press("Enter")  # no choice
    page.wait_for_selector("#choice-errors")
    page.wait_for_function("() => document.activeElement.name === 'choice'")
    assert page.get_attribute("#form-errors", "aria-live") == "assertive"
    assert page.inner_text("#form-errors").strip()
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # the rationale is required: its box is below the responses
    page.wait_for_selector(".rationale.invalid")
    # The focus moves once htmx has settled the new panel.
    page.wait_for_function("() => document.activeElement.id === 'id_rationale'")
    box = page.locator("#id_rationale").bounding_box()
    bar = page.locator("#decision-bar").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= bar["y"]  # not under the bar
    page.keyboard.type("Long enough now.")
    page.keyboard.press("Control+Enter")
    _wait_for_new_panel(page, current)
    assert Judgment.objects.get().rationale == "Long enough now."


def test_keys_scroll_each_response_and_the_cue_says_more_follows(
    transactional_db, live_server, page, long_project, alice
):
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    scroll_top = "n => document.querySelectorAll('#panel .response .rendered')[n].scrollTop"
    cue = "#panel .response:nth-child({}) .more-cue"
    assert page.is_visible(cue.format(1)) and page.is_visible(cue.format(2))
    page.keyboard.press("j")
    assert page.evaluate(scroll_top, 0) > 0 and page.evaluate(scroll_top, 1) == 0
    page.keyboard.press("n")
    page.keyboard.press("n")
    second = page.evaluate(scroll_top, 1)
    assert second > 0
    page.keyboard.press("m")
    assert page.evaluate(scroll_top, 1) < second
    page.keyboard.press("k")
    assert page.evaluate(scroll_top, 0) == 0
    for _ in range(60):
        page.keyboard.press("j")
    assert page.is_hidden(cue.format(1)) and page.is_visible(cue.format(2))
    page.keyboard.press("?")
    assert page.is_visible("dialog#shortcuts >> text=Scroll Response 1 down / up")


def test_d_shows_the_word_differences_escaped(
    transactional_db, live_server, page, long_project, alice
):
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    assert page.locator("#panel .diff").count() == 0  # computed only when asked for
    page.keyboard.press("d")
    page.wait_for_selector("#panel .response:nth-child(1) .diff", state="visible")
    assert page.is_hidden("#panel .response:nth-child(1) .rendered")
    marks = page.locator("#panel .diff mark").all_inner_texts()
    # The right-hand response only adds its first words; the rest is the same text.
    right_first = page.inner_text("#panel .response:nth-child(2) .diff").split("Paragraph 0")[0]
    assert "<script>" in right_first and any("script" in m for m in marks)
    assert page.locator("#panel .diff script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.get_attribute("#toggle-diff", "aria-pressed") == "true"
    page.keyboard.press("d")
    assert page.is_hidden("#panel .diff") and page.is_visible("#panel .rendered")
    page.keyboard.press("d")  # the second time from the page, without asking the server again
    assert page.is_visible("#panel .diff") and page.locator("#panel .response .diff").count() == 2


def test_z_reopens_the_last_judgment_and_the_revision_supersedes_it(
    transactional_db, live_server, page, project, alice
):
    ComparisonFactory.create_batch(3, project=project)
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    first = _assignment_id(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, first)
    second = _assignment_id(page)
    assert page.is_visible("#undo")
    page.keyboard.press("z")
    _wait_for_new_panel(page, second)
    assert _assignment_id(page) == first
    assert page.get_attribute("#judgment-form", "data-revising")
    assert page.is_checked("#judgment-form input[name=choice][value='1']")  # as it was left
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, first)
    assert _assignment_id(page) == second  # back to the comparison in hand
    page.wait_for_selector("text=replaces the earlier one")
    old, new = Judgment.objects.filter(assignment_id=int(first)).order_by("id")
    assert old.superseded_at is not None and new.superseded_at is None
    assert new.supersedes_id == old.pk and new.choice != old.choice
    assert Judgment.objects.current().filter(rater=alice).count() == 1


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_the_paused_state_is_above_the_fold(
    transactional_db, live_server, make_page, project, alice, width, height
):
    Project.objects.filter(pk=project.pk).update(status="paused", instructions=LONG)
    page = make_page(viewport={"width": width, "height": height})
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    box = page.locator(".state-paused").bounding_box()
    assert box["y"] + box["height"] <= height


def test_the_session_count_and_the_break_reminder(
    transactional_db, live_server, page, project, alice
):
    Project.objects.filter(pk=project.pk).update(break_reminder_minutes=20)
    ComparisonFactory.create_batch(3, project=project)
    log_in(page, live_server.url, "alice@example.com", "/rate/demo-test/")
    assert page.is_hidden("#session-stats") and page.is_hidden("#break-reminder")
    for _ in range(2):
        current = _assignment_id(page)
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        _wait_for_new_panel(page, current)
    # Shown once htmx has settled the panel.
    page.wait_for_function(
        "() => document.getElementById('session-stats').textContent.includes('session 2, avg ')"
    )
    assert page.is_visible("#session-stats")
    # Twenty-one minutes into the session (its start lives in sessionStorage), the reminder.
    page.evaluate(
        """() => { const k = 'raterhub:session:demo-test';
          const s = JSON.parse(sessionStorage.getItem(k));
          s.start -= 21 * 60000; sessionStorage.setItem(k, JSON.stringify(s)); }"""
    )
    page.reload()
    assert page.is_visible("#break-reminder") and "21 minutes" in page.inner_text("#break-reminder")
    assert "this session 2" in page.inner_text("#session-stats")  # the same session
    page.click("#dismiss-break")
    page.reload()
    assert page.is_hidden("#break-reminder")  # snoozed for another twenty minutes
