from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from comparisons.imports import MAX_REPORTED_ERRORS
from comparisons.models import Comparison, Response


def _line(external_id: str, **fields) -> str:
    data = {
        "external_id": external_id,
        "prompt": [{"role": "user", "content": f"Question {external_id}?"}],
        "responses": [
            {"model": "model-a", "content": "Answer A"},
            {"model": "model-b", "content": "Answer B"},
        ],
        **fields,
    }
    return json.dumps(data) + "\n"


def _write(tmp_path: Path, *lines: str | bytes, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(line.encode() if isinstance(line, str) else line for line in lines))
    return path


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_comparisons", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _run_rejected(*args: str) -> tuple[CommandError, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_comparisons", *args, stdout=io.StringIO(), stderr=err)
    return excinfo.value, err.getvalue()


@pytest.mark.django_db
def test_it_imports_a_file_and_prints_the_counts(project, tmp_path):
    project.gold_rate = 0.1  # gold is served: nothing to warn about
    project.save()
    path = _write(tmp_path, _line("q-1"), "\n", _line("q-2", gold={"choice": "b"}))

    out, err = _run(project.slug, str(path))

    assert out.strip() == "Imported 2 comparisons (1 gold) into 'demo-test' from 3 lines."
    assert err == ""
    assert Comparison.objects.filter(project=project).count() == 2


@pytest.mark.django_db
def test_it_rejects_a_bad_file_lists_every_error_and_imports_nothing(project, tmp_path):
    path = _write(
        tmp_path,
        _line("q-1"),
        _line("q-2", responses=[{"model": "m", "content": "only one"}]),
        "{not json\n",
        _line("q-1"),
    )

    error, err = _run_rejected(project.slug, str(path))

    assert err.splitlines() == [
        "line 2: responses: needs at least two entries",
        "line 3: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        "line 4: external_id 'q-1': duplicate of line 1",
    ]
    assert str(error) == f"Rejected {path}: 3 bad line(s) of 4; nothing was imported."
    assert error.returncode != 0
    assert Comparison.objects.count() == 0


@pytest.mark.django_db
def test_a_non_utf8_line_is_a_line_error_not_a_crash(project, tmp_path):
    path = _write(tmp_path, _line("q-1"), b'{"external_id": "caf\xe9"}\n', _line("q-3"))

    _, err = _run_rejected(project.slug, str(path))

    assert err.splitlines() == ["line 2: not valid UTF-8 text"]
    assert Comparison.objects.count() == 0


@pytest.mark.django_db
def test_reimport_is_rejected_with_a_hint_and_skip_existing_skips(project, tmp_path):
    first = _write(tmp_path, _line("q-1"), _line("q-2"), name="first.jsonl")
    second = _write(tmp_path, _line("q-1"), _line("q-2"), _line("q-3"), name="second.jsonl")
    _run(project.slug, str(first))

    _, err = _run_rejected(project.slug, str(second))

    assert err.splitlines() == [
        "line 1: external_id 'q-1': already exists in this project",
        "line 2: external_id 'q-2': already exists in this project",
        "To skip comparisons the project already has, run again with --skip-existing.",
    ]
    assert Comparison.objects.count() == 2

    out, _ = _run(project.slug, str(second), "--skip-existing")

    assert "Imported 1 comparisons (0 gold)" in out
    assert "skipped 2 already present" in out
    assert Comparison.objects.count() == 3
    assert Response.objects.count() == 6


@pytest.mark.django_db
def test_max_content_chars_option_sets_the_limit(project, tmp_path):
    path = _write(tmp_path, _line("q-1"))  # "Question q-1?" is 13 characters

    _, err = _run_rejected(project.slug, str(path), "--max-content-chars", "12")
    assert err.splitlines() == ["line 1: prompt[0].content: 13 characters, over the limit of 12"]

    _run(project.slug, str(path), "--max-content-chars", "13")
    assert Comparison.objects.count() == 1

    error, _ = _run_rejected(project.slug, str(path), "--max-content-chars", "0")
    assert "--max-content-chars must be at least 1" in str(error)


@pytest.mark.django_db
def test_a_line_over_the_size_limit_is_a_line_error(project, tmp_path, settings):
    settings.RATERHUB_IMPORT_MAX_LINE_BYTES = 10_000
    huge = _line("big", metadata={"n": [1] * 1_000_000})
    path = _write(tmp_path, _line("q-1"), huge, _line("q-3"))

    error, err = _run_rejected(project.slug, str(path))

    assert err.splitlines() == [
        f"line 2: {len(huge) - 1:,} bytes long, over the limit of 10,000 bytes per line "
        "(setting RATERHUB_IMPORT_MAX_LINE_BYTES)"
    ]
    assert "1 bad line(s) of 3; nothing was imported" in str(error)
    assert Comparison.objects.count() == 0


@pytest.mark.django_db
def test_it_says_when_more_errors_exist_than_it_lists(project, tmp_path):
    path = _write(tmp_path, *["nope\n"] * (MAX_REPORTED_ERRORS + 5))

    error, err = _run_rejected(project.slug, str(path))

    lines = err.splitlines()
    assert len(lines) == MAX_REPORTED_ERRORS + 1
    assert (
        lines[-1] == f"... and 5 more bad lines (only the first {MAX_REPORTED_ERRORS} are listed)."
    )
    assert f"{MAX_REPORTED_ERRORS + 5} bad line(s)" in str(error)


@pytest.mark.django_db
def test_an_unknown_project_or_file_is_a_clear_error(project, tmp_path):
    path = _write(tmp_path, _line("q-1"))

    error, _ = _run_rejected("no-such-project", str(path))
    assert str(error) == "No project with slug 'no-such-project'."

    error, _ = _run_rejected(project.slug, str(tmp_path / "missing.jsonl"))
    assert str(error).startswith(f"Cannot read {tmp_path / 'missing.jsonl'}: No such file")
    assert Comparison.objects.count() == 0


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_non_zero_on_rejection_and_zero_on_success(project, tmp_path):
    # A separate process with committed data: the real exit status and a real transaction.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "raterhub.settings",
        "DATABASE_URL": _database_url(),
        "RATERHUB_IMPORT_BATCH_SIZE": "5",
    }
    good = [_line(f"q-{i}") for i in range(20)]
    bad = _write(tmp_path, *good, _line("late-bad", prompt=""), name="bad.jsonl")
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "import_comparisons"]

    rejected = subprocess.run(
        [*manage, project.slug, str(bad)], env=env, capture_output=True, text=True, check=False
    )

    assert rejected.returncode != 0
    assert "line 21: prompt: is empty" in rejected.stderr
    assert "nothing was imported" in rejected.stderr
    assert Comparison.objects.count() == 0  # four batches were written, then rolled back

    accepted = subprocess.run(
        [*manage, project.slug, str(_write(tmp_path, *good, name="good.jsonl"))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert accepted.returncode == 0, accepted.stderr
    assert "Imported 20 comparisons" in accepted.stdout
    assert Comparison.objects.filter(project=project).count() == 20


@pytest.mark.django_db
def test_warnings_go_to_stderr_and_the_import_succeeds(project, tmp_path):
    path = _write(tmp_path, _line("q-1"), _line("g-1", gold={"choice": "a"}))

    out, err = _run(project.slug, str(path))

    assert "Imported 2 comparisons (1 gold)" in out
    assert "Warning: 1 gold comparison imported, but this project's gold rate is 0" in err
    assert Comparison.objects.count() == 2


@pytest.mark.django_db
def test_a_truncated_line_names_the_end_of_the_line(project, tmp_path):
    path = _write(tmp_path, _line("q-1"), _line("q-2")[:40] + "\n")

    _, err = _run_rejected(project.slug, str(path))

    assert err.splitlines() == [
        "line 2: not valid JSON: the line ends (column 41) inside a string that starts at "
        "column 36; was it cut short?"
    ]
