"""Rendering ahead of the raters: beat puts the HTML of each active project's next comparisons
in the shared "rendered" cache, so that a rating request's first showing renders nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.core.cache import caches

from comparisons import queue, rendering
from comparisons.models import Comparison, ProjectStatus
from comparisons.rendering import CACHE_VERSION
from comparisons.tasks import render_ahead_of_raters
from tests.factories import ComparisonFactory, ProjectFactory, bulk_comparisons


def _cached(text: str) -> bool:
    key = hashlib.sha256(text.encode()).hexdigest()
    return caches["rendered"].get(key, version=CACHE_VERSION) is not None


@pytest.fixture(autouse=True)
def _empty_rendered_cache():
    caches["rendered"].clear()


def _comparison(project, name: str, **fields) -> Comparison:
    return ComparisonFactory(
        project=project, responses=[("m1", f"*{name}* one"), ("m2", f"{name} two")], **fields
    )


def test_it_renders_the_next_comparisons_in_pick_order_once(project):
    last = _comparison(project, "last", priority=0)
    first = _comparison(project, "first", priority=5)
    second = _comparison(project, "second", priority=2)
    _comparison(project, "closed", priority=9, open_slots=0)
    _comparison(project, "gold", priority=9, gold_choice="a")

    # Two comparisons: the prompt and both responses of each.
    assert queue.render_ahead(project, limit=2) == 6
    for name in ("first", "second"):
        assert _cached(f"*{name}* one") and _cached(f"{name} two")
    assert _cached(f"Question {first.external_id}?") and _cached(f"Question {second.external_id}?")
    # Past the limit, closed and gold: left for their first showing.
    for name in ("last", "closed", "gold"):
        assert not _cached(f"{name} two")
    # What is already there is not rendered again; the next run reaches one further.
    assert queue.render_ahead(project, limit=2) == 0
    assert queue.render_ahead(project, limit=3) == 3
    assert _cached(f"Question {last.external_id}?")


def test_the_cache_holds_what_the_page_would_have_rendered(project):
    _comparison(project, "same", priority=1)
    queue.render_ahead(project, limit=1)
    key = hashlib.sha256(b"*same* one").hexdigest()
    assert caches["rendered"].get(key, version=CACHE_VERSION) == str(
        rendering.render_markdown("*same* one")
    )


def test_a_first_showing_after_it_renders_nothing(alice_client, project, monkeypatch):
    comparison = _comparison(project, "ahead", priority=1)
    queue.render_ahead(project, limit=10)
    texts = {"*ahead* one", "ahead two", comparison.prompt[0]["content"]}
    render = rendering._render

    def not_the_comparisons(text):
        # (The project's instructions are the page's own, rendered once per process.)
        assert text not in texts, f"rendered on the request path: {text!r}"
        return render(text)

    monkeypatch.setattr(rendering, "_render", not_the_comparisons)
    html = alice_client.get(f"/rate/{project.slug}/").content.decode()
    assert "<em>ahead</em> one" in html and "ahead two" in html


def test_its_reads_do_not_grow_with_the_comparisons(project, django_assert_max_num_queries):
    bulk_comparisons(project, 1200)
    # The ids, then per batch of RENDER_AHEAD_BATCH the comparisons and their responses.
    with django_assert_max_num_queries(1 + 2 * 3):
        rendered = queue.render_ahead(project, limit=1200)
    assert rendered > 1200  # prompts and responses (the factory's responses repeat)


def test_without_a_shared_cache_it_does_nothing(project, settings, django_assert_num_queries):
    settings.CACHES = {
        **settings.CACHES,
        "rendered": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    _comparison(project, "none", priority=1)
    with django_assert_num_queries(0):
        assert queue.render_ahead(project, limit=10) == 0


def test_beat_renders_ahead_for_active_projects_only(project, settings):
    from raterhub.celery import app

    paused = ProjectFactory(slug="paused-project", status=ProjectStatus.PAUSED)
    _comparison(project, "active", priority=1)
    _comparison(paused, "paused", priority=1)
    settings.RATERHUB_RENDER_AHEAD = 10
    assert render_ahead_of_raters() == 3
    assert _cached("active two") and not _cached("paused two")
    entry = settings.CELERY_BEAT_SCHEDULE["render-ahead"]
    assert entry["task"] == render_ahead_of_raters.name in app.tasks
