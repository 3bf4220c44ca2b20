"""Import jobs: a stored upload imported by a Celery job, all or nothing, with progress."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from comparisons import imports
from comparisons.imports import (
    count_lines,
    create_import_job,
    import_comparisons,
    import_job_progress,
    import_job_result,
    run_import_job,
)
from comparisons.models import Comparison, ImportJob, JobStatus, Response
from tests.factories import ComparisonFactory


@pytest.fixture(autouse=True)
def media(settings, tmp_path_factory):
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


def _line(external_id: str, **fields) -> str:
    data = {
        "external_id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [
            {"model": "model-a", "content": f"A to {external_id}"},
            {"model": "model-b", "content": f"B to {external_id}"},
        ],
        **fields,
    }
    return json.dumps(data) + "\n"


def _file(*lines: str, name: str = "upload.jsonl") -> ContentFile:
    return ContentFile("".join(lines).encode(), name=name)


def _job(project, *lines: str, **kwargs) -> ImportJob:
    return create_import_job(project=project, source=_file(*lines), **kwargs)


BAD_FILE = [
    _line("q-1"),
    "{not json\n",
    _line("q-2", responses=[]),
    "\n",
    _line("q-1"),
    _line("q-3", metadata={"n": [1] * 40_000}),
    _line("q-4"),
]


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", 0),
        (b"\n", 1),
        (b"a\n", 1),
        (b"a\nb", 2),
        (b"a\n\n", 2),
        (b"a\r\nb\r\n", 2),
        # Across chunk boundaries (64 KB), ending on one and just after one.
        (b"x" * 65_535 + b"\n", 1),
        (b"x" * 65_536 + b"\nlast", 2),
    ],
)
def test_count_lines_counts_as_the_importer_reads_and_rewinds(data, lines):
    upload = SimpleUploadedFile("f.jsonl", data)

    assert count_lines(upload) == lines
    assert upload.read() == data


@pytest.mark.django_db
def test_creating_a_job_stores_the_upload_privately_under_a_random_name(project, lead):
    job = create_import_job(
        project=project,
        source=_file(_line("q-1"), _line("q-2"), name="../../etc/evil name.jsonl"),
        skip_existing=True,
        requested_by=lead,
    )

    assert job.status == JobStatus.QUEUED
    assert (job.filename, job.total_lines, job.skip_existing, job.requested_by) == (
        "evil name.jsonl",
        2,
        True,
        lead,
    )
    assert job.upload.name.startswith(f"imports/{project.slug}/")
    assert "evil" not in job.upload.name
    with default_storage.open(job.upload.name, "rb") as fh:
        assert fh.read() == (_line("q-1") + _line("q-2")).encode()
    assert Comparison.objects.count() == 0  # nothing is imported before the job runs


@pytest.mark.django_db
def test_a_job_imports_its_file_and_records_the_counts(project):
    ComparisonFactory(project=project, external_id="q-0")
    job = _job(project, _line("q-0"), _line("q-1"), _line("g-1", gold={"choice": "a"}), "\n")
    job.skip_existing = True
    job.save()

    job = run_import_job(job.pk)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.created_count, job.gold_count, job.skipped_count, job.error_count) == (2, 1, 1, 0)
    assert (job.lines_read, job.total_lines) == (4, 4)
    assert job.started_at and job.finished_at and not job.error
    assert set(project.comparisons.values_list("external_id", flat=True)) == {"q-0", "q-1", "g-1"}


@pytest.mark.django_db
def test_a_job_is_all_or_nothing_with_the_same_errors_as_an_import_within_the_page(project):
    expected = import_comparisons(project, _file(*BAD_FILE))
    assert expected.error_count == 4  # the fixture really is bad in four ways

    job = run_import_job(_job(project, *BAD_FILE).pk)

    assert job.status == JobStatus.FAILED
    assert import_job_result(job) == expected
    assert [(e["line"], e["code"]) for e in job.errors] == [
        (2, "invalid"),
        (3, "invalid"),
        (5, "invalid"),
        (6, "invalid"),
    ]
    assert (job.created_count, job.lines_read, job.error) == (0, 7, "")
    assert (Comparison.objects.count(), Response.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_a_job_keeps_the_first_errors_and_counts_them_all(project):
    lines = [_line("ok"), *["nope\n"] * (imports.MAX_REPORTED_ERRORS + 7)]

    job = run_import_job(_job(project, *lines).pk)

    assert job.error_count == imports.MAX_REPORTED_ERRORS + 7
    assert len(job.errors) == imports.MAX_REPORTED_ERRORS
    assert import_job_result(job).unreported_errors == 7


@pytest.mark.django_db
@pytest.mark.parametrize("good", [True, False])
def test_the_stored_upload_is_deleted_once_the_job_has_finished(project, good):
    job = _job(project, _line("q-1") if good else "oops\n")
    name = job.upload.name
    assert default_storage.exists(name)

    job = run_import_job(job.pk)

    assert job.status == (JobStatus.SUCCEEDED if good else JobStatus.FAILED)
    assert not default_storage.exists(name)
    assert ImportJob.objects.get(pk=job.pk).upload.name == ""


@pytest.mark.django_db
def test_a_job_that_breaks_fails_with_the_error_deletes_the_upload_and_imports_nothing(
    project, monkeypatch
):
    job = _job(project, _line("q-1"), _line("q-2"))
    name = job.upload.name

    def broken(project, lines, **kwargs):
        import_comparisons(project, lines, **kwargs)  # writes its rows, then the job breaks
        raise OSError("storage went away")

    monkeypatch.setattr(imports, "import_comparisons", broken)

    job = run_import_job(job.pk)

    assert job.status == JobStatus.FAILED
    assert job.error == "OSError: storage went away"
    assert Comparison.objects.count() == 0
    assert not default_storage.exists(name)


class _Killed(BaseException):
    """What a worker killed mid-job leaves: an exception no handler of the job catches."""


@pytest.mark.django_db
def test_a_rerun_of_a_killed_job_imports_exactly_once(project, monkeypatch):
    job = _job(project, _line("q-1"), _line("q-2"))
    real = imports.import_comparisons

    def killed_after_the_import(project, lines, **kwargs):
        real(project, lines, **kwargs)
        raise _Killed  # after the rows were written, before the job row was

    monkeypatch.setattr(imports, "import_comparisons", killed_after_the_import)
    with pytest.raises(_Killed):
        run_import_job(job.pk)

    # The rows went with the transaction that would have marked the job done.
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert Comparison.objects.count() == 0
    assert default_storage.exists(job.upload.name)

    monkeypatch.setattr(imports, "import_comparisons", real)
    job = run_import_job(job.pk)  # the broker's redelivery

    assert job.status == JobStatus.SUCCEEDED
    assert job.created_count == 2
    assert Comparison.objects.count() == 2


@pytest.mark.django_db
def test_a_redelivered_finished_job_does_nothing(project, django_assert_max_num_queries):
    job = run_import_job(_job(project, _line("q-1")).pk)
    assert job.status == JobStatus.SUCCEEDED
    before = ImportJob.objects.filter(pk=job.pk).values().get()

    # One read of the job; no import, no write.
    with django_assert_max_num_queries(2) as queries:
        again = run_import_job(job.pk)

    assert not [q for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert again.status == JobStatus.SUCCEEDED
    assert ImportJob.objects.filter(pk=job.pk).values().get() == before
    assert Comparison.objects.count() == 1


@pytest.mark.django_db
def test_a_finished_job_whose_upload_was_left_behind_deletes_it_when_redelivered(project):
    job = run_import_job(_job(project, _line("q-1")).pk)
    # As if the worker died between the commit and the deletion.
    leftover = default_storage.save(f"imports/{project.slug}/left.jsonl", _file("x\n"))
    ImportJob.objects.filter(pk=job.pk).update(upload=leftover)

    run_import_job(job.pk)

    assert not default_storage.exists(leftover)
    assert Comparison.objects.count() == 1


@pytest.mark.django_db
def test_an_unknown_job_id_is_ignored():
    assert run_import_job(123456) is None


@pytest.mark.django_db
def test_progress_counts_every_line_read(project, settings):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 2
    seen: list[int] = []

    import_comparisons(project, [_line("a"), "\n", _line("b"), "oops\n"], progress=seen.append)

    assert seen == [1, 2, 3, 4]


@pytest.mark.django_db
def test_progress_is_recorded_where_the_admin_reads_it_while_the_job_runs(project, monkeypatch):
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 0)
    job = _job(project, *[_line(f"q-{i}") for i in range(5)])
    assert import_job_progress(job) == 0
    real = imports.import_comparisons
    observed: list[tuple[str, int]] = []

    def watched(project, lines, *, progress, **kwargs):
        def progress_then_look(n: int) -> None:
            progress(n)
            # What the admin's status cell sees at this moment, from another request.
            row = ImportJob.objects.get(pk=job.pk)
            observed.append((row.status, import_job_progress(row)))

        return real(project, lines, progress=progress_then_look, **kwargs)

    monkeypatch.setattr(imports, "import_comparisons", watched)

    job = run_import_job(job.pk)

    assert observed == [("running", n) for n in range(1, 6)]
    assert (job.status, import_job_progress(job), job.lines_read) == ("succeeded", 5, 5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_job_at_once_import_it_once(project, monkeypatch):
    job = _job(project, *[_line(f"q-{i}") for i in range(3)])
    first_is_importing = threading.Event()
    real = imports.import_comparisons

    def slow(project, lines, *, progress, **kwargs):
        def progress_then_wait(n: int) -> None:
            progress(n)
            if n == 1 and not first_is_importing.is_set():
                first_is_importing.set()
                time.sleep(1.0)  # the second delivery arrives meanwhile

        return real(project, lines, progress=progress_then_wait, **kwargs)

    monkeypatch.setattr(imports, "import_comparisons", slow)
    statuses: dict[str, str] = {}

    def deliver(name: str) -> None:
        try:
            statuses[name] = run_import_job(job.pk).status
        finally:
            connection.close()

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    assert first_is_importing.wait(10)
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    first.join(20)
    second.join(20)

    # Without the job row's lock the second would re-import, find every id taken, and mark
    # the job failed over the first one's success.
    assert statuses == {"first": "succeeded", "second": "succeeded"}
    job.refresh_from_db()
    assert (job.created_count, job.error_count) == (3, 0)
    assert Comparison.objects.count() == 3


@pytest.mark.django_db
def test_a_cache_that_is_down_costs_the_progress_not_the_import(project, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(imports.cache, "set", down)

    job = run_import_job(_job(project, _line("q-1"), _line("q-2")).pk)

    assert (job.status, job.created_count) == ("succeeded", 2)
