"""The admin's import page: upload a JSONL file into a project, see the result or every error."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

from comparisons.models import Comparison, Response
from tests.factories import ComparisonFactory, LeadFactory, ProjectFactory


def _line(external_id: str, **extra) -> str:
    record = {
        "external_id": external_id,
        "prompt": [{"role": "user", "content": f"Question {external_id}?"}],
        "responses": [
            {"model": "model-a", "content": "First answer."},
            {"model": "model-b", "content": "Second answer."},
        ],
    }
    record.update(extra)
    return json.dumps(record)


def _upload(*lines: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(
        "comparisons.jsonl", ("\n".join(lines) + "\n").encode(), "application/jsonl"
    )


@pytest.fixture
def url(project):
    return f"/admin/comparisons/project/{project.pk}/import/"


def test_it_shows_the_upload_form(client, lead, url):
    client.force_login(lead)
    r = client.get(url)
    assert r.status_code == 200
    assert b'enctype="multipart/form-data"' in r.content


def test_it_imports_a_good_file(client, lead, project, url):
    client.force_login(lead)
    r = client.post(
        url, {"file": _upload(_line("q-1"), _line("q-2"), _line("q-3", gold={"choice": "b"}))}
    )
    assert r.status_code == 200
    assert b"Imported 3 comparisons" in r.content
    assert set(project.comparisons.values_list("external_id", flat=True)) == {"q-1", "q-2", "q-3"}
    assert Response.objects.filter(comparison__project=project).count() == 6
    assert project.comparisons.get(external_id="q-3").gold_choice == "b"


def test_a_bad_file_changes_nothing_and_every_error_is_shown(client, lead, project, url):
    ComparisonFactory(project=project, external_id="already-there")
    before = list(Comparison.objects.values_list("pk", flat=True))
    client.force_login(lead)
    r = client.post(
        url,
        {
            "file": _upload(
                _line("ok-1"),
                "{not json",
                _line("ok-2"),
                json.dumps(
                    {
                        "external_id": "one",
                        "prompt": "hi",
                        "responses": [{"model": "m", "content": "x"}],
                    }
                ),
                _line("already-there"),
            )
        },
    )
    assert r.status_code == 200
    assert list(Comparison.objects.values_list("pk", flat=True)) == before
    errors = r.context["result"].errors
    assert [e.line for e in errors] == [2, 4, 5]
    html = r.content.decode()
    assert "Nothing was imported" in html
    for error in errors:
        assert f"<td>{error.line}</td>" in html
        assert str(error.message).replace('"', "&quot;").replace("'", "&#x27;") in html


def test_skip_existing_imports_only_the_new_lines(client, lead, project, url):
    ComparisonFactory(project=project, external_id="q-1")
    client.force_login(lead)
    r = client.post(url, {"file": _upload(_line("q-1"), _line("q-2")), "skip_existing": "on"})
    assert r.status_code == 200
    assert r.context["result"].skipped == 1
    assert project.comparisons.count() == 2


def test_it_requires_a_file(client, lead, project, url):
    client.force_login(lead)
    r = client.post(url, {})
    assert r.status_code == 200
    assert r.context["form"].errors["file"]
    assert project.comparisons.count() == 0


def test_the_upload_itself_goes_to_the_importer_to_read_in_bounded_pieces(
    client, lead, project, url, monkeypatch
):
    seen = {}

    def fake_import(project, lines, **kwargs):
        from comparisons.imports import ImportResult

        # The file object, which the importer reads with readline(limit): not the upload's own
        # line iterator, which joins a line of any length in memory before anyone can check it.
        seen["file"] = isinstance(lines, UploadedFile)
        seen["lines"] = [lines.readline(), lines.readline(), lines.readline()]
        return ImportResult(created=2, total_lines=2)

    monkeypatch.setattr("comparisons.admin.import_comparisons", fake_import)
    client.force_login(lead)
    client.post(url, {"file": _upload(_line("a"), _line("b"))})
    assert seen["file"]
    assert seen["lines"] == [(_line("a") + "\n").encode(), (_line("b") + "\n").encode(), b""]


def test_a_line_over_the_size_limit_is_reported_like_any_bad_line(
    client, lead, project, url, settings
):
    settings.RATERHUB_IMPORT_MAX_LINE_BYTES = 1000
    numbers = json.dumps({"n": list(range(2000))})
    client.force_login(lead)

    r = client.post(url, {"file": _upload(_line("ok"), _line("big", metadata=json.loads(numbers)))})

    assert r.status_code == 200
    assert [(e.line, e.message) for e in r.context["result"].errors] == [
        (
            2,
            f"{len(_line('big', metadata=json.loads(numbers))):,} bytes long, over the limit of "
            "1,000 bytes per line (setting RATERHUB_IMPORT_MAX_LINE_BYTES)",
        )
    ]
    assert "RATERHUB_IMPORT_MAX_LINE_BYTES" in r.content.decode()
    assert project.comparisons.count() == 0


def test_other_leads_and_raters_cannot_use_the_import_page(client, alice, project, url):
    stranger = LeadFactory(email="stranger@example.com")
    ProjectFactory(slug="theirs").leads.add(stranger)
    client.force_login(stranger)
    r = client.post(url, {"file": _upload(_line("x"))})
    assert r.status_code == 302
    client.force_login(alice)
    r = client.post(url, {"file": _upload(_line("y"))})
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
    assert project.comparisons.count() == 0


def test_staff_without_change_permission_is_refused(client, project, url):
    viewer = LeadFactory(email="viewer@example.com")  # staff, but not in the leads group
    project.leads.add(viewer)
    client.force_login(viewer)
    assert client.get(url).status_code == 403


def test_gold_into_a_gold_rate_0_project_warns_on_the_import_and_the_project_page(
    client, lead, project, url, django_assert_max_num_queries
):
    assert project.gold_rate == 0
    client.force_login(lead)
    change = f"/admin/comparisons/project/{project.pk}/change/"
    assert "gold rate of 0" not in client.get(change).content.decode()

    r = client.post(url, {"file": _upload(_line("q-1"), _line("g-1", gold={"choice": "a"}))})

    html = r.content.decode()
    assert "Imported 2 comparisons" in html
    assert "1 gold comparison imported, but this project&#x27;s gold rate is 0" in html
    page = client.get(change).content.decode()
    assert "This project has 1 gold comparison but a gold rate of 0" in page
    project.gold_rate = 0.2
    project.save()
    assert "gold rate of 0" not in client.get(change).content.decode()


def test_extra_responses_are_noted_on_the_import_page(client, lead, project, url):
    three = [{"model": f"m{i}", "content": f"Answer {i}."} for i in range(3)]
    client.force_login(lead)
    r = client.post(url, {"file": _upload(_line("q-1"), _line("q-2", responses=three))})
    html = r.content.decode()
    assert "Imported 2 comparisons" in html
    assert "1 line has more than two responses (line 2)" in html
