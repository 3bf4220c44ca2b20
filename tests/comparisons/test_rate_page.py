"""/rate/<slug>/: the rating page."""

from __future__ import annotations

import re

import pytest

from comparisons import queue
from comparisons.models import Assignment, Project, ProjectStatus, RationaleMode
from tests.comparisons._rate_helpers import PAGE_BUDGET
from tests.factories import ComparisonFactory, ProjectFactory, bulk_comparisons

URL = "/rate/demo-test/"


def test_it_requires_login(client, project):
    r = client.get(URL)
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


def test_it_404s_for_non_members(client, project):
    from tests.factories import UserFactory

    client.force_login(UserFactory(email="mallory@example.com"))
    ComparisonFactory(project=project)
    assert client.get(URL).status_code == 404
    assert not Assignment.objects.exists()


def test_it_404s_for_unknown_projects(alice_client, project):
    assert alice_client.get("/rate/nope/").status_code == 404


def test_it_shows_the_prompt_and_two_blind_responses(alice_client, project):
    ComparisonFactory(
        project=project,
        prompt=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Explain **TCP** slow start."},
        ],
        responses=[("gpt-secret", "First answer"), ("claude-secret", "Second answer here")],
    )
    r = alice_client.get(URL)
    html = r.content.decode()
    assert r.status_code == 200
    assert "Response 1" in html and "Response 2" in html
    assert "gpt-secret" not in html and "claude-secret" not in html
    assert ">System<" in html and ">User<" in html
    assert "<strong>TCP</strong>" in html
    assert "2 words · 12 characters" in html  # "First answer"
    assert "3 words · 18 characters" in html
    assert html.index("First answer") < html.index("Second answer here")
    assert "<details" in html and "Pick the response" in html  # instructions, collapsible


def test_it_shows_responses_in_the_assignments_display_order(alice_client, bob, project):
    c = ComparisonFactory(project=project, responses=[("m1", "Canonical A"), ("m2", "Canonical B")])
    # bob's lease is the comparison's first (lease_count 0), so alice's is swapped.
    from comparisons import queue

    queue.next_assignment(bob, project)
    html = alice_client.get(URL).content.decode()
    lease = Assignment.objects.get(rater__email="alice@example.com", comparison=c)
    assert lease.swapped
    assert html.index("Canonical B") < html.index("Canonical A")


def test_a_plain_prompt_string_is_one_user_message(alice_client, project):
    ComparisonFactory(project=project, prompt="Just a string prompt")
    html = alice_client.get(URL).content.decode()
    assert ">User<" in html and "Just a string prompt" in html


def test_reloading_keeps_the_same_lease(alice_client, project):
    ComparisonFactory.create_batch(3, project=project)
    first = alice_client.get(URL).content.decode()
    second = alice_client.get(URL).content.decode()
    assert Assignment.objects.count() == 1
    pick = re.compile(r'data-assignment="(\d+)"')
    assert pick.search(first).group(1) == pick.search(second).group(1)


def test_it_shows_the_done_state(alice_client, project):
    r = alice_client.get(URL)
    assert r.status_code == 200
    assert "All done" in r.content.decode()
    assert 'id="judgment-form"' not in r.content.decode()


def test_it_shows_the_paused_state_without_leasing(alice_client, project):
    ComparisonFactory(project=project)
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    html = alice_client.get(URL).content.decode()
    assert "This project is paused" in html
    assert 'id="judgment-form"' not in html
    assert not Assignment.objects.exists()


def test_a_paused_project_still_shows_the_work_in_hand(alice_client, project):
    ComparisonFactory(project=project)
    alice_client.get(URL)
    lease = Assignment.objects.get()
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    html = alice_client.get(URL).content.decode()
    assert f'data-assignment="{lease.pk}"' in html
    assert 'id="judgment-form"' in html
    assert Assignment.objects.count() == 1


def test_it_shows_the_archived_state(alice_client, project):
    ComparisonFactory(project=project)
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.ARCHIVED)
    html = alice_client.get(URL).content.decode()
    assert "This project is closed" in html
    assert not Assignment.objects.exists()


def test_the_form_follows_the_projects_scheme(alice_client, db, alice):
    p = ProjectFactory(
        slug="strict",
        allow_tie=False,
        allow_both_bad=True,
        use_strength=True,
        criteria=["helpfulness", "harmlessness"],
        rationale=RationaleMode.REQUIRED,
        rationale_min_chars=20,
    )
    p.raters.add(alice)
    ComparisonFactory(project=p)
    html = alice_client.get("/rate/strict/").content.decode()
    assert 'value="tie"' not in html
    assert 'name="choice" value="both_bad"' in html
    assert 'name="strength" value="much"' in html
    assert "Helpfulness" in html and "Harmlessness" in html
    assert 'name="criterion_1" value="both_bad"' in html
    assert "at least 20 characters" in html


def test_the_rationale_box_is_absent_when_off(alice_client, project):
    Project.objects.filter(pk=project.pk).update(rationale=RationaleMode.OFF)
    ComparisonFactory(project=project)
    assert "<textarea" not in alice_client.get(URL).content.decode()


def test_the_page_sends_a_csp_without_inline_script_or_style(alice_client, project):
    ComparisonFactory(project=project, responses=[("m", "<script>alert(1)</script>"), ("n", "x")])
    r = alice_client.get(URL)
    csp = r["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    html = r.content.decode()
    # Every script is an external file; no inline handlers or style attributes anywhere.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert " style=" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_every_post_form_carries_a_csrf_token(alice_client, project):
    ComparisonFactory(project=project)
    html = alice_client.get(URL).content.decode()
    forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", html, re.S)
    assert len(forms) >= 3  # submit, skip, log out
    for form in forms:
        assert "csrfmiddlewaretoken" in form
    assert "X-CSRFToken" in html  # htmx requests send it from <body hx-headers>


# Query budgets run with real transactions (transactional_db), as in production: inside the
# test-wide transaction every atomic block would add SAVEPOINT/RELEASE statements of its own.


@pytest.mark.parametrize("state", ["lease", "done"])
def test_it_runs_a_constant_number_of_queries(
    transactional_db, alice_client, project, state, django_assert_max_data_queries
):
    if state == "lease":
        bulk_comparisons(project, 10)
        alice_client.get(URL)  # take the lease; the count below is a reload
    with django_assert_max_data_queries(PAGE_BUDGET) as few:
        alice_client.get(URL)
    bulk_comparisons(project, 1000)
    if state == "done":
        Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
        with django_assert_max_data_queries(PAGE_BUDGET) as few:
            alice_client.get(URL)
        bulk_comparisons(project, 1000)
    with django_assert_max_data_queries(PAGE_BUDGET) as many:
        alice_client.get(URL)
    assert len(few) == len(many)


def test_a_first_visit_that_leases_stays_within_the_query_budget(
    transactional_db, alice_client, project, django_assert_max_data_queries
):
    bulk_comparisons(project, 10)
    with django_assert_max_data_queries(PAGE_BUDGET) as few:
        alice_client.get(URL)
    Assignment.objects.all().delete()
    bulk_comparisons(project, 1000)
    with django_assert_max_data_queries(PAGE_BUDGET) as many:
        alice_client.get(URL)
    assert len(few) == len(many)
    assert Assignment.objects.count() == 1


def test_the_page_takes_rendered_responses_from_the_shared_cache(alice_client, project):
    """Each comparison is shown to several raters, usually by different workers: the page must
    use the HTML another worker already rendered (the "rendered" cache), and leave its own."""
    import hashlib

    from django.core.cache import caches

    from comparisons.rendering import CACHE_VERSION

    cache = caches["rendered"]
    cache.clear()
    ComparisonFactory(project=project, responses=[("m1", "*Fresh* one"), ("m2", "Cached two")])
    key = hashlib.sha256(b"Cached two").hexdigest()
    cache.set(key, "<p>rendered by another worker</p>", version=CACHE_VERSION)
    html = alice_client.get(URL).content.decode()
    assert "<p>rendered by another worker</p>" in html and "Cached two" not in html
    assert "<em>Fresh</em> one" in html
    fresh = hashlib.sha256(b"*Fresh* one").hexdigest()
    assert cache.get(fresh, version=CACHE_VERSION) == "<p><em>Fresh</em> one</p>\n"


def test_word_counts_come_from_the_rendered_text(alice_client, project):
    ComparisonFactory(
        project=project,
        responses=[("m1", "Use `xs[::-1]`"), ("m2", "**Two** _words_ and a [link](https://e.x)")],
    )
    html = alice_client.get(URL).content.decode()
    assert "2 words · 12 characters" in html  # "Use xs[::-1]", not the Markdown's 14
    assert "5 words · 20 characters" in html  # "Two words and a link"


def test_criteria_start_as_same_as_overall_with_a_key_each(alice_client, project):
    Project.objects.filter(pk=project.pk).update(criteria=["helpfulness", "honesty"])
    ComparisonFactory(project=project)
    html = alice_client.get(URL).content.decode()
    assert html.count('value="" checked> <kbd>0</kbd> Same as overall') == 2
    assert 'data-key="A"' in html and 'data-key="F"' in html
    assert "(C moves here" not in html


def test_it_says_how_many_are_left_for_the_rater(alice_client, bob, project):
    ComparisonFactory.create_batch(4, project=project)
    assert "<strong>4</strong> left for you" in alice_client.get(URL).content.decode()


def test_the_decision_bar_and_the_paused_state_come_first(alice_client, project):
    ComparisonFactory(project=project)
    html = alice_client.get(URL).content.decode()
    # The choice, its strength and the submit live in the sticky bar (static/css: .decision-bar).
    bar = html.split('id="decision-bar"', 1)[1].split("</form>", 1)[0]
    assert 'name="choice"' in bar and 'type="submit"' in bar
    assert 'id="lease-expired"' in bar  # the expired notice shows where the rater looks
    Project.objects.filter(pk=project.pk).update(status=ProjectStatus.PAUSED)
    Assignment.objects.update(status="skipped")
    html = alice_client.get(URL).content.decode()
    # Closed: the instructions no longer push the state below the fold (browser-tested too).
    assert '<details class="instructions">' in html and "This project is paused" in html


def test_the_favicon_is_linked_and_answered(alice_client, client, project):
    ComparisonFactory(project=project)
    html = alice_client.get(URL).content.decode()
    assert re.search(r'<link rel="icon" href="/static/favicon[.\w]*svg"', html)
    r = client.get("/favicon.ico")
    assert r.status_code == 302 and r["Location"].endswith(".svg")


def test_the_diff_view_is_computed_only_when_asked_for(alice_client, project):
    ComparisonFactory(
        project=project, responses=[("m1", "The cat sat."), ("m2", "The dog sat <b>down</b>.")]
    )
    html = alice_client.get(URL).content.decode()
    assert "<mark>" not in html and 'href="/rate/demo-test/?diff=1"' in html
    r = alice_client.get(URL + "?diff=1", HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert html.lstrip().startswith('<section id="panel"')
    assert "The <mark>dog</mark> sat <mark>&lt;b&gt;down&lt;/b&gt;</mark>." in html
    # Without JavaScript, the whole page with the diff shown.
    html = alice_client.get(URL + "?diff=1").content.decode()
    assert "<html" in html and "The <mark>cat</mark> sat." in html
    assert 'class="md scroll rendered" tabindex="0" aria-label="Response 1 text" hidden' in html
    assert 'aria-pressed="true"' in html and 'href="/rate/demo-test/"' in html


def test_the_code_stylesheet_comes_with_code_only(alice_client, project):
    ComparisonFactory(project=project, responses=[("m1", "plain"), ("m2", "text")])
    assert "css/pygments" not in alice_client.get(URL).content.decode()
    Assignment.objects.update(status="skipped")  # on to the next one
    ComparisonFactory(project=project, responses=[("m1", "```python\nx = 1\n```"), ("m2", "No")])
    html = alice_client.get(URL).content.decode()
    assert "css/pygments" in html and "<pre" in html


def test_the_left_count_stops_at_its_cap(alice_client, project, monkeypatch):
    # The count reads at most LEFT_COUNT_CAP + 1 rows, so a large project costs no more.
    monkeypatch.setattr(queue, "LEFT_COUNT_CAP", 3)
    ComparisonFactory.create_batch(6, project=project)
    alice = project.raters.get(email="alice@example.com")
    assert queue.standing(alice, project, with_left=True).left == 4
    html = alice_client.get(URL).content.decode()
    assert "<strong>3+</strong> left for you" in html
