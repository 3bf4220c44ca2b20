"""A lead releases a rater's lease in the admin (1280x800) while the rater works on a phone
(390x844): in a one-rater project the comparison comes straight back to that rater, where it
used to end in "All done" with the comparison never judged."""

from __future__ import annotations

import pytest

from comparisons.models import Assignment, AssignmentStatus, Judgment
from tests.browser.conftest import log_in
from tests.factories import ComparisonFactory, ProjectFactory

pytestmark = [pytest.mark.browser]


def test_a_released_comparison_comes_back_to_the_only_rater(
    transactional_db, live_server, make_page, lead, alice
):
    project = ProjectFactory(slug="solo", overlap=1)
    project.raters.add(alice)
    project.leads.add(lead)
    ComparisonFactory(
        project=project,
        prompt=[{"role": "user", "content": "The only prompt"}],
        responses=[("model-x", "Alpha answer"), ("model-y", "Beta answer")],
    )
    phone = make_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(phone, live_server.url, alice.email, next_url="/rate/solo/")
    assert phone.get_by_text("The only prompt").is_visible()
    first = Assignment.objects.get(rater=alice)

    admin = make_page()
    log_in(admin, live_server.url, lead.email, next_url="/admin/comparisons/assignment/")
    admin.check(f"input[name=_selected_action][value='{first.pk}']")
    admin.select_option("select[name=action]", "release_active_leases")
    admin.click("button[name=index]")
    admin.get_by_text("Released 1 active lease(s)").wait_for()
    first.refresh_from_db()
    assert first.status == AssignmentStatus.RELEASED

    phone.reload()
    assert phone.get_by_text("The only prompt").is_visible()
    assert not phone.get_by_role("heading", name="All done").is_visible()
    phone.get_by_role("radio").first.check()
    phone.get_by_role("button", name="Submit").click()
    phone.get_by_role("heading", name="All done").wait_for()
    judgment = Judgment.objects.get()
    assert judgment.counted and judgment.assignment_id != first.pk
