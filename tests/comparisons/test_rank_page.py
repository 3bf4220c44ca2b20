"""The rating page of a ranking project (/rate/<slug>/, rank.html) and its submit."""

from __future__ import annotations

import re

import pytest

from comparisons import queue
from comparisons.models import Assignment, Judgment, ProjectStatus, TaskType
from tests.comparisons._rate_helpers import ACTION_BUDGET, PAGE_BUDGET
from tests.factories import ComparisonFactory, ProjectFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def ranking_project(db, alice, bob):
    project = ProjectFactory(slug="rank-test", task_type=TaskType.RANKING)
    project.raters.add(alice, bob)
    return project


URL = "/rate/rank-test/"


def ranked(project, k=4, **fields):
    return ComparisonFactory(
        project=project,
        responses=[(f"model-{i}", f"Answer **{chr(97 + i)}**") for i in range(k)],
        **fields,
    )


def _lease(alice):
    return Assignment.objects.get(rater=alice, status="active")


def _shown(html: str) -> list[str]:
    """The canonical letter of each response, in the order the page shows them."""
    return re.findall(r"<p>Answer <strong>([a-i])</strong></p>", html)


def test_it_shows_every_response_in_the_leases_order_with_a_place_menu(
    alice_client, alice, ranking_project
):
    ranked(ranking_project, k=5)
    html = alice_client.get(URL).content.decode()
    lease = _lease(alice)
    assert _shown(html) == lease.display_order
    assert len(lease.display_order) == 5
    for n in range(1, 6):
        assert f'name="rank_{n}"' in html
        assert f"Response {n}" in html
    assert '<option value="5">5th</option>' in html
    assert 'id="rank-order"' in html
    assert "js/rank.js" in html
    assert "model-" not in html  # blind: no model names


def test_a_plain_post_stores_canonical_tiers_and_redirects(alice_client, alice, ranking_project):
    ranked(ranking_project)
    alice_client.get(URL)
    lease = _lease(alice)
    shown = lease.display_order
    # Response 1 best, Responses 2 and 3 tied, Response 4 last.
    r = alice_client.post(
        f"{URL}{lease.pk}/submit",
        {"rank_1": "1", "rank_2": "2", "rank_3": "2", "rank_4": "4", "rationale": "first is right"},
    )
    assert r.status_code == 302
    judgment = Judgment.objects.get()
    assert judgment.ranking == [[shown[0]], sorted(shown[1:3]), [shown[3]]]
    assert judgment.rationale == "first is right"
    assert judgment.duration_ms is not None


def test_an_incomplete_ranking_is_refused_in_screen_terms_keeping_input(
    alice_client, alice, ranking_project
):
    ranked(ranking_project)
    alice_client.get(URL)
    lease = _lease(alice)
    r = alice_client.post(
        f"{URL}{lease.pk}/submit", {"rank_1": "2", "rank_3": "1", "rationale": "kept"}, **HTMX
    )
    assert r.status_code == 422
    html = r.content.decode()
    assert "Give every response a place (Response 2, Response 4: none yet)." in html
    assert re.search(r'name="rank_1".*?<option value="2" selected>', html, re.S)
    assert "kept</textarea>" in html
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.status == "active"


def test_ties_are_refused_where_the_project_does_not_allow_them(
    alice_client, alice, ranking_project
):
    ranking_project.allow_tie = False
    ranking_project.save()
    ranked(ranking_project, k=3)
    alice_client.get(URL)
    lease = _lease(alice)
    r = alice_client.post(f"{URL}{lease.pk}/submit", {"rank_1": "1", "rank_2": "1", "rank_3": "2"})
    assert r.status_code == 422
    assert "does not allow ties" in r.content.decode()
    assert not Judgment.objects.exists()


def test_htmx_submit_answers_with_the_next_panel_and_a_double_submit_records_one(
    alice_client, alice, ranking_project
):
    ranked(ranking_project)
    ranked(ranking_project)
    alice_client.get(URL)
    lease = _lease(alice)
    answer = {"rank_1": "1", "rank_2": "2", "rank_3": "3", "rank_4": "4"}
    r = alice_client.post(f"{URL}{lease.pk}/submit", answer, **HTMX)
    assert r.status_code == 200
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="panel"')
    assert "<html" not in html
    nxt = _lease(alice)
    assert nxt.pk != lease.pk
    assert r["HX-Push-Url"] == f"{URL}?a={nxt.pk}"
    again = alice_client.post(f"{URL}{lease.pk}/submit", answer, **HTMX)
    assert again.status_code == 200
    assert Judgment.objects.count() == 1


def test_skip_works_as_on_the_pairwise_page(alice_client, alice, ranking_project):
    ranked(ranking_project)
    alice_client.get(URL)
    lease = _lease(alice)
    r = alice_client.post(f"{URL}{lease.pk}/skip", {"reason": "unclear"}, **HTMX)
    assert r.status_code == 200
    assert "Nothing to rank" in r.content.decode() or "All done" in r.content.decode()
    lease.refresh_from_db()
    assert lease.status == "skipped"


def test_another_raters_lease_is_a_404(client, bob, alice, ranking_project):
    ranked(ranking_project)
    lease = queue.next_assignment(alice, ranking_project)
    client.force_login(bob)
    r = client.post(
        f"{URL}{lease.pk}/submit", {"rank_1": "1", "rank_2": "2", "rank_3": "3", "rank_4": "4"}
    )
    assert r.status_code == 404
    assert not Judgment.objects.exists()


def test_llm_text_is_sanitized_and_the_page_has_no_inline_script_or_style(
    alice_client, ranking_project
):
    ComparisonFactory(
        project=ranking_project,
        responses=[
            ("m", "<script>alert(1)</script>"),
            ("n", "<img src=x onerror=alert(1)>"),
            ("o", "ok"),
        ],
    )
    r = alice_client.get(URL)
    csp = r["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    html = r.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag
    # No tag carries an inline handler: the <img onerror> arrives as escaped text.
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert " style=" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", html, re.S)
    assert len(forms) >= 3
    assert all("csrfmiddlewaretoken" in form for form in forms)


def test_the_paused_state(alice_client, ranking_project):
    ranking_project.status = ProjectStatus.PAUSED
    ranking_project.save()
    ranked(ranking_project)
    assert "This project is paused" in alice_client.get(URL).content.decode()


def test_page_and_submit_queries_do_not_grow_with_the_number_of_responses(
    transactional_db, alice, django_assert_max_data_queries
):
    from django.test import Client

    client = Client()
    client.force_login(alice)

    def measure(k: int) -> tuple[int, int]:
        project = ProjectFactory(slug=f"rank-{k}", task_type=TaskType.RANKING)
        project.raters.add(alice)
        for _ in range(3):
            ranked(project, k=k)
        url = f"/rate/rank-{k}/"
        client.get(url)  # take the lease; the counts below are a reload and a submit
        with django_assert_max_data_queries(PAGE_BUDGET) as page:
            client.get(url)
        lease = Assignment.objects.get(rater=alice, project=project, status="active")
        answer = {f"rank_{n}": str(n) for n in range(1, k + 1)}
        # The ranking lease counts the comparison's responses (its display order): one more.
        with django_assert_max_data_queries(ACTION_BUDGET + 1) as submit:
            r = client.post(f"{url}{lease.pk}/submit", answer, **HTMX)
        assert r.status_code == 200
        judgment = Judgment.objects.get(assignment=lease)
        assert judgment.ranking == [[key] for key in lease.display_order]
        return len(page), len(submit)

    small, large = measure(3), measure(9)
    assert small == large


def test_counts_come_from_the_rendered_text_as_on_the_pairwise_page(alice_client, ranking_project):
    ComparisonFactory(
        project=ranking_project,
        responses=[("m1", "Use `xs[::-1]`"), ("m2", "**Two** _words_"), ("m3", "Three")],
    )
    html = alice_client.get(URL).content.decode()
    assert "2 words · 12 characters" in html  # "Use xs[::-1]", not the Markdown's 14
    assert "2 words · 9 characters" in html  # "Two words", not "**Two** _words_"
