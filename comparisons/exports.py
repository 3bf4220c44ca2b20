"""Preference exports: raw judgments and the aggregated pairs training libraries load as they are.

`export_preferences(project, format, path, **options)` streams judgments in (comparison id,
judgment id) order, writes the rows as they come to a temporary file beside `path`, fsyncs it
and renames it into place, and returns the manifest. `run_export_job(job_id)` runs one
ExportJob: progress saved as it goes, the finished file moved into Django's default storage,
the manifest and checksum stored on the job, and a failure recorded with nothing downloadable.

Formats (names are a contract, see DESIGN.md):
  trl, trl-parquet   TRL's conversational preference format with an explicit prompt
  trl-kto            TRL's unpaired preference format (prompt, completion, label)
  openai-dpo         OpenAI preference fine-tuning (input.messages, preferred/non_preferred_output)
  judgments, judgments-parquet, judgments-csv   one row per judgment, every raw field
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import logging
import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from json.encoder import encode_basestring  # the C encoder json.dumps uses, non-ASCII kept
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from comparisons.models import Choice, Comparison, ExportFormat, ExportJob, Judgment, Project
from comparisons.models import Response as ResponseModel

logger = logging.getLogger(__name__)

PAIRWISE_FORMATS = frozenset({"trl", "trl-parquet", "trl-kto", "openai-dpo"})
RAW_FORMATS = frozenset({"judgments", "judgments-parquet", "judgments-csv"})
FORMATS = tuple(ExportFormat.values)
AGGREGATIONS = ("majority", "unanimous", "all")
EXTENSIONS = {
    "trl": "jsonl",
    "trl-parquet": "parquet",
    "trl-kto": "jsonl",
    "openai-dpo": "jsonl",
    "judgments": "jsonl",
    "judgments-parquet": "parquet",
    "judgments-csv": "csv",
}

# Llama-2-style discrete margins: a stronger stated preference asks the reward model for a
# wider gap. A judgment without a strength (projects that don't ask for it) counts fully.
STRENGTH_WEIGHT = {"slightly": 1 / 3, "clearly": 2 / 3, "much": 1.0, None: 1.0}

DEFINITIONS = {
    "agreement": (
        "share of the comparison's exported judgments whose choice equals the row's verdict "
        "(for trl-kto both-bad rows, the share of both_bad votes)"
    ),
    "margin": (
        "(sum of w over judgments preferring the chosen response - sum of w over judgments "
        "preferring the rejected one) / num_judgments, w = 1/3 slightly, 2/3 clearly, 1 much, "
        "1 when no strength was given; tie and both_bad votes add 0 but count in num_judgments; "
        "rounded to 6 decimals"
    ),
    "majority": "a choice with more than half of the comparison's votes; tie and both_bad "
    "are votes but yield no pair (trl-kto: both_bad yields two false rows)",
    "unanimous": "every vote for the same choice",
    "all": "every exported judgment its own row, with the comparison's num_judgments and the "
    "agreement and margin of that judgment's choice (a minority row has a negative margin)",
    "since": "judgment created_at >= since",
    "until": "judgment created_at < until",
    "rater": "HMAC-SHA256(SECRET_KEY, 'raterhub-export:<project id>:<user id>'), 16 hex chars",
    "rater_thresholds": "raters without a score (None) are kept",
}

CHUNK_SIZE = 5000  # judgments per database round trip
CONTENT_BATCH = 1000  # comparisons whose prompt and responses are fetched together
PARQUET_BATCH = 10_000  # rows per Parquet row group
HEARTBEAT = timedelta(seconds=30)  # a running job writes a sign of life at least this often
STALLED_AFTER = timedelta(minutes=10)  # no sign of life for this long: its worker is gone


class ExportError(ValueError):
    """Bad export options: a clear message for the CLI, the admin form and the job's error."""


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    aggregation: str = "majority"
    since: datetime | None = None
    until: datetime | None = None
    min_judgments: int | None = None
    min_agreement: float | None = None
    include_gold: bool = False
    include_late: bool = False
    exclude_raters: tuple[str, ...] = ()
    min_gold_accuracy: float | None = None
    min_rater_quality: float | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        data["exclude_raters"] = list(self.exclude_raters)
        return data


def _parse_when(name: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        when = value
    else:
        text = str(value)
        when = parse_datetime(text)
        if when is None:
            day = parse_date(text)
            if day is None:
                raise ExportError(f"{name}: not a date or date-time: {text!r}")
            when = datetime(day.year, day.month, day.day)
    if timezone.is_naive(when):
        when = timezone.make_aware(when, timezone.get_default_timezone())
    return when


def _parse_fraction(name: str, value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExportError(f"{name}: not a number: {value!r}") from None
    if not 0 <= number <= 1:
        raise ExportError(f"{name}: must be between 0 and 1, got {number}")
    return number


def parse_options(format: str, **options: Any) -> ExportOptions:
    """Validate export options (also accepts their JSON form, as stored on an ExportJob)."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    known = {f for f in ExportOptions.__dataclass_fields__}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ExportError(f"unknown option(s): {', '.join(unknown)}")
    aggregation = options.get("aggregation") or "majority"
    if aggregation not in AGGREGATIONS:
        raise ExportError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    min_judgments = options.get("min_judgments")
    if min_judgments in ("", None):
        min_judgments = None
    else:
        try:
            min_judgments = int(min_judgments)
        except (TypeError, ValueError):
            raise ExportError(f"min_judgments: not a whole number: {min_judgments!r}") from None
        if min_judgments < 1:
            raise ExportError("min_judgments must be at least 1")
    raters = options.get("exclude_raters") or ()
    if isinstance(raters, str):
        raters = [r for r in raters.replace(",", " ").split()]
    parsed = ExportOptions(
        aggregation=aggregation,
        since=_parse_when("since", options.get("since")),
        until=_parse_when("until", options.get("until")),
        min_judgments=min_judgments,
        min_agreement=_parse_fraction("min_agreement", options.get("min_agreement")),
        include_gold=bool(options.get("include_gold", False)),
        include_late=bool(options.get("include_late", False)),
        exclude_raters=tuple(sorted({r.strip().lower() for r in raters if r.strip()})),
        min_gold_accuracy=_parse_fraction("min_gold_accuracy", options.get("min_gold_accuracy")),
        min_rater_quality=_parse_fraction("min_rater_quality", options.get("min_rater_quality")),
    )
    if parsed.since and parsed.until and parsed.since >= parsed.until:
        raise ExportError("since must be before until")
    if format in RAW_FORMATS:
        # Raw judgments are the source of truth: comparison-level choices don't apply to them.
        for name in ("min_judgments", "min_agreement"):
            if getattr(parsed, name) is not None:
                raise ExportError(f"{name} applies only to the pairwise formats, not {format}")
        if parsed.aggregation != "majority":
            raise ExportError(f"aggregation applies only to the pairwise formats, not {format}")
    return parsed


# --- selection -------------------------------------------------------------------------------


@dataclass
class _Selection:
    queryset: Any
    total: int  # judgments the queryset will yield
    raters_excluded: dict[str, int]
    judgments_excluded: dict[str, int] = field(default_factory=dict)


def _excluded_rater_ids(project: Project, opts: ExportOptions) -> tuple[set[int], dict[str, int]]:
    from accounts.models import User

    ids: set[int] = set()
    why: dict[str, int] = {}
    if opts.exclude_raters:
        found = dict(User.objects.filter(email__in=opts.exclude_raters).values_list("email", "id"))
        missing = [e for e in opts.exclude_raters if e not in {k.lower() for k in found}]
        if missing:
            raise ExportError(f"no user with e-mail {', '.join(missing)}")
        ids.update(found.values())
        why["named"] = len(found)
    if opts.min_gold_accuracy is not None or opts.min_rater_quality is not None:
        from comparisons.metrics import rater_scores

        below_gold = below_quality = 0
        for rater_id, score in rater_scores(project).items():
            if rater_id in ids:
                continue
            gold, quality = score.get("gold_accuracy"), score.get("quality")
            if _below(gold, opts.min_gold_accuracy):
                ids.add(rater_id)
                below_gold += 1
            elif _below(quality, opts.min_rater_quality):
                ids.add(rater_id)
                below_quality += 1
        if opts.min_gold_accuracy is not None:
            why["gold_accuracy"] = below_gold
        if opts.min_rater_quality is not None:
            why["quality"] = below_quality
    return ids, why


def _below(score: float | None, threshold: float | None) -> bool:
    # An unknown score (no gold judged yet) is not "below": the rater is kept.
    return score is not None and threshold is not None and score < threshold


def _select(project: Project, opts: ExportOptions) -> _Selection:
    rater_ids, raters_excluded = _excluded_rater_ids(project, opts)
    in_range = Q()
    if opts.since:
        in_range &= Q(created_at__gte=opts.since)
    if opts.until:
        in_range &= Q(created_at__lt=opts.until)
    gold = Q(is_gold=True) if not opts.include_gold else Q(pk__in=[])
    late = Q(is_late=True) if not opts.include_late else Q(pk__in=[])
    rater = Q(rater_id__in=rater_ids)

    project_judgments = Judgment.objects.filter(project=project)
    # One pass counts why judgments were left out, each counted once, in this order, and so
    # also how many are left (a second COUNT would scan them all again).
    excluded = project_judgments.aggregate(
        all=Count("id"),
        date=Count("id", filter=~in_range) if in_range else Count("id", filter=Q(pk__in=[])),
        gold=Count("id", filter=in_range & gold),
        late=Count("id", filter=in_range & ~gold & late),
        rater=Count("id", filter=in_range & ~gold & ~late & rater),
    )
    qs = project_judgments.filter(in_range).exclude(gold).exclude(late).exclude(rater)
    total = excluded.pop("all")
    return _Selection(
        queryset=qs.order_by("comparison_id", "id"),
        total=total - sum(excluded.values()),
        raters_excluded=raters_excluded,
        judgments_excluded={k: v for k, v in excluded.items() if v},
    )


def pseudonym(project_id: int, user_id: int) -> str:
    """A rater's export id: stable within a project, unlinkable across projects without the key."""
    message = f"raterhub-export:{project_id}:{user_id}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:16]


# --- writers ---------------------------------------------------------------------------------


def _dumps(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


class _JsonlWriter:
    def __init__(self, fh):
        self.fh = fh

    def write(self, rows: list[dict]) -> None:
        self.fh.write("".join(_dumps(row) for row in rows).encode())

    def close(self) -> None:
        pass


class _ParquetWriter:
    def __init__(self, fh, schema: pa.Schema):
        self.schema = schema
        self.pending: list[dict] = []
        # No write timestamps, a fixed writer version and compression: same rows, same bytes.
        self.writer = pq.ParquetWriter(fh, schema, compression="zstd", version="2.6")

    def write(self, rows: list[dict]) -> None:
        self.pending.extend(rows)
        if len(self.pending) >= PARQUET_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist(self.pending, schema=self.schema))
            self.pending = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
TRL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", MESSAGES),
        ("chosen", MESSAGES),
        ("rejected", MESSAGES),
        ("chosen_model", pa.string()),
        ("rejected_model", pa.string()),
        ("num_judgments", pa.int32()),
        ("agreement", pa.float64()),
        ("margin", pa.float64()),
    ]
)
UTC_MICROS = pa.timestamp("us", tz="UTC")
JUDGMENT_SCHEMA = pa.schema(
    [
        ("judgment_id", pa.int64()),
        ("comparison_id", pa.int64()),
        ("external_id", pa.string()),
        ("rater", pa.string()),
        ("choice", pa.string()),
        ("display_order", pa.string()),
        ("strength", pa.string()),
        ("criteria", pa.string()),  # JSON object {criterion: canonical choice}
        ("rationale", pa.string()),
        ("flags", pa.list_(pa.string())),
        ("duration_ms", pa.int64()),
        ("is_gold", pa.bool_()),
        ("gold_choice", pa.string()),
        ("is_late", pa.bool_()),
        ("counted", pa.bool_()),
        ("shown_at", UTC_MICROS),
        ("created_at", UTC_MICROS),
    ]
)
JUDGMENT_COLUMNS = JUDGMENT_SCHEMA.names


def _writer(format: str, fh):
    if format == "trl-parquet":
        return _ParquetWriter(fh, TRL_SCHEMA)
    if format == "judgments-parquet":
        return _ParquetJudgmentWriter(fh)
    if format == "judgments-csv":
        return _CsvJudgmentWriter(fh)
    if format == "judgments":
        return _JsonlJudgmentWriter(fh)
    return _JsonlWriter(fh)


# --- raw judgments ---------------------------------------------------------------------------
# One judgment is one tuple in JUDGMENT_COLUMNS order, criteria and flags as compact JSON text
# (read as text from the database: parsing a million small JSON values would double the time).
# The JSONL writer formats each line from a fixed template; CSV writes the tuples as they are;
# Parquet turns each batch into columns.

_RAW_FIELDS = (
    "id",
    "comparison_id",
    "comparison__external_id",
    "rater_id",
    "choice",
    "swapped",
    "strength",
    "criteria_text",
    "rationale",
    "flags_text",
    "duration_ms",
    "is_gold",
    "comparison__gold_choice",
    "is_late",
    "counted",
    "shown_at",
    "created_at_",
)


def _compact_json(text: str | None, empty: str) -> str:
    if not text or text == empty:
        return empty
    return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _raw_tuples(project: Project, values: Iterable[tuple]) -> Iterator[tuple]:
    names: dict[int, str] = {}
    for (
        jid,
        cid,
        external_id,
        rater_id,
        choice,
        swapped,
        strength,
        criteria,
        rationale,
        flags,
        duration_ms,
        is_gold,
        gold_choice,
        is_late,
        counted,
        shown_at,
        created_at,
    ) in values:
        name = names.get(rater_id)
        if name is None:
            name = names[rater_id] = pseudonym(project.pk, rater_id)
        yield (
            jid,
            cid,
            external_id,
            name,
            choice,
            "ba" if swapped else "ab",
            strength,
            _compact_json(criteria, "{}"),
            rationale,
            _compact_json(flags, "[]"),
            duration_ms,
            is_gold,
            gold_choice,
            is_late,
            counted,
            shown_at,
            created_at,
        )


_JSONL_JUDGMENT = (
    '{"judgment_id":%d,"comparison_id":%d,"external_id":%s,"rater":"%s","choice":"%s",'
    '"display_order":"%s","strength":%s,"criteria":%s,"rationale":%s,"flags":%s,'
    '"duration_ms":%s,"is_gold":%s,"gold_choice":%s,"is_late":%s,"counted":%s,'
    '"shown_at":"%s","created_at":"%s"}\n'
)
_JSON_BOOL = {True: "true", False: "false"}


def _json_str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _iso_text(text: str) -> str:
    """ISO 8601 from a UTC timestamp the database rendered as text (cheaper than parsing it).

    PostgreSQL (session time zone UTC) gives "2026-01-02 03:04:05.678+00"; SQLite stores
    Django's naive UTC "2026-01-02 03:04:05.678000".
    """
    text = text.replace(" ", "T", 1)
    if text.endswith("+00"):
        return text + ":00"
    if text.endswith(("+00:00", "Z")):
        return text
    return text + "+00:00"


class _JsonlJudgmentWriter:
    """One JSON object per line, formatted from a template (several times faster than dumps)."""

    def __init__(self, fh):
        self.fh = fh

    def write(self, rows: list[tuple]) -> None:
        lines = [
            _JSONL_JUDGMENT
            % (
                jid,
                cid,
                encode_basestring(external_id),
                rater,
                choice,
                order,
                _json_str(strength),
                criteria,
                encode_basestring(rationale),
                flags,
                "null" if duration is None else duration,
                _JSON_BOOL[is_gold],
                _json_str(gold_choice),
                _JSON_BOOL[is_late],
                _JSON_BOOL[counted],
                _iso_text(shown_at),
                _iso_text(created_at),
            )
            for (
                jid,
                cid,
                external_id,
                rater,
                choice,
                order,
                strength,
                criteria,
                rationale,
                flags,
                duration,
                is_gold,
                gold_choice,
                is_late,
                counted,
                shown_at,
                created_at,
            ) in rows
        ]
        self.fh.write("".join(lines).encode())

    def close(self) -> None:
        pass


class _CsvJudgmentWriter:
    def __init__(self, fh):
        import io

        self.text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        self.csv = csv.writer(self.text, lineterminator="\n")
        self.csv.writerow(JUDGMENT_COLUMNS)

    def write(self, rows: list[tuple]) -> None:
        # csv writes None as an empty field; timestamps in the same ISO form as the JSONL.
        self.csv.writerows((*row[:15], _iso_text(row[15]), _iso_text(row[16])) for row in rows)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # the caller owns (fsyncs and closes) the binary file


class _ParquetJudgmentWriter(_ParquetWriter):
    def __init__(self, fh):
        super().__init__(fh, JUDGMENT_SCHEMA)

    def _flush(self) -> None:
        if self.pending:
            columns = [list(column) for column in zip(*self.pending, strict=True)]
            flags = JUDGMENT_COLUMNS.index("flags")
            columns[flags] = [[] if f == "[]" else json.loads(f) for f in columns[flags]]
            self.writer.write_batch(pa.record_batch(columns, schema=self.schema))
            self.pending = []


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.utcoffset():  # Django hands out UTC datetimes; anything else is converted
        when = when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")


# --- pairwise aggregation --------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What one comparison (or, with aggregation "all", one judgment) contributes."""

    comparison_id: int
    choice: str  # canonical a / b / tie / both_bad
    num_judgments: int
    agreement: float
    margin: float  # relative to choice; 0 for tie and both_bad


def _weight(strength: str | None) -> float:
    return STRENGTH_WEIGHT.get(strength, 1.0)


def _verdict(cid: int, votes: list[tuple[str, str | None]], choice: str) -> Verdict:
    n = len(votes)
    agreeing = sum(1 for c, _ in votes if c == choice)
    margin = 0.0
    if choice in (Choice.A, Choice.B):
        other = Choice.B if choice == Choice.A else Choice.A
        weight_for = sum(_weight(s) for c, s in votes if c == choice)
        weight_against = sum(_weight(s) for c, s in votes if c == other)
        margin = (weight_for - weight_against) / n
    return Verdict(cid, choice, n, round(agreeing / n, 6), round(margin, 6))


def aggregate(
    cid: int, votes: list[tuple[str, str | None]], aggregation: str
) -> tuple[list[Verdict], str | None]:
    """The verdicts of one comparison's votes [(choice, strength)], or why there are none."""
    if aggregation == "all":
        return [_verdict(cid, votes, c) for c, _ in votes], None
    counts = Counter(c for c, _ in votes)
    top, top_count = max(counts.items(), key=lambda item: (item[1], item[0]))
    if aggregation == "unanimous":
        if top_count != len(votes):
            return [], "not_unanimous"
    elif top_count * 2 <= len(votes):
        return [], "no_majority"
    return [_verdict(cid, votes, top)], None


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    out = []
    for message in prompt or []:
        content = message.get("content", "")
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        out.append({"role": str(message.get("role", "")), "content": content})
    return out


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _pair_rows(format: str, verdict: Verdict, content: dict) -> list[dict]:
    prompt = content["prompt"]
    (model_a, text_a), (model_b, text_b) = content["responses"][:2]
    if format == "trl-kto":
        if verdict.choice == Choice.BOTH_BAD:
            labels = [(text_a, False), (text_b, False)]
        else:
            a_wins = verdict.choice == Choice.A
            labels = [(text_a, a_wins), (text_b, not a_wins)]
        return [
            {"prompt": prompt, "completion": _assistant(text), "label": label}
            for text, label in labels
        ]
    if verdict.choice == Choice.A:
        chosen, rejected = (model_a, text_a), (model_b, text_b)
    else:
        chosen, rejected = (model_b, text_b), (model_a, text_a)
    if format == "openai-dpo":
        # OpenAI trains on one turn: the prompt is the whole input, each output one message.
        return [
            {
                "input": {"messages": prompt},
                "preferred_output": _assistant(chosen[1]),
                "non_preferred_output": _assistant(rejected[1]),
            }
        ]
    return [
        {
            "id": content["external_id"],
            "prompt": prompt,
            "chosen": _assistant(chosen[1]),
            "rejected": _assistant(rejected[1]),
            "chosen_model": chosen[0],
            "rejected_model": rejected[0],
            "num_judgments": verdict.num_judgments,
            "agreement": verdict.agreement,
            "margin": verdict.margin,
        }
    ]


def _yields_rows(format: str, choice: str) -> str | None:
    """None when a verdict of this choice becomes rows in this format, else the drop reason."""
    if choice == Choice.TIE:
        return "tie"
    if choice == Choice.BOTH_BAD and format != "trl-kto":
        return "both_bad"
    return None


def _contents(ids: list[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for cid, external_id, prompt in Comparison.objects.filter(id__in=ids).values_list(
        "id", "external_id", "prompt"
    ):
        found[cid] = {"external_id": external_id, "prompt": _messages(prompt), "responses": []}
    responses = (
        ResponseModel.objects.filter(comparison_id__in=ids, position__in=(0, 1))
        .order_by("comparison_id", "position")
        .values_list("comparison_id", "model_name", "content")
    )
    for cid, model, text in responses:
        found[cid]["responses"].append((model, text))
    return found


# --- the export ------------------------------------------------------------------------------


@dataclass
class _Counts:
    judgments: int = 0
    comparisons: int = 0
    rows: int = 0
    dropped: Counter = field(default_factory=Counter)


def _grouped(values: Iterable[tuple]) -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    """(comparison id, [(choice, strength)]) from judgments ordered by comparison id."""
    current, votes = None, []
    for cid, choice, strength in values:
        if cid != current:
            if votes:
                yield current, votes
            current, votes = cid, []
        votes.append((choice, strength))
    if votes:
        yield current, votes


def _write_pairwise(format, opts, qs, writer, counts, tick) -> None:
    values = qs.values_list("comparison_id", "choice", "strength").iterator(chunk_size=CHUNK_SIZE)
    pending: list[Verdict] = []

    def flush() -> None:
        contents = _contents(sorted({v.comparison_id for v in pending}))
        rows: list[dict] = []
        for verdict in pending:
            content = contents.get(verdict.comparison_id)
            if content is None or len(content["responses"]) < 2:
                counts.dropped["missing_response"] += 1
                continue
            if not content["prompt"] or content["prompt"][-1]["role"] != "user":
                counts.dropped["prompt_not_ending_in_user"] += 1
                continue
            rows.extend(_pair_rows(format, verdict, content))
        writer.write(rows)
        counts.rows += len(rows)
        pending.clear()

    for cid, votes in _grouped(values):
        counts.comparisons += 1
        counts.judgments += len(votes)
        tick(len(votes))
        if opts.min_judgments is not None and len(votes) < opts.min_judgments:
            counts.dropped["min_judgments"] += 1 if opts.aggregation != "all" else len(votes)
            continue
        verdicts, reason = aggregate(cid, votes, opts.aggregation)
        if reason:
            counts.dropped[reason] += 1
        for verdict in verdicts:
            reason = _yields_rows(format, verdict.choice)
            if reason is None and _below(verdict.agreement, opts.min_agreement):
                reason = "min_agreement"
            if reason:
                counts.dropped[reason] += 1
            else:
                pending.append(verdict)
        if len(pending) >= CONTENT_BATCH:
            flush()
    flush()


def _write_raw(project, format, qs, writer, counts, tick) -> None:
    text = TextField()
    columns = {"criteria_text": Cast("criteria", text), "flags_text": Cast("flags", text)}
    if format == "judgments-parquet":  # Arrow takes datetimes; the text formats take text
        columns |= {"shown_at": F("assignment__leased_at"), "created_at_": F("created_at")}
    else:
        # Rendered by the database: parsing and re-formatting two timestamps per row in
        # Python would cost more than everything else the row needs.
        columns |= {
            "shown_at": Cast("assignment__leased_at", text),
            "created_at_": Cast("created_at", text),
        }
    values = qs.annotate(**columns).values_list(*_RAW_FIELDS).iterator(chunk_size=CHUNK_SIZE)
    batch: list[tuple] = []
    last_cid = None
    for row in _raw_tuples(project, values):
        batch.append(row)
        if row[1] != last_cid:
            counts.comparisons += 1
            last_cid = row[1]
        if len(batch) >= CHUNK_SIZE:
            writer.write(batch)
            counts.judgments += len(batch)
            tick(len(batch))
            batch = []
    writer.write(batch)
    counts.judgments += len(batch)
    tick(len(batch))
    counts.rows = counts.judgments


@cache
def code_version() -> str:
    """`git describe` of the running code when it is a checkout, else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from importlib.metadata import version

        return version("raterhub")
    except Exception:
        return "unknown"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


ProgressCallback = Callable[[int, int], None]


def export_preferences(
    project: Project,
    format: str,
    path: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> dict:
    """Write `project`'s preferences to `path` in `format`; return the manifest.

    The file appears at `path` only when complete (written beside it, fsynced, renamed);
    on any error nothing is left behind. `progress(done, total)` is called as judgments are read.
    """
    opts = parse_options(format, **options)
    started = timezone.now()
    selection = _select(project, opts)
    total = selection.total
    counts = _Counts()
    done = 0

    reported = 0

    def tick(n: int) -> None:
        nonlocal done, reported
        done += n
        # Pairwise formats tick once per comparison: report about once per chunk read.
        if progress is not None and done - reported >= CHUNK_SIZE:
            progress(done, total)
            reported = done

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = _writer(format, fh)
            if format in RAW_FORMATS:
                _write_raw(project, format, selection.queryset, writer, counts, tick)
            else:
                _write_pairwise(format, opts, selection.queryset, writer, counts, tick)
            writer.close()
            if progress is not None and done != reported:
                progress(done, total)
            fh.flush()
            os.fsync(fh.fileno())
        checksum = sha256_file(tmp_name)
        size = os.path.getsize(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    finished = timezone.now()
    return {
        "format": format,
        "file": path.name,
        "bytes": size,
        "sha256": checksum,
        "project": {"id": project.pk, "slug": project.slug, "name": project.name},
        "options": opts.as_json(),
        "counts": {
            "comparisons": counts.comparisons,
            "judgments": counts.judgments,
            "rows_written": counts.rows,
            "rows_dropped": dict(sorted(counts.dropped.items())),
            "dropped_unit": "judgment"
            if opts.aggregation == "all" or format in RAW_FORMATS
            else "comparison",
            "judgments_excluded": selection.judgments_excluded,
            "raters_excluded": selection.raters_excluded,
        },
        "definitions": {
            k: v
            for k, v in DEFINITIONS.items()
            if format in PAIRWISE_FORMATS or k not in {"agreement", "margin", *AGGREGATIONS}
        },
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_s": round((finished - started).total_seconds(), 3),
        "code_version": code_version(),
    }


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- jobs ------------------------------------------------------------------------------------


class _TemporaryFile(File):
    """Lets FileSystemStorage move the finished file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def storage_name(job: ExportJob) -> str:
    # Fixed per job, so a re-run after a killed worker replaces, never duplicates, the file.
    return f"exports/{job.project.slug}/{job.pk}-{job.format}.{EXTENSIONS[job.format]}"


def create_export_job(
    *, project: Project, format: str, requested_by=None, options: dict | None = None
) -> ExportJob:
    """Validate the options and record a queued job; the caller enqueues it after commit."""
    opts = parse_options(format, **(options or {}))
    return ExportJob.objects.create(
        project=project, format=format, requested_by=requested_by, options=_stored(opts)
    )


def _stored(opts: ExportOptions) -> dict:
    """The non-default options, in their JSON form (what parse_options reads back)."""
    defaults = ExportOptions().as_json()
    return {k: v for k, v in opts.as_json().items() if v != defaults[k]}


def run_export_job(job_id: int) -> ExportJob | None:
    """Run one export job to the end: succeeded with a file, or failed with its error.

    Idempotent by job id: a finished job is left alone; a job left "running" by a killed worker
    runs again from the start and, the output being deterministic, produces the same file.
    """
    claimed = ExportJob.objects.filter(
        pk=job_id, status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING]
    ).update(
        status=ExportJob.Status.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        progress=0.0,
        error="",
    )
    if not claimed:
        return ExportJob.objects.filter(pk=job_id).first()
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    last_saved, last_beat = -1.0, timezone.now()

    def save_progress(done: int, total: int) -> None:
        nonlocal last_saved, last_beat
        fraction = round(min(done / total, 1.0), 3) if total else 1.0
        now = timezone.now()
        # At most ~100 progress writes per job, but a heartbeat at least every HEARTBEAT
        # so requeue_stalled_exports can tell a slow job from a dead one.
        if fraction - last_saved >= 0.01 or now - last_beat >= HEARTBEAT:
            ExportJob.objects.filter(pk=job_id).update(progress=fraction, heartbeat_at=now)
            last_saved, last_beat = fraction, now

    tmp_dir = tempfile.mkdtemp(prefix="raterhub-export-")
    try:
        local = Path(tmp_dir) / Path(storage_name(job)).name
        manifest = export_preferences(
            job.project, job.format, local, progress=save_progress, **job.options
        )
        name = storage_name(job)
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(local, "rb") as fh:
            saved = default_storage.save(name, _TemporaryFile(fh, name=Path(name).name))
        manifest["file"] = Path(saved).name
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.SUCCEEDED,
            progress=1.0,
            file=saved,
            sha256=manifest["sha256"],
            row_count=manifest["counts"]["rows_written"],
            manifest=manifest,
            finished_at=timezone.now(),
        )
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        _discard_stored(job)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED,
            file="",
            sha256="",
            error=f"{type(exc).__name__}: {exc}"[:5000],
            finished_at=timezone.now(),
        )
    finally:
        for leftover in Path(tmp_dir).glob("*"):
            leftover.unlink(missing_ok=True)
        Path(tmp_dir).rmdir()
    return ExportJob.objects.get(pk=job_id)


def _discard_stored(job: ExportJob) -> None:
    # A file an earlier attempt stored must not outlive the job's failure.
    try:
        default_storage.delete(storage_name(job))
    except Exception:
        logger.exception("could not delete the stored file of export job %s", job.pk)


def requeue_stalled_exports(*, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Send again the running jobs whose worker died (no heartbeat for `stalled_after`).

    Redis redelivers a killed worker's task by itself (acks_late); the embedded filesystem
    broker does not, so beat calls this. A job is idempotent by id, so a false alarm costs a
    second identical run, never a wrong file.
    """
    cutoff = timezone.now() - stalled_after
    stalled = list(
        ExportJob.objects.filter(status=ExportJob.Status.RUNNING, heartbeat_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    requeued = []
    for pk in stalled:
        # Conditional: a job that finished or beat since the read above is left alone.
        if ExportJob.objects.filter(
            pk=pk, status=ExportJob.Status.RUNNING, heartbeat_at__lt=cutoff
        ).update(status=ExportJob.Status.QUEUED):
            logger.warning("export job %s stalled; sending it again", pk)
            enqueue_export(ExportJob(pk=pk))
            requeued.append(pk)
    return requeued


def enqueue_export(job: ExportJob) -> None:
    """Send the job to a worker once the transaction that created it has committed."""
    from comparisons.tasks import run_export  # tasks imports this module

    transaction.on_commit(lambda: run_export.delay(job.pk))
