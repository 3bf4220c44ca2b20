"""`manage.py export_preferences`: the same export, in-process, manifest written beside the file."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from django.core.management import CommandError, call_command

from tests.factories import AssignmentFactory, ComparisonFactory, JudgmentFactory

# These tests are about the files, not about which comparisons are complete.
pytestmark = pytest.mark.usefixtures("one_judgment_completes")


@pytest.fixture
def judged(project, alice, bob):
    c = ComparisonFactory(project=project, external_id="k1")
    for rater in (alice, bob):
        JudgmentFactory(assignment=AssignmentFactory(comparison=c, rater=rater, status="submitted"))
    return project


def test_it_writes_the_file_and_prints_the_manifest_path(judged, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "prefs.jsonl"

    call_command(
        "export_preferences",
        judged.slug,
        "--format",
        "trl",
        "--output",
        str(path),
        "--min-judgments",
        "2",
        "--exclude-rater",
        "charlie@example.com",
        stdout=out,
        stderr=err,
    )

    manifest_path = tmp_path / "prefs.jsonl.manifest.json"
    assert out.getvalue().strip() == str(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["options"]["min_judgments"] == 2
    assert manifest["options"]["exclude_raters"] == ["charlie@example.com"]
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["k1"]
    assert "1 rows from 2 judgments" in err.getvalue()
    # The file and its manifest share one mode, whatever the umask (was 0600 and 0644).
    modes = {stat.S_IMODE(os.stat(p).st_mode) for p in (path, manifest_path)}
    assert modes == {0o640}


def test_the_modes_hold_under_any_umask_and_over_an_old_file(judged, tmp_path):
    path = tmp_path / "prefs.jsonl"
    manifest_path = tmp_path / "prefs.jsonl.manifest.json"
    manifest_path.write_text("{}")
    manifest_path.chmod(0o666)
    old = os.umask(0o000)
    try:
        call_command(
            "export_preferences", judged.slug, "--format", "judgments", "--output", str(path),
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    finally:
        os.umask(old)
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in (path, manifest_path)} == {0o640}
    assert json.loads(manifest_path.read_text())["format"] == "judgments"


def test_the_help_stands_on_its_own(capsys):
    from comparisons.management.commands.export_preferences import Command
    from comparisons.models import ExportFormat

    Command().create_parser("manage.py", "export_preferences").print_help()
    text = capsys.readouterr().out
    assert "DESIGN.md" not in text and "README" not in text
    for fmt in ExportFormat:
        assert f"{fmt.value:<18} {fmt.label}" in text  # every format, with what it holds
    assert "--include-late" in text and "--output PATH" in text


def test_it_draws_progress_on_a_terminal(judged, tmp_path):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    call_command(
        "export_preferences",
        judged.slug,
        "--format=judgments-csv",
        f"--output={tmp_path / 'j.csv'}",
        stdout=io.StringIO(),
        stderr=err,
    )

    assert "\r[" in err.getvalue()
    assert "100.0% 2/2 judgments" in err.getvalue()


def test_bad_input_is_a_clear_error(judged, tmp_path):
    with pytest.raises(CommandError, match="no project"):
        call_command("export_preferences", "nope", "--format=trl", f"--output={tmp_path / 'x'}")
    with pytest.raises(CommandError, match="pairwise"):
        call_command(
            "export_preferences",
            judged.slug,
            "--format=judgments",
            "--min-agreement=0.5",
            f"--output={tmp_path / 'x'}",
        )
    assert list(tmp_path.iterdir()) == []
