"""seed_demo: the demo project, its lead and raters, and the demo fixture it imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.models import LEADS_GROUP
from comparisons.imports import import_comparisons
from comparisons.models import Comparison, Project, RationaleMode, Response
from comparisons.rendering import render_markdown
from fixtures import make_demo
from tests.factories import ProjectFactory

FIXTURE = Path(django_settings.BASE_DIR) / "fixtures" / "demo_comparisons.jsonl"
PASSWORD = "raterhub-demo"
RATERS = ["rater1@example.com", "rater2@example.com", "rater3@example.com"]

# Live markup that must never come out of the renderer (escaped text like "&lt;script" is fine).
LIVE_TAG = re.compile(r"<(script|iframe|style|object|embed|form|meta|base|img|svg|input)\b", re.I)
LIVE_HANDLER = re.compile(r"<[^>]*\son\w+\s*=", re.I)
LIVE_SCHEME = re.compile(r"""<a\b[^>]*href\s*=\s*["']?\s*(javascript|data|vbscript):""", re.I)


@pytest.fixture
def debug_on(settings):
    # pytest-django runs tests with DEBUG off; seed_demo refuses that without --force.
    settings.DEBUG = True


def _fixture_lines() -> list[str]:
    return [line for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _state() -> dict:
    users = get_user_model().objects.order_by("email")
    return {
        "users": list(users.values_list("email", "password", "is_staff", "is_superuser")),
        "groups": sorted(
            get_user_model().groups.through.objects.values_list("user__email", "group__name")
        ),
        "projects": list(Project.objects.values_list("slug", "updated_at", "overlap")),
        "leads": sorted(Project.leads.through.objects.values_list("user__email", flat=True)),
        "raters": sorted(Project.raters.through.objects.values_list("user__email", flat=True)),
        "comparisons": Comparison.objects.count(),
        "responses": Response.objects.count(),
    }


@pytest.mark.django_db
def test_it_creates_the_demo_project_lead_raters_and_comparisons(debug_on, capsys):
    call_command("seed_demo")

    project = Project.objects.get(slug="demo")
    assert project.name == "Demo: assistant quality"
    assert project.overlap == 3
    assert project.gold_rate == 0.05
    assert project.allow_tie and project.allow_both_bad and project.use_strength
    assert project.criteria == ["helpfulness", "harmlessness", "honesty"]
    assert project.rationale == RationaleMode.OPTIONAL
    assert "**two candidate replies**" in project.instructions

    lead = get_user_model().objects.get(email="lead@example.com")
    assert lead.is_staff and not lead.is_superuser
    assert lead.check_password(PASSWORD)
    assert lead.groups.filter(name=LEADS_GROUP).exists()
    assert list(project.leads.all()) == [lead]

    raters = list(project.raters.order_by("email"))
    assert [r.email for r in raters] == RATERS
    assert all(not r.is_staff and r.check_password(PASSWORD) for r in raters)

    lines = _fixture_lines()
    assert project.comparisons.count() == len(lines)
    assert project.comparisons.gold().count() == sum('"gold"' in line for line in lines)
    assert not project.comparisons.regular().exclude(open_slots=3).exists()

    out = capsys.readouterr().out
    assert "DEMO ONLY" in out and PASSWORD in out and "rater3@example.com" in out
    assert "http://127.0.0.1:8000/admin/" in out


@pytest.mark.django_db
def test_the_links_name_the_port_make_demo_was_given(debug_on, capsys):
    call_command("seed_demo", "--port", "8123")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/admin/" in out and "http://127.0.0.1:8123/rate/" in out
    assert ":8000" not in out


@pytest.mark.parametrize("port", ["abc", "0", "70000", "80; echo hi"])
def test_the_demo_script_refuses_a_bad_port_before_starting_anything(port):
    script = Path(django_settings.BASE_DIR) / "scripts" / "run_demo.sh"
    done = subprocess.run(
        ["bash", str(script)], env={**os.environ, "PORT": port}, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "PORT must be a port number" in done.stderr
    assert "Celery worker" not in done.stdout  # nothing was started


def test_make_demo_passes_its_port_to_the_seed_and_the_server():
    # A dry run (-n): the commands make would run, none run.
    done = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "demo", "PORT=8123"],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "seed_demo --port 8123" in done.stdout
    assert "PORT=8123 bash scripts/run_demo.sh" in done.stdout


@pytest.mark.django_db
def test_a_second_run_changes_nothing(debug_on):
    call_command("seed_demo")
    before = _state()

    call_command("seed_demo")

    assert _state() == before
    assert Group.objects.filter(name=LEADS_GROUP).count() == 1


@pytest.mark.django_db
def test_it_repairs_a_changed_password_and_a_missing_membership(debug_on):
    call_command("seed_demo")
    rater = get_user_model().objects.get(email="rater2@example.com")
    rater.set_password("something-else")
    rater.save()
    Project.objects.get(slug="demo").raters.remove(rater)

    call_command("seed_demo")

    rater.refresh_from_db()
    assert rater.check_password(PASSWORD)
    assert Project.objects.get(slug="demo").raters.filter(pk=rater.pk).exists()


@pytest.mark.django_db
def test_it_refuses_to_run_with_debug_off(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo")

    assert not get_user_model().objects.exists()
    assert not Project.objects.exists()


@pytest.mark.django_db
def test_force_runs_with_debug_off(settings):
    settings.DEBUG = False

    call_command("seed_demo", force=True)

    assert Project.objects.get(slug="demo").comparisons.count() == len(_fixture_lines())


@pytest.mark.django_db
def test_a_bad_fixture_leaves_nothing_behind(debug_on, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_fixture_lines()[0] + "\n{not json\n", encoding="utf-8")

    with pytest.raises(CommandError, match="line 2"):
        call_command("seed_demo", fixture=str(bad))

    assert not get_user_model().objects.exists()
    assert not Project.objects.exists()
    assert not Comparison.objects.exists()


def test_the_fixture_is_what_the_generator_writes():
    assert make_demo.main(["--check"]) == 0, "run: python fixtures/make_demo.py"


def test_the_fixture_is_large_varied_and_has_hostile_lines():
    lines = _fixture_lines()
    rows = [json.loads(line) for line in lines]

    assert len(rows) >= 220
    assert len({r["external_id"] for r in rows}) == len(rows)
    assert sum("<script" in line for line in lines) >= 6
    assert sum("gold" in r for r in rows) >= 8
    assert sum(isinstance(r["prompt"], list) and len(r["prompt"]) >= 4 for r in rows) >= 10
    assert sum("```" in resp["content"] for r in rows for resp in r["responses"]) >= 40
    assert {resp["model"] for r in rows for resp in r["responses"]} >= {
        "atlas-7b",
        "borealis-13b",
        "cirrus-70b",
        "delta-mini",
    }
    assert {r["metadata"]["category"] for r in rows} >= {"code", "math", "writing", "hostile"}


@pytest.mark.django_db
def test_every_fixture_line_imports_cleanly():
    project = ProjectFactory(slug="fixture-check", allow_tie=True, allow_both_bad=True)
    lines = _fixture_lines()

    with FIXTURE.open(encoding="utf-8") as f:
        result = import_comparisons(project, f)

    assert result.ok, [str(e) for e in result.errors]
    assert result.created == len(lines)


def test_hostile_content_renders_without_live_markup():
    texts = []
    for row in map(json.loads, _fixture_lines()):
        prompt = row["prompt"]
        texts += [prompt] if isinstance(prompt, str) else [m["content"] for m in prompt]
        texts += [resp["content"] for resp in row["responses"]]
    hostile = [text for text in texts if "<script" in text]
    assert len(hostile) >= 6

    for text in texts:
        html = str(render_markdown(text))
        assert not LIVE_TAG.search(html), html
        assert not LIVE_HANDLER.search(html), html
        assert not LIVE_SCHEME.search(html), html


@pytest.mark.django_db
def test_it_creates_a_small_ranking_demo_for_the_same_people(debug_on, capsys):
    call_command("seed_demo")

    ranking = Project.objects.get(slug="demo-ranking")
    assert ranking.is_ranking
    assert [r.email for r in ranking.raters.order_by("email")] == RATERS
    assert [u.email for u in ranking.leads.all()] == ["lead@example.com"]
    lines = (FIXTURE.parent / "demo_ranking.jsonl").read_text(encoding="utf-8").splitlines()
    assert ranking.comparisons.count() == len(lines) >= 6
    counts = {c.responses.count() for c in ranking.comparisons.all()}
    assert min(counts) >= 3 and max(counts) >= 6
    gold = ranking.comparisons.gold().get()
    assert gold.gold_ranking == [["a", "d"], ["b"], ["c"]]
    assert "Ranking project 'demo-ranking'" in capsys.readouterr().out
