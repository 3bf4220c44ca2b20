from __future__ import annotations

import io
import json

import pytest

from comparisons.imports import MAX_REPORTED_ERRORS, LineError, import_comparisons
from comparisons.models import Comparison, Response
from tests.factories import ComparisonFactory, ProjectFactory


def _line(external_id: str = "q-1", **fields) -> str:
    data = {
        "external_id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [
            {"model": "model-a", "content": f"Answer A to {external_id}"},
            {"model": "model-b", "content": f"Answer B to {external_id}"},
        ],
    }
    data.update(fields)
    return json.dumps({k: v for k, v in data.items() if v is not _DROP}) + "\n"


_DROP = object()  # a field value meaning "leave the field out"


def _lines(n: int, start: int = 0) -> list[str]:
    return [_line(f"q-{i}") for i in range(start, start + n)]


def _counts() -> tuple[int, int]:
    return Comparison.objects.count(), Response.objects.count()


@pytest.mark.django_db
def test_it_imports_a_string_prompt_as_one_user_message(project):
    result = import_comparisons(project, [_line("q-1", prompt="Explain TCP slow start.")])

    assert result.ok
    assert (result.created, result.skipped, result.gold, result.total_lines) == (1, 0, 0, 1)
    comparison = Comparison.objects.get(project=project, external_id="q-1")
    assert comparison.prompt == [{"role": "user", "content": "Explain TCP slow start."}]
    assert comparison.open_slots == project.overlap == 3
    assert comparison.gold_choice is None
    assert comparison.priority == 0
    assert comparison.metadata == {}
    assert [(r.position, r.model_name, r.content) for r in comparison.responses.all()] == [
        (0, "model-a", "Answer A to q-1"),
        (1, "model-b", "Answer B to q-1"),
    ]


@pytest.mark.django_db
def test_it_imports_a_chat_metadata_priority_and_more_than_two_responses(project):
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]
    responses = [{"model": f"m{i}", "content": f"{i + 3}"} for i in range(3)]
    line = _line(
        "chat-1", prompt=chat, responses=responses, metadata={"source": "set-3"}, priority=7
    )

    result = import_comparisons(project, [line])

    assert result.ok and result.created == 1
    comparison = Comparison.objects.get(external_id="chat-1")
    assert comparison.prompt == chat
    assert comparison.metadata == {"source": "set-3"}
    assert comparison.priority == 7
    assert list(comparison.responses.values_list("position", "model_name", "content")) == [
        (0, "m0", "3"),
        (1, "m1", "4"),
        (2, "m2", "5"),
    ]


@pytest.mark.django_db
def test_gold_comparisons_keep_their_answer_and_take_no_open_slots(project):
    result = import_comparisons(
        project, [_line("g-1", gold={"choice": "both_bad"}), _line("g-2", gold={"choice": "a"})]
    )

    assert result.ok and (result.created, result.gold) == (2, 2)
    assert dict(Comparison.objects.values_list("external_id", "gold_choice")) == {
        "g-1": "both_bad",
        "g-2": "a",
    }
    assert set(Comparison.objects.values_list("open_slots", flat=True)) == {0}


@pytest.mark.django_db
def test_open_slots_follow_the_projects_overlap():
    project = ProjectFactory(overlap=5)
    import_comparisons(project, [_line("q-1")])
    assert Comparison.objects.get().open_slots == 5


@pytest.mark.django_db
def test_it_accepts_bytes_blank_lines_crlf_a_bom_and_null_optionals(project):
    lines = [
        "\ufeff" + _line("q-1"),
        "\n",
        "   \r\n",
        _line("q-2", metadata=None, priority=None, gold=None).replace("\n", "\r\n").encode(),
        _line(42).encode(),  # an integer id is stored as its text
    ]

    result = import_comparisons(project, lines)

    assert result.ok, result.errors
    assert (result.created, result.total_lines) == (3, 5)
    assert set(Comparison.objects.values_list("external_id", flat=True)) == {"q-1", "q-2", "42"}


BAD_LINES = [
    ("not json", "not valid JSON"),
    ('{"external_id": "x",', "not valid JSON"),
    ("[1, 2]", "not a JSON object (got a list)"),
    ('"just a string"', "not a JSON object (got a string)"),
    (_line(external_id=_DROP), "external_id: missing"),
    (_line(external_id=["x"]), "external_id: must be a string (got a list)"),
    (_line(external_id="  "), "external_id: is empty"),
    (_line(external_id="x" * 201), "external_id: longer than 200 characters"),
    (_line(prompt=_DROP), "prompt: missing"),
    (_line(prompt=3), "prompt: must be a string or a list of {role, content} messages"),
    (_line(prompt=" "), "prompt: is empty"),
    (_line(prompt=[]), "prompt: is an empty list"),
    (_line(prompt=["hi"]), "prompt[0]: must be an object with role and content"),
    (_line(prompt=[{"role": "bot", "content": "hi"}]), "prompt[0].role: unknown role 'bot'"),
    (_line(prompt=[{"content": "hi"}]), "prompt[0].role: missing"),
    (_line(prompt=[{"role": "user", "content": ""}]), "prompt[0].content: is empty"),
    (_line(prompt=[{"role": "user", "content": 5}]), "prompt[0].content: must be a string"),
    (
        _line(prompt=[{"role": "user", "content": "hi", "name": "x"}]),
        "prompt[0]: unknown field 'name'",
    ),
    (
        _line(prompt=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]),
        "prompt: the last message must be a user turn (got 'assistant')",
    ),
    (_line(responses=_DROP), "responses: missing"),
    (_line(responses={"a": "b"}), "responses: must be a list (got an object)"),
    (_line(responses=[{"model": "m", "content": "c"}]), "responses: needs at least two entries"),
    (_line(responses=[]), "responses: needs at least two entries"),
    (
        _line(responses=[{"model": "m", "content": "c"}, {"model": "n", "content": "  "}]),
        "responses[1].content: is empty",
    ),
    (
        _line(responses=[{"model": "m", "content": "c"}, {"content": "d"}]),
        "responses[1].model: missing",
    ),
    (
        _line(responses=[{"model": "m", "content": "c"}, "d"]),
        "responses[1]: must be an object with model and content",
    ),
    (
        _line(responses=[{"model": "m", "content": "c"}, {"model": "n", "content": "d", "x": 1}]),
        "responses[1]: unknown field 'x'",
    ),
    (
        _line(responses=[{"model": "m" * 201, "content": "c"}, {"model": "n", "content": "d"}]),
        "responses[0].model: longer than 200 characters",
    ),
    (_line(metadata=["x"]), "metadata: must be an object (got a list)"),
    (_line(priority="high"), "priority: must be an integer (got a string)"),
    (_line(priority=1.5), "priority: must be an integer (got a number)"),
    (_line(priority=True), "priority: must be an integer (got a boolean)"),
    (_line(priority=2**31), "priority: must be between"),
    (_line(gold={"choice": "c"}), "gold.choice: 'c' names no response"),
    (_line(gold="a"), 'gold: must be an object like {"choice": "a"}'),
    (_line(gold={}), 'gold: must be an object like {"choice": "a"}'),
    (_line(gold={"choice": "a", "why": "x"}), "gold: unknown field 'why'"),
    (_line(gold_choice="a"), "unknown field 'gold_choice' (put extra data in metadata)"),
    (_line(prompt="nul \u0000 here"), "prompt: contains a NUL character"),
    (_line(metadata={"k": "\ud800"}), "metadata: contains invalid Unicode"),
    (_line().replace('"q-1"', '"q-1", "metadata": {"score": NaN}'), "NaN is not allowed"),
    (_line().replace('"q-1"', '"q-1", "metadata": {"score": 1e999}'), "out of range"),
    (_line().encode().replace(b"Question", b"Qu\xe9stion"), "not valid UTF-8 text"),
    ('{"prompt": "x", "responses": "y"}', "external_id: missing"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("bad", "message"), BAD_LINES)
def test_it_rejects_each_kind_of_bad_line_with_its_number(project, bad, message):
    lines = [_line("good-1"), bad, _line("good-2")]

    result = import_comparisons(project, lines)

    assert not result.ok
    assert result.error_count == 1
    assert [e.line for e in result.errors] == [2]
    assert message in result.errors[0].message
    assert (result.created, result.skipped, result.total_lines) == (0, 0, 3)
    assert _counts() == (0, 0)


@pytest.mark.django_db
def test_a_strict_text_stream_that_fails_to_decode_is_rejected_not_raised(project):
    data = (_line("q-1") + _line("q-2")).encode() + b'{"external_id": "\xff"}\n'
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")

    result = import_comparisons(project, stream)

    assert not result.ok
    assert "not valid UTF-8 text" in result.errors[0].message
    assert result.errors[0].line <= 3
    assert _counts() == (0, 0)


@pytest.mark.django_db
def test_a_content_over_the_limit_is_rejected(project, settings):
    settings.RATERHUB_IMPORT_MAX_CONTENT_CHARS = 25
    long = "x" * 26
    lines = [
        _line("ok"),
        _line("long-prompt", prompt=long),
        _line("long-chat", prompt=[{"role": "user", "content": long}]),
        _line(
            "long-a", responses=[{"model": "m", "content": long}, {"model": "n", "content": "y"}]
        ),
        # Metadata has its own limit, in bytes (RATERHUB_IMPORT_MAX_METADATA_BYTES).
        _line("long-meta", metadata={"n": [long]}),
    ]

    result = import_comparisons(project, lines)

    assert [(e.line, e.message) for e in result.errors] == [
        (2, "prompt: 26 characters, over the limit of 25"),
        (3, "prompt[0].content: 26 characters, over the limit of 25"),
        (4, "responses[0].content: 26 characters, over the limit of 25"),
    ]
    # An explicit limit overrides the setting.
    assert import_comparisons(project, lines, max_content_chars=26).ok
    assert Comparison.objects.count() == 5


def _metadata_error(limit: int) -> str:
    return f"over the limit of {limit:,} bytes (setting RATERHUB_IMPORT_MAX_METADATA_BYTES)"


@pytest.mark.django_db
def test_metadata_is_limited_by_its_size_as_json_whatever_it_holds(project, settings):
    settings.RATERHUB_IMPORT_MAX_METADATA_BYTES = 100
    lines = [
        # Compact JSON in UTF-8: {"n":"…"} is 8 bytes around the text.
        _line("at-limit", metadata={"n": "x" * 92}),
        _line("one-over", metadata={"n": "x" * 93}),
        _line("accents", metadata={"n": "é" * 46}),  # two bytes each: exactly 100
        _line("numbers", metadata={"n": [1] * 60}),  # no string at all, still 127 bytes
        _line("nested", metadata={"a": {"b": [[0.5, True, None]] * 12}}),
    ]

    result = import_comparisons(project, lines)

    assert [(e.line, e.message) for e in result.errors] == [
        (2, f"metadata: 101 bytes as JSON, {_metadata_error(100)}"),
        (4, f"metadata: 127 bytes as JSON, {_metadata_error(100)}"),
        (5, f"metadata: 205 bytes as JSON, {_metadata_error(100)}"),
    ]
    assert _counts() == (0, 0)
    assert import_comparisons(project, [lines[0], lines[2]]).created == 2


@pytest.mark.django_db
def test_the_metadata_limit_is_64_kb_by_default(project):
    from django.conf import settings

    assert settings.RATERHUB_IMPORT_MAX_METADATA_BYTES == 65_536
    numbers = {"n": [1] * 40_000}  # 80 KB of numbers and no text: passed before

    result = import_comparisons(project, [_line("q-1", metadata=numbers)])

    assert [e.line for e in result.errors] == [1]
    assert _metadata_error(65_536) in result.errors[0].message


def _padded(external_id: str, size: int) -> str:
    """A good line of exactly `size` bytes, its newline not counted."""
    base = len(_line(external_id, metadata={"pad": ""}).rstrip("\n").encode())
    line = _line(external_id, metadata={"pad": "x" * (size - base)})
    assert len(line.rstrip("\n").encode()) == size
    return line


def _line_error(size: int, limit: int) -> str:
    return (
        f"{size:,} bytes long, over the limit of {limit:,} bytes per line "
        "(setting RATERHUB_IMPORT_MAX_LINE_BYTES)"
    )


@pytest.mark.django_db
def test_a_line_over_the_byte_limit_is_a_line_error_and_is_never_parsed(
    project, settings, monkeypatch
):
    settings.RATERHUB_IMPORT_MAX_LINE_BYTES = 400
    parsed = []
    real_loads = json.loads
    monkeypatch.setattr(
        "comparisons.imports.json.loads",
        lambda text, **kw: parsed.append(len(text)) or real_loads(text, **kw),
    )
    lines = [
        _padded("at-limit", 400),
        _padded("one-over", 401),
        _padded("crlf", 400).replace("\n", "\r\n"),  # the line ending does not count
        _padded("bytes", 400).encode(),
        _padded("bytes-over", 401).encode(),
        # 390 characters but 402 bytes: the limit counts bytes.
        _padded("accents", 390).replace("x" * 12, "é" * 12, 1),
    ]
    assert len(lines[5].rstrip("\n")) == 390

    result = import_comparisons(project, lines)

    assert [(e.line, e.message) for e in result.errors] == [
        (2, _line_error(401, 400)),
        (5, _line_error(401, 400)),
        (6, _line_error(402, 400)),
    ]
    assert len(parsed) == 3 and max(parsed) <= 402  # the three good lines only
    assert _counts() == (0, 0)


def _huge_line(mb: int) -> bytes:
    """The attack: a line of numbers in metadata, no string to count."""
    return (
        b'{"external_id": "big", "prompt": "p", "responses": [], "metadata": {"n": ['
        + (b"1," * (mb * 1024 * 512))
        + b"1]}}\n"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["binary", "text"])
def test_a_huge_line_in_a_stream_is_skipped_without_holding_it_in_memory(project, settings, mode):
    import tracemalloc

    settings.RATERHUB_IMPORT_MAX_LINE_BYTES = 256 * 1024
    huge = _huge_line(16)
    data = _line("before").encode() + huge + _line("after").encode() + b"[]\n"
    stream = io.BytesIO(data) if mode == "binary" else io.TextIOWrapper(io.BytesIO(data), "utf-8")

    tracemalloc.start()
    try:
        result = import_comparisons(project, stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [(e.line, e.message) for e in result.errors] == [
        (2, _line_error(len(huge) - 1, 256 * 1024)),
        (4, "not a JSON object (got a list)"),
    ]
    assert result.total_lines == 4
    assert peak < 4 * 1024 * 1024, f"peak {peak:,} bytes while reading a {len(huge):,}-byte line"
    assert _counts() == (0, 0)


@pytest.mark.django_db
def test_a_stream_within_the_limits_imports_as_before(project):
    data = "".join([_line("q-1"), "\n", _line("q-2").replace("\n", "\r\n"), _line("q-3")])
    data = data.rstrip("\n")  # no newline after the last line

    for stream in (io.BytesIO(data.encode()), io.StringIO(data)):
        Comparison.objects.all().delete()
        result = import_comparisons(project, stream)
        assert result.ok, result.errors
        assert (result.created, result.total_lines) == (3, 4)


def test_the_line_limit_fits_a_prompt_and_two_responses_at_the_content_limit():
    from django.conf import settings

    chars = settings.RATERHUB_IMPORT_MAX_CONTENT_CHARS
    # The worst case: every character outside the BMP, written by json.dumps's default
    # ensure_ascii as a surrogate pair of \u escapes (12 bytes a character).
    text = "\U0001f600" * chars
    line = _line("q-1", prompt=text, responses=[{"model": "m", "content": text}] * 2)
    line_bytes = len(line.encode()) + settings.RATERHUB_IMPORT_MAX_METADATA_BYTES
    assert line_bytes <= settings.RATERHUB_IMPORT_MAX_LINE_BYTES


@pytest.mark.django_db
def test_a_gold_choice_the_project_does_not_allow_is_rejected():
    project = ProjectFactory(allow_tie=False)

    result = import_comparisons(project, [_line("g", gold={"choice": "tie"})])

    assert [str(e) for e in result.errors] == [
        "line 1: gold.choice: 'tie' is not a choice this project allows"
    ]


@pytest.mark.django_db
def test_every_problem_of_a_line_is_named_in_one_error(project):
    bad = _line(prompt=_DROP, responses=[], priority="x")

    result = import_comparisons(project, [bad])

    assert result.errors == [
        LineError(
            1,
            "prompt: missing; responses: needs at least two entries; "
            "priority: must be an integer (got a string)",
        )
    ]


@pytest.mark.django_db
def test_every_bad_line_is_reported_in_order_with_file_line_numbers(project):
    lines = [_line("a"), "oops", "\n", _line("b", responses=[]), _line("c"), "[]", _line("a")]

    result = import_comparisons(project, lines)

    assert [str(e) for e in result.errors] == [
        "line 2: not valid JSON: Expecting value (column 1)",
        "line 4: responses: needs at least two entries",
        "line 6: not a JSON object (got a list)",
        "line 7: external_id 'a': duplicate of line 1",
    ]
    assert result.error_count == 4
    assert _counts() == (0, 0)


@pytest.mark.django_db
def test_errors_are_capped_but_all_counted(project):
    lines = [_line("fine")] + ["nope"] * (MAX_REPORTED_ERRORS + 10)

    result = import_comparisons(project, lines)

    assert result.error_count == MAX_REPORTED_ERRORS + 10
    assert len(result.errors) == MAX_REPORTED_ERRORS
    assert result.unreported_errors == 10
    assert [e.line for e in result.errors] == list(range(2, MAX_REPORTED_ERRORS + 2))


@pytest.mark.django_db
def test_errors_across_many_batches_keep_file_order(project, settings):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 7
    ComparisonFactory(project=project, external_id="q-9")
    lines = [_line(f"q-{i}") if i % 3 == 0 else "nope" for i in range(300)]

    result = import_comparisons(project, lines)

    bad = [i + 1 for i in range(300) if i % 3 or i == 9]  # line 10 holds the existing "q-9"
    assert result.error_count == len(bad) == 201
    assert [e.line for e in result.errors] == bad[:MAX_REPORTED_ERRORS]
    assert result.errors[bad.index(10)] == LineError(
        10, "external_id 'q-9': already exists in this project", code="exists"
    )


@pytest.mark.django_db
def test_a_bad_line_after_several_full_batches_leaves_the_database_unchanged(
    project, settings, django_assert_max_num_queries
):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 10
    ComparisonFactory(project=project, external_id="before")
    before = _counts()
    lines = [*_lines(35), _line("q-bad", responses=[]), *_lines(5, start=100)]

    # Savepoint, project lock and release, then per batch up to the bad line's (four) at most
    # one existing-id query and two inserts.
    with django_assert_max_num_queries(3 + 4 * 3) as queries:
        result = import_comparisons(project, lines)

    assert [e.line for e in result.errors] == [36]
    assert result.created == 0
    assert _counts() == before
    # The first three batches really were written before the bad line: the rollback undid them.
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "comparisons_comparison"')]
    assert len(inserts) >= 3


@pytest.mark.django_db
def test_an_existing_id_found_in_a_late_batch_rejects_the_whole_file(project, settings):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 10
    ComparisonFactory(project=project, external_id="q-33")
    before = _counts()

    result = import_comparisons(project, _lines(40))

    assert [(e.line, e.code) for e in result.errors] == [(34, "exists")]
    assert "external_id 'q-33': already exists in this project" in result.errors[0].message
    assert _counts() == before


@pytest.mark.django_db
def test_it_streams_and_writes_in_batches(project, settings):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 10
    seen_in_database = []

    def lines():
        for i in range(30):
            if i == 25:
                # Two full batches are already written while the rest is still unread.
                seen_in_database.append(Comparison.objects.filter(project=project).count())
            yield _line(f"q-{i}")

    result = import_comparisons(project, lines())

    assert result.ok and result.created == 30
    assert seen_in_database == [20]


@pytest.mark.django_db
def test_reimporting_the_same_file_is_rejected_as_duplicates(project):
    lines = _lines(3)
    assert import_comparisons(project, lines).created == 3

    result = import_comparisons(project, lines)

    assert not result.ok
    assert [(e.line, e.code) for e in result.errors] == [
        (1, "exists"),
        (2, "exists"),
        (3, "exists"),
    ]
    assert _counts() == (3, 6)


@pytest.mark.django_db
def test_skip_existing_skips_known_ids_and_imports_the_rest(project):
    import_comparisons(project, _lines(3))

    result = import_comparisons(project, _lines(5), skip_existing=True)

    assert result.ok
    assert (result.created, result.skipped) == (2, 3)
    assert _counts() == (5, 10)
    # Skipping twice changes nothing.
    again = import_comparisons(project, _lines(5), skip_existing=True)
    assert (again.created, again.skipped) == (0, 5)
    assert _counts() == (5, 10)


@pytest.mark.django_db
def test_skip_existing_does_not_excuse_a_duplicate_within_the_file(project):
    result = import_comparisons(project, [_line("x"), _line("x")], skip_existing=True)

    assert [str(e) for e in result.errors] == ["line 2: external_id 'x': duplicate of line 1"]
    assert _counts() == (0, 0)


@pytest.mark.django_db
def test_the_same_id_in_another_project_is_not_a_duplicate(project):
    ComparisonFactory(project=ProjectFactory(), external_id="q-0")

    result = import_comparisons(project, _lines(2))

    assert result.ok and result.created == 2


@pytest.mark.django_db
def test_query_count_grows_with_batches_not_lines(project, settings, django_assert_max_num_queries):
    settings.RATERHUB_IMPORT_BATCH_SIZE = 500
    lines = _lines(1000)

    # Per batch: one existing-id query and the bulk inserts (SQLite splits those at 999
    # parameters, hence the margin); a row-by-row import would need over 3,000 queries.
    with django_assert_max_num_queries(40):
        result = import_comparisons(project, lines)

    assert result.created == 1000
    assert Response.objects.count() == 2000


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_twice_the_lines_in_as_many_batches_cost_the_same_queries(
    project, settings, django_assert_num_queries
):
    for lines, batch_size, start in ((1000, 500, 0), (2000, 1000, 1000)):
        settings.RATERHUB_IMPORT_BATCH_SIZE = batch_size
        # Savepoint, project lock and release, then per batch one existing-id query and two
        # inserts, and one ANALYZE (at least imports.ANALYZE_AFTER comparisons were imported).
        with django_assert_num_queries(3 + 2 * 3 + 1):
            assert import_comparisons(project, _lines(lines, start=start)).created == lines


# -- Issue 16: what an import tells a lead ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "message"),
    [
        # Cut after a key: json said "Expecting value (column 1)", the column of line 2 ("\n").
        (
            '{"external_id": "q-1", "prompt": \n',
            "the line ends (column 33) before the JSON is complete (Expecting value); "
            "was it cut short?",
        ),
        # Cut inside a string: json said "Invalid control character" (the "\n").
        (
            '{"external_id": "q-1", "prompt": "Explain TC\r\n',
            "the line ends (column 45) inside a string that starts at column 34; was it cut short?",
        ),
        ('{"external_id": "q-1"', "the line ends (column 22) before the JSON is complete"),
    ],
)
def test_a_truncated_line_is_reported_at_its_end(project, line, message):
    result = import_comparisons(project, [_line("q-0"), line])

    assert not result.ok and _counts() == (0, 0)
    [error] = result.errors
    assert error.line == 2
    assert error.message.startswith(f"not valid JSON: {message}")


@pytest.mark.django_db
def test_a_fault_inside_the_line_keeps_its_own_column(project):
    result = import_comparisons(project, ['{"external_id": "q-1",, "prompt": "x"}\n'])

    assert [e.message for e in result.errors] == [
        "not valid JSON: Expecting property name enclosed in double quotes (column 23)"
    ]


@pytest.mark.django_db
def test_gold_into_a_project_with_gold_rate_0_imports_with_a_warning(project):
    project.gold_rate = 0
    project.save()
    result = import_comparisons(project, [_line("g-1", gold={"choice": "a"}), _line("q-1")])

    assert result.ok and (result.created, result.gold) == (2, 1)
    assert len(result.warnings) == 1
    assert "1 gold comparison imported, but this project's gold rate is 0" in result.warnings[0]
    assert project.unserved_gold_count() == 1

    project.gold_rate = 0.1
    project.save()
    assert project.unserved_gold_count() == 0
    assert import_comparisons(project, [_line("g-2", gold={"choice": "b"})]).warnings == []


@pytest.mark.django_db
def test_more_than_two_responses_import_with_a_note_naming_the_lines(project):
    three = [{"model": f"m{i}", "content": f"answer {i}"} for i in range(3)]
    lines = [_line(f"q-{i}", responses=three) if i % 2 else _line(f"q-{i}") for i in range(14)]

    result = import_comparisons(project, lines)

    assert result.ok and result.created == 14 and result.errors == []
    assert result.warnings == [
        "7 lines have more than two responses (lines 2, 4, 6, 8, 10, …): a pairwise project "
        'compares the first two ("a" and "b"); the others are stored but never shown, judged '
        "or exported."
    ]
    assert Response.objects.filter(comparison__external_id="q-1").count() == 3  # all stored


@pytest.mark.django_db
def test_a_rejected_file_has_no_warnings(project):
    project.gold_rate = 0
    project.save()
    result = import_comparisons(project, [_line("g-1", gold={"choice": "a"}), "oops\n"])

    assert not result.ok and result.warnings == []
