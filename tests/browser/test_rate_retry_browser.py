"""static/js/retry.js in a real browser: a submit whose answer is lost (503 or a dropped
connection) is sent again, and the judgment is recorded once."""

from __future__ import annotations

import pytest

from comparisons.models import Judgment
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory

pytestmark = [pytest.mark.browser]


def _new_panel(page, previous):
    page.wait_for_function(
        "prev => { const p = document.getElementById('panel');"
        " return p && p.getAttribute('data-assignment') !== prev; }",
        arg=previous,
        timeout=15000,
    )


@pytest.mark.parametrize("failure", ["503 after the commit", "connection dropped"])
def test_a_lost_submit_answer_is_retried_and_recorded_once(
    transactional_db, live_server, page, project, alice, failure
):
    ComparisonFactory.create_batch(3, project=project)
    log_in(page, live_server.url, "alice@example.com", f"/rate/{project.slug}/")
    first = page.get_attribute("#panel", "data-assignment")
    sent = []

    def lose_the_first_answer(route):
        sent.append(route.request.url)
        if len(sent) > 1:
            return route.continue_()
        if failure == "connection dropped":
            return route.abort("connectionreset")
        route.fetch()  # the server records the judgment; its answer never reaches the page
        return route.fulfill(status=503, body="The database is briefly unavailable.")

    page.route("**/submit", lose_the_first_answer)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    _new_panel(page, first)

    assert len(sent) == 2 and sent[0] == sent[1]  # the same request, sent again
    assert Judgment.objects.filter(assignment_id=int(first)).count() == 1
    assert Judgment.objects.count() == 1
