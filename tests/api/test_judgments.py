"""GET /api/v1/projects/<slug>/judgments/: the judgments export's fields, cursor pages, since=."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.utils import timezone

from comparisons.exports import pseudonym
from comparisons.exports.rows import JUDGMENT_COLUMNS
from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

URL = "/api/v1/projects/demo-test/judgments/"


def judge(project, rater, **fields):
    c = ComparisonFactory(project=project)
    return JudgmentFactory(
        assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"), **fields
    )


def test_each_judgment_has_the_export_fields(as_lead, project, alice):
    j = judge(project, alice, choice="b", criteria={"honesty": "a"}, flags=["unsafe"])

    (item,) = as_lead.get(URL).json()["results"]

    assert list(item) == list(JUDGMENT_COLUMNS)
    assert item["judgment_id"] == j.pk and item["choice"] == "b"
    assert item["rater"] == pseudonym(project.pk, alice.pk)  # never the e-mail
    assert item["criteria"] == {"honesty": "a"} and item["flags"] == ["unsafe"]


def test_pages_follow_the_cursor_and_since_filters(as_lead, project, alice, bob):
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=2), tick=False):
        old = judge(project, alice)
    new = [judge(project, alice), judge(project, bob), judge(project, alice)]

    ids, url = [], f"{URL}?page_size=2"
    while url:
        page = as_lead.get(url).json()
        ids += [j["judgment_id"] for j in page["results"]]
        url = page["next"]
    assert ids == [old.pk, *[j.pk for j in new]]

    since = (start - timedelta(hours=1)).isoformat()
    recent = as_lead.get(URL, {"since": since}).json()["results"]
    assert [j["judgment_id"] for j in recent] == [j.pk for j in new]
    assert as_lead.get(URL, {"since": "yesterday"}).status_code == 400
    assert as_lead.get(URL, {"since": "2026-02-30"}).status_code == 400


def test_rows_added_during_a_pull_neither_shift_nor_repeat_a_page(as_lead, project, alice, bob):
    a, b = judge(project, alice), judge(project, bob)
    first = as_lead.get(f"{URL}?page_size=1").json()
    added = judge(project, alice)
    second = as_lead.get(first["next"]).json()
    third = as_lead.get(second["next"]).json()
    pages = [[j["judgment_id"] for j in p["results"]] for p in (first, second, third)]
    assert pages == [[a.pk], [b.pk], [added.pk]]
    assert third["next"] is None


def test_the_query_count_is_constant(as_lead, project, alice, django_assert_max_num_queries):
    as_lead.get(URL)
    for _ in range(15):
        judge(project, alice)
    # Token, project, adjudications in force, the page, its comparisons' models.
    with django_assert_max_num_queries(6):
        response = as_lead.get(URL)
    assert len(response.json()["results"]) == 15


def test_since_with_any_offset_is_read_in_utc(as_lead, project, alice):
    judge(project, alice)
    # PostgreSQL refuses a -17:36 offset; the value is compared in UTC instead.
    assert as_lead.get(URL, {"since": "0004-06-17T20:02:41-17:36"}).status_code == 200
    assert as_lead.get(URL, {"since": "0001-01-01T00:00:00+05:00"}).status_code == 400


def test_the_rows_are_the_judgments_exports_own(as_lead, project, alice, bob, tmp_path):
    import json

    from comparisons.exports import export_preferences

    judge(project, alice, choice="tie", rationale='Both "fine"\nreally', criteria={"x": "b"})
    judge(project, bob, choice="a", flags=["cannot_judge"])
    path = tmp_path / "j.jsonl"
    # The pull has every judgment; the export's default is complete comparisons only.
    export_preferences(project, "judgments", path, include_incomplete=True)

    exported = [json.loads(line) for line in path.read_text().splitlines()]
    assert as_lead.get(URL).json()["results"] == exported
