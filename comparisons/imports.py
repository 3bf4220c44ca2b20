"""Import comparisons from JSON Lines: one comparison per line, all or nothing.

A line (DESIGN.md's contract, plus `priority`):

    {"external_id": "q-0001",
     "prompt": "Explain TCP slow start.",            # or [{"role": "user", "content": "..."}, ...]
     "responses": [{"model": "m-a", "content": "..."}, {"model": "m-b", "content": "..."}],
     "metadata": {"source": "eval-set-3"},           # optional object
     "priority": 5,                                   # optional integer, higher is rated first
     "gold": {"choice": "a"}}                         # optional: a, b, tie or both_bad,
                                                      # and an optional "explanation" (text)

A ranking project (task_type "ranking") needs 3 to 9 responses on every line, and its gold is
a ranking of them, best first, over the keys a, b, c, … in import order:
     "gold": {"ranking": [["c"], ["a", "b"], ["d"]]}

Rules beyond the contract, chosen so that what is imported is what training code expects:
- `external_id` is a non-empty string of at most 200 characters (an integer is accepted and
  stored as its decimal text). It must be unique in the file and new to the project, unless
  `skip_existing`, which skips lines whose id the project already has.
- A string prompt is one user message. A message list uses the roles system, user and
  assistant, and its last message must be a user turn: the responses answer that turn, and TRL
  and OpenAI preference data both expect the prompt to end with it.
- `responses` has at least two entries; pairwise rating compares the first two ("a", "b").
  More are stored (the ranking format has up to nine) and the import warns that a pairwise
  project leaves them out; the other warning is for gold lines in a project whose gold rate is
  0, which never serves them (`import_warnings`).
- Unknown fields are errors, not silently dropped (a typo like "gold_choice" would otherwise
  lose the gold answer); put extra data in `metadata`. `null` for an optional field means absent.
- A gold choice must be one the project's rating scheme allows raters to give.
- Text may not contain NUL characters or invalid Unicode (PostgreSQL cannot store them), and no
  content may exceed the limit (settings.RATERHUB_IMPORT_MAX_CONTENT_CHARS by default).
- Sizes are capped before they can cost memory or reach the database: a line's bytes (its line
  ending not counted) at settings.RATERHUB_IMPORT_MAX_LINE_BYTES, checked before it is parsed,
  and `metadata` at settings.RATERHUB_IMPORT_MAX_METADATA_BYTES as compact UTF-8 JSON, whatever
  it holds (a list of numbers has no text to count, yet once reached PostgreSQL at 50 MB).

The file is streamed: lines are validated one at a time and written in batches of
settings.RATERHUB_IMPORT_BATCH_SIZE (one query for the batch's existing ids, then bulk inserts),
inside one transaction. After the first bad line nothing more is written, but validation goes
on so that every bad line is counted (the first MAX_REPORTED_ERRORS are kept), and the
transaction is rolled back at the end. A file object (anything with `readline`: an upload, a
stored file, an open text or binary file) is read a bounded piece at a time, so a line over the
limit is skipped to its end without ever being held whole.

Uploads too large to import within a request (more lines than
settings.RATERHUB_IMPORT_SYNC_MAX_LINES) become an ImportJob: `create_import_job` stores the file
and records the job, the caller enqueues it after commit, and `run_import_job` (in a Celery
worker) streams the stored file through the same `import_comparisons`, then deletes it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from comparisons import ranking, sql
from comparisons.models import Choice, Comparison, ImportJob, JobStatus, Project, Response

logger = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 50
MAX_NOTED_LINES = 5  # line numbers a warning names before "…"
MAX_ID_CHARS = 200  # Comparison.external_id and Response.model_name are CharField(200).
ROLES = ("system", "user", "assistant")
FIELDS = ("external_id", "prompt", "responses", "metadata", "priority", "gold")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # IntegerField's range on every backend.
ANALYZE_AFTER = 1000  # comparisons; a bulk import refreshes the planner's statistics
SKIP_CHUNK = 64 * 1024  # how much of a line over the limit is read at a time to skip it


@dataclass(frozen=True)
class LineError:
    line: int
    message: str
    # "invalid" for a bad line; "exists" for an id the project already has (skip_existing
    # would skip it), so callers can suggest that option.
    code: str = "invalid"

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    gold: int = 0  # of `created`, how many are gold comparisons
    skipped: int = 0
    total_lines: int = 0  # lines read, blank ones included
    error_count: int = 0  # bad lines, all of them; `errors` keeps the first few
    errors: list[LineError] = field(default_factory=list)
    # What imported but may not do what the file's author expects (see import_warnings).
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def unreported_errors(self) -> int:
        return self.error_count - len(self.errors)


@dataclass
class _Record:
    line: int
    external_id: str
    prompt: list[dict[str, str]]
    responses: list[tuple[str, str]]
    metadata: dict[str, Any]
    priority: int
    gold_choice: str | None
    gold_explanation: str = ""
    gold_ranking: list[list[str]] | None = None


class _Invalid(Exception):
    pass


@dataclass(frozen=True)
class _Oversized:
    """Stands for a line over the byte limit that was skipped, not read: its size in bytes."""

    size: int


class _Rejected(Exception):
    pass


def import_comparisons(
    project: Project,
    lines: Iterable[str | bytes],
    *,
    skip_existing: bool = False,
    max_content_chars: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import JSON Lines into `project`; on any bad line import nothing and report every one.

    `lines` is any iterable of str or bytes lines (a list, a generator) or a file object (an
    upload, an open file), which is read with bounded memory. Bad data never raises: it comes
    back as `result.errors`. `progress`, if given, is called with the number of lines read so
    far after each line (it runs inside the import's transaction: write nothing it must see).
    """
    limit = (
        max_content_chars
        if max_content_chars is not None
        else settings.RATERHUB_IMPORT_MAX_CONTENT_CHARS
    )
    result = ImportResult()
    try:
        with transaction.atomic():
            # Two imports into one project serialize here, so a batch's existing-id check can't
            # race the other import's insert. NO KEY UPDATE still lets raters insert leases and
            # judgments that reference the project. Also reads the overlap current right now
            # (a policy change takes the same lock: it waits, then recomputes these rows too).
            locked = (
                Project.objects.select_for_update(no_key=True)
                .only(
                    "overlap_policy",
                    "overlap",
                    "min_overlap",
                    "max_overlap",
                    "allow_tie",
                    "allow_both_bad",
                    "gold_rate",
                    "task_type",
                )
                .get(pk=project.pk)
            )
            importer = _Importer(
                locked,
                result=result,
                skip_existing=skip_existing,
                limit=limit,
                batch_size=max(1, settings.RATERHUB_IMPORT_BATCH_SIZE),
                progress=progress,
            )
            importer.feed_all(lines)
            importer.flush()
            if result.error_count:
                raise _Rejected
            result.warnings = import_warnings(
                locked, gold=result.gold, extra_response_lines=importer.extra_response_lines
            )
            if result.created >= ANALYZE_AFTER:
                # Statistics for the new rows now, not when autovacuum (which may be off) gets
                # round to it: the pick does not need them, but the admin's lists do. Inside
                # the transaction, ANALYZE counts the rows it inserted.
                sql.analyze_comparisons()
    except _Rejected:
        result.created = result.gold = result.skipped = 0
    return result


class _Importer:
    def __init__(
        self,
        project: Project,
        *,
        result: ImportResult,
        skip_existing: bool,
        limit: int,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ):
        self.project = project
        self.result = result
        self.skip_existing = skip_existing
        self.limit = limit
        self.batch_size = batch_size
        self.progress = progress
        self.max_line_bytes = settings.RATERHUB_IMPORT_MAX_LINE_BYTES
        self.max_metadata_bytes = settings.RATERHUB_IMPORT_MAX_METADATA_BYTES
        self.initial_slots = project.initial_slots
        self.allowed_gold = set(project.allowed_choices())
        self.seen: dict[str, int] = {}  # external_id -> line, to report duplicates in the file
        self.extra_response_lines: list[int] = []  # lines with more than two responses
        self.batch: list[_Record] = []
        # Errors of the lines since the last flush; the flush adds the batch's "exists" errors
        # and files them all in line order.
        self.batch_errors: list[LineError] = []

    def feed_all(self, lines: Iterable[str | bytes]) -> None:
        number = 0
        # A file's own iteration reads a whole line, however long, before anyone can check it.
        iterator = (
            _read_lines(lines, self.max_line_bytes) if hasattr(lines, "readline") else iter(lines)
        )
        while True:
            try:
                raw = next(iterator)
            except StopIteration:
                return
            except UnicodeDecodeError:
                # A text stream opened with strict decoding fails inside the iterator and can't
                # be resumed. It decodes ahead in chunks, so the bad byte is here or a bit later.
                self.batch_errors.append(
                    LineError(
                        number + 1, "not valid UTF-8 text (here or just after); reading stopped"
                    )
                )
                return
            number += 1
            self.feed(number, raw)

    def feed(self, number: int, raw: str | bytes | _Oversized) -> None:
        self.result.total_lines = number
        if self.progress is not None:
            self.progress(number)
        try:
            # Before decoding or parsing: both cost memory in proportion to the line.
            size = raw.size if isinstance(raw, _Oversized) else _content_bytes(raw)
            if size > self.max_line_bytes:
                raise _Invalid(
                    f"{size:,} bytes long, over the limit of {self.max_line_bytes:,} bytes per "
                    "line (setting RATERHUB_IMPORT_MAX_LINE_BYTES)"
                )
            text = _decode(raw, first=number == 1)
            if not text.strip():
                return
            record = self.parse(number, text)
        except _Invalid as exc:
            self.batch_errors.append(LineError(number, str(exc)))
            if len(self.batch_errors) >= self.batch_size:
                self.flush()  # keeps memory flat for a file that is bad throughout
            return
        self.batch.append(record)
        if len(self.batch) >= self.batch_size:
            self.flush()

    def parse(self, number: int, text: str) -> _Record:
        # Without its line ending: json would count "\n" as a second line, and report a line
        # cut short as a fault at "column 1" (of that line) or as a control character.
        text = text.rstrip("\r\n")
        try:
            data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError:
            raise _Invalid("not valid JSON: nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise _Invalid(f"not valid JSON: {_json_fault(text, exc)}") from None
        except ValueError as exc:
            raise _Invalid(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Invalid(f"not a JSON object (got {_kind(data)})")

        problems: list[str] = []
        unknown = [key for key in data if key not in FIELDS]
        if unknown:
            problems.append(f"{_unknown(unknown)} (put extra data in metadata)")

        external_id = self.check(problems, _external_id, data.get("external_id"))
        if external_id is not None:
            first = self.seen.setdefault(external_id, number)
            if first != number:
                problems.append(f"external_id {external_id!r}: duplicate of line {first}")
        prompt = self.check(problems, self._prompt, data.get("prompt"))
        responses = self.check(problems, self._responses, data.get("responses"))
        metadata = self.check(problems, self._metadata, data.get("metadata"))
        priority = self.check(problems, _priority, data.get("priority"))
        if self.project.is_ranking:
            gold_ranking = self.check(problems, self._gold_ranking(responses), data.get("gold"))
            gold = None if gold_ranking is None else ranking.pair_choice(gold_ranking)
        else:
            gold_ranking, gold = None, self.check(problems, self._gold, data.get("gold"))

        if problems:
            raise _Invalid("; ".join(problems))
        if len(responses) > 2 and not self.project.is_ranking:
            self.extra_response_lines.append(number)  # a pairwise project compares two
        # A ranking's gold is its tiers (gold: their verdict on a against b), with no explanation.
        choice, explanation = (gold, "") if self.project.is_ranking else (gold or (None, ""))
        return _Record(
            number,
            external_id,
            prompt,
            responses,
            metadata,
            priority,
            choice,
            explanation,
            gold_ranking,
        )

    @staticmethod
    def check(problems: list[str], validate, value):
        try:
            return validate(value)
        except _Invalid as exc:
            problems.append(str(exc))
            return None

    def _text(self, where: str, value: Any, *, limit: bool = True) -> str:
        if value is None:
            raise _Invalid(f"{where}: missing")
        if not isinstance(value, str):
            raise _Invalid(f"{where}: must be a string (got {_kind(value)})")
        if not value.strip():
            raise _Invalid(f"{where}: is empty")
        if limit and len(value) > self.limit:
            raise _Invalid(f"{where}: {len(value):,} characters, over the limit of {self.limit:,}")
        _check_storable(where, value)
        return value

    def _prompt(self, value: Any) -> list[dict[str, str]]:
        if isinstance(value, str):
            return [{"role": "user", "content": self._text("prompt", value)}]
        if value is None:
            raise _Invalid("prompt: missing")
        if not isinstance(value, list):
            raise _Invalid(
                f"prompt: must be a string or a list of {{role, content}} messages (got {_kind(value)})"
            )
        if not value:
            raise _Invalid("prompt: is an empty list")
        messages = []
        for i, message in enumerate(value):
            where = f"prompt[{i}]"
            if not isinstance(message, dict):
                raise _Invalid(f"{where}: must be an object with role and content")
            _no_extra_keys(where, message, ("role", "content"))
            role = message.get("role")
            if role is None:
                raise _Invalid(f"{where}.role: missing")
            if role not in ROLES:
                raise _Invalid(
                    f"{where}.role: unknown role {role!r} (expected system, user or assistant)"
                )
            content = self._text(f"{where}.content", message.get("content"))
            messages.append({"role": role, "content": content})
        if messages[-1]["role"] != "user":
            raise _Invalid(
                f"prompt: the last message must be a user turn (got {messages[-1]['role']!r})"
            )
        return messages

    def _responses(self, value: Any) -> list[tuple[str, str]]:
        if value is None:
            raise _Invalid("responses: missing")
        if not isinstance(value, list):
            raise _Invalid(f"responses: must be a list (got {_kind(value)})")
        if len(value) < 2:
            raise _Invalid("responses: needs at least two entries")
        responses = []
        for i, response in enumerate(value):
            where = f"responses[{i}]"
            if not isinstance(response, dict):
                raise _Invalid(f"{where}: must be an object with model and content")
            _no_extra_keys(where, response, ("model", "content"))
            model = self._text(f"{where}.model", response.get("model"), limit=False)
            if len(model) > MAX_ID_CHARS:
                raise _Invalid(f"{where}.model: longer than {MAX_ID_CHARS} characters")
            responses.append((model, self._text(f"{where}.content", response.get("content"))))
        if self.project.is_ranking and not (
            ranking.MIN_RESPONSES <= len(responses) <= ranking.MAX_RESPONSES
        ):
            raise _Invalid(
                f"responses: a ranking project needs {ranking.MIN_RESPONSES} to "
                f"{ranking.MAX_RESPONSES} responses (got {len(responses)})"
            )
        return responses

    def _metadata(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Invalid(f"metadata: must be an object (got {_kind(value)})")
        # Walk it without recursion: a hostile line may nest deeply.
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, str):
                _check_storable("metadata", item)
        # The line limit already bounds what this serializes; json.loads built it, so it nests
        # no deeper than json.dumps can go.
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        if size > self.max_metadata_bytes:
            raise _Invalid(
                f"metadata: {size:,} bytes as JSON, over the limit of "
                f"{self.max_metadata_bytes:,} bytes (setting RATERHUB_IMPORT_MAX_METADATA_BYTES)"
            )
        return value

    def _gold(self, value: Any) -> tuple[str, str] | None:
        """(choice, explanation) of a gold answer; the explanation is shown to raters after
        they judged it, where the project gives gold feedback."""
        if value is None:
            return None
        if not isinstance(value, dict) or "choice" not in value:
            raise _Invalid('gold: must be an object like {"choice": "a"}')
        _no_extra_keys("gold", value, ("choice", "explanation"))
        explanation = value.get("explanation")
        explanation = "" if explanation is None else self._text("gold.explanation", explanation)
        choice = value["choice"]
        if choice not in Choice.values:
            raise _Invalid(
                f"gold.choice: {choice!r} names no response (expected a, b, tie or both_bad)"
            )
        if choice not in self.allowed_gold:
            raise _Invalid(f"gold.choice: {choice!r} is not a choice this project allows")
        return choice, explanation

    def _gold_ranking(self, responses: list[tuple[str, str]] | None):
        """The validator of a ranking project's gold: tiers over these responses' keys."""

        def validate(value: Any) -> list[list[str]] | None:
            if value is None:
                return None
            example = '{"ranking": [["c"], ["a", "b"], ["d"]]}'
            if not isinstance(value, dict) or "ranking" not in value:
                raise _Invalid(f"gold: must be an object like {example} in a ranking project")
            _no_extra_keys("gold", value, ("ranking",))
            if responses is None:
                return None  # the line is already bad for its responses
            try:
                return ranking.check_tiers(
                    value["ranking"],
                    ranking.keys_for(len(responses)),
                    allow_ties=self.project.allow_tie,
                )
            except ranking.RankingError as exc:
                raise _Invalid(f"gold.ranking: {exc}") from None

        return validate

    def flush(self) -> None:
        batch, errors = self.batch, self.batch_errors
        self.batch, self.batch_errors = [], []
        if batch:
            existing = set(
                Comparison.objects.filter(
                    project=self.project, external_id__in=[r.external_id for r in batch]
                ).values_list("external_id", flat=True)
            )
            if existing:
                if self.skip_existing:
                    self.result.skipped += sum(r.external_id in existing for r in batch)
                else:
                    errors.extend(
                        LineError(
                            r.line,
                            f"external_id {r.external_id!r}: already exists in this project",
                            code="exists",
                        )
                        for r in batch
                        if r.external_id in existing
                    )
                batch = [r for r in batch if r.external_id not in existing]
        if errors:
            errors.sort(key=lambda e: e.line)
            room = MAX_REPORTED_ERRORS - len(self.result.errors)
            self.result.errors.extend(errors[: max(room, 0)])
            self.result.error_count += len(errors)
        # Once the file is known to be bad, stop writing: the transaction will be rolled back.
        if batch and not self.result.error_count:
            self.insert(batch)

    def insert(self, batch: list[_Record]) -> None:
        comparisons = Comparison.objects.bulk_create(
            Comparison(
                project=self.project,
                external_id=r.external_id,
                prompt=r.prompt,
                metadata=r.metadata,
                priority=r.priority,
                gold_choice=r.gold_choice,
                gold_explanation=r.gold_explanation,
                gold_ranking=r.gold_ranking,
                # Gold comparisons are served by the gold rate, never by the open-slot pick.
                open_slots=0 if r.gold_choice else self.initial_slots,
            )
            for r in batch
        )
        Response.objects.bulk_create(
            Response(comparison_id=c.pk, position=i, model_name=model, content=content)
            for c, r in zip(comparisons, batch, strict=True)
            for i, (model, content) in enumerate(r.responses)
        )
        self.result.created += len(comparisons)
        self.result.gold += sum(r.gold_choice is not None for r in batch)


def _read_lines(stream, max_bytes: int) -> Iterator[str | bytes | _Oversized]:
    """The lines of a text or binary file object, none read past `max_bytes` (plus its line
    ending): a longer line is read to its end in small pieces and given as an _Oversized.

    readline(size) stops at "\n" or after `size` bytes (characters for a text file, which are
    never fewer than its bytes), so nothing longer than the limit is ever held.
    """
    room = max_bytes + 2  # the limit, then "\r\n"
    while True:
        line = stream.readline(room)
        if not line:
            return
        if len(line) < room or _ends_line(line):
            yield line  # whole (a short line without "\n" is the last one)
            continue
        size = _bytes(line)
        while not _ends_line(line):
            line = stream.readline(SKIP_CHUNK)
            if not line:
                break
            size += _bytes(line)
        yield _Oversized(size - (_bytes(line) - _content_bytes(line)))


def _ends_line(line: str | bytes) -> bool:
    return line.endswith(b"\n" if isinstance(line, bytes) else "\n")


def _bytes(text: str | bytes) -> int:
    if isinstance(text, bytes) or text.isascii():
        return len(text)
    # surrogatepass: the lone surrogates of undecodable bytes are counted, then reported.
    return len(text.encode("utf-8", "surrogatepass"))


def _content_bytes(line: str | bytes) -> int:
    """A line's size in UTF-8 bytes, its line ending not counted."""
    tail = line[-2:]
    ending = len(tail) - len(tail.rstrip(b"\r\n" if isinstance(line, bytes) else "\r\n"))
    return _bytes(line) - ending


def _decode(raw: str | bytes, *, first: bool) -> str:
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("not valid UTF-8 text") from None
    else:
        text = raw
        # A file opened with errors="surrogateescape" turns undecodable bytes into lone
        # surrogates; report the line instead of failing on it later.
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _Invalid("not valid UTF-8 text") from None
    if first and text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark that editors on Windows add
    return text


def import_warnings(project: Project, *, gold: int, extra_response_lines: list[int]) -> list[str]:
    """What a successful import should tell its author: data that imported but will not be
    used as the file suggests. Notes, not errors: the same lines are right for another project
    (a gold rate set later, a ranking task)."""
    warnings = []
    if gold and not project.gold_rate:
        warnings.append(
            f"{gold:,} gold comparison{'s' if gold != 1 else ''} imported, but this project's "
            "gold rate is 0: raters are never served gold, and the progress counts leave gold "
            "out. Set a gold rate in the project's settings to use them."
        )
    if extra_response_lines:
        n = len(extra_response_lines)
        shown = ", ".join(str(line) for line in extra_response_lines[:MAX_NOTED_LINES])
        more = ", …" if n > MAX_NOTED_LINES else ""
        warnings.append(
            f"{n:,} line{'s have' if n != 1 else ' has'} more than two responses "
            f"(line{'s' if n != 1 else ''} {shown}{more}): a pairwise project compares the "
            'first two ("a" and "b"); the others are stored but never shown, judged or exported.'
        )
    return warnings


def _json_fault(text: str, exc: json.JSONDecodeError) -> str:
    """Where and what a JSON error is; a line that ends before its JSON does is called that."""
    end = len(text.rstrip()) + 1  # the column just past the line's last character
    if exc.msg.startswith("Unterminated string"):
        return (
            f"the line ends (column {end}) inside a string that starts at column {exc.colno}; "
            "was it cut short?"
        )
    if exc.pos >= end - 1:
        return (
            f"the line ends (column {end}) before the JSON is complete ({exc.msg}); "
            "was it cut short?"
        )
    return f"{exc.msg} (column {exc.colno})"


def _external_id(value: Any) -> str:
    if value is None:
        raise _Invalid("external_id: missing")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid(f"external_id: must be a string (got {_kind(value)})")
    if not value.strip():
        raise _Invalid("external_id: is empty")
    if len(value) > MAX_ID_CHARS:
        raise _Invalid(f"external_id: longer than {MAX_ID_CHARS} characters")
    _check_storable("external_id", value)
    return value


def _priority(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(f"priority: must be an integer (got {_kind(value)})")
    if not INT_MIN <= value <= INT_MAX:
        raise _Invalid(f"priority: must be between {INT_MIN} and {INT_MAX}")
    return value


def _no_extra_keys(where: str, value: dict, allowed: tuple[str, ...]) -> None:
    extra = [key for key in value if key not in allowed]
    if extra:
        raise _Invalid(f"{where}: {_unknown(extra)} (expected {', '.join(allowed)})")


def _unknown(keys: list[str]) -> str:
    names = ", ".join(repr(key) for key in keys)
    return f"unknown field{'s' if len(keys) > 1 else ''} {names}"


def _check_storable(where: str, value: str) -> None:
    if "\x00" in value:
        raise _Invalid(f"{where}: contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Invalid(f"{where}: contains invalid Unicode (a lone surrogate)") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


# --- jobs: uploads too large for a request -------------------------------------------------

PROGRESS_EVERY = 1.0  # seconds between two progress writes of a running job
PROGRESS_TTL = 24 * 3600


def count_lines(source: File) -> int:
    """The lines of an uploaded file, as the importer will read them (its newlines, plus a last
    line without one), counted chunk by chunk; leaves the file rewound."""
    lines, ended = 0, True
    for chunk in source.chunks():
        if chunk:
            newline = b"\n" if isinstance(chunk, bytes) else "\n"
            lines += chunk.count(newline)
            ended = chunk.endswith(newline)
    source.seek(0)
    return lines + (not ended)


def create_import_job(
    *,
    project: Project,
    source: File,
    skip_existing: bool = False,
    requested_by=None,
    total_lines: int | None = None,
) -> ImportJob:
    """Store the upload and record a queued job to import it; the caller enqueues the job once
    its transaction commits. `total_lines` saves a second count when the caller has one.

    The file goes to default storage under imports/ (never served: MEDIA_URL has no view, and S3
    objects are private) with a random name, so no uploaded name reaches a storage path.
    """
    if total_lines is None:
        total_lines = count_lines(source)
    name = default_storage.save(f"imports/{project.slug}/{uuid.uuid4().hex}.jsonl", source)
    try:
        return ImportJob.objects.create(
            project=project,
            requested_by=requested_by,
            filename=PurePath(source.name or "").name[:255],
            upload=name,
            skip_existing=skip_existing,
            total_lines=total_lines,
        )
    except BaseException:
        default_storage.delete(name)
        raise


def run_import_job(job_id: int) -> ImportJob | None:
    """Import a job's stored upload, all or nothing, record the outcome and delete the upload.

    Idempotent by job id: a finished job is left alone (but for deleting an upload a killed
    worker left behind). The outcome is written in the import's own transaction, so the job and
    the comparisons can never disagree: a re-run of a killed worker's job finds either the job
    finished and its comparisons there, or neither, and then imports from the start.
    """
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).update(status=JobStatus.RUNNING, started_at=timezone.now(), error="")
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None:
        return None
    if claimed:
        try:
            _import(job)
        except Exception as exc:
            logger.exception("import job %s failed", job_id)
            ImportJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:5000],
                finished_at=timezone.now(),
            )
        finally:
            cache.delete(_progress_key(job_id))
        job.refresh_from_db()
    if job.is_finished:
        discard_import_upload(job)
    return job


def _import(job: ImportJob) -> None:
    """Import the job's upload and write its outcome, in one transaction."""
    last_write = -math.inf

    def save_progress(lines: int) -> None:
        # The import's transaction hides any write to the job row until it commits, so the
        # lines read so far go to the cache, which every web node shares. Progress is only
        # shown: a cache that is down must not fail the import.
        nonlocal last_write
        now = time.monotonic()
        if now - last_write >= PROGRESS_EVERY:
            last_write = now
            try:
                cache.set(_progress_key(job.pk), lines, PROGRESS_TTL)
            except Exception:
                logger.warning("could not record the progress of import job %s", job.pk)

    with job.upload.open("rb") as stream, transaction.atomic():
        # Two deliveries of one job queue up on this lock; the second finds it finished.
        status = ImportJob.objects.select_for_update().values_list("status", flat=True)
        if status.get(pk=job.pk) != JobStatus.RUNNING:
            return
        result = import_comparisons(
            job.project, stream, skip_existing=job.skip_existing, progress=save_progress
        )
        # A rejected file's rows were rolled back to import_comparisons' savepoint; this
        # update commits with them or with nothing.
        ImportJob.objects.filter(pk=job.pk).update(
            status=JobStatus.SUCCEEDED if result.ok else JobStatus.FAILED,
            lines_read=result.total_lines,
            created_count=result.created,
            gold_count=result.gold,
            skipped_count=result.skipped,
            error_count=result.error_count,
            errors=[dataclasses.asdict(error) for error in result.errors],
            warnings=result.warnings,
            finished_at=timezone.now(),
        )


def import_job_progress(job: ImportJob) -> int:
    """The lines a job has read so far: from the cache while it runs, then from the row."""
    if job.status == JobStatus.RUNNING:
        return cache.get(_progress_key(job.pk), 0)
    return job.lines_read


def import_job_result(job: ImportJob) -> ImportResult:
    """A finished job's outcome as the ImportResult the import returned."""
    return ImportResult(
        created=job.created_count,
        gold=job.gold_count,
        skipped=job.skipped_count,
        total_lines=job.lines_read,
        error_count=job.error_count,
        errors=[LineError(**error) for error in job.errors],
        warnings=list(job.warnings),
    )


def discard_import_upload(job: ImportJob) -> None:
    """Delete a job's stored upload, if it still has one (a finished or deleted job)."""
    if not job.upload:
        return
    try:
        default_storage.delete(job.upload.name)
    except Exception:
        logger.exception("could not delete the upload of import job %s", job.pk)
        return
    ImportJob.objects.filter(pk=job.pk).update(upload="")
    job.upload = ""


def _progress_key(job_id: int) -> str:
    return f"import-job-progress:{job_id}"
