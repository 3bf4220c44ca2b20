"""Rows and files: verdicts and judgments as the rows each format holds, and the writers.

Pure (no database): the rows come from comparisons.exports.source. Output is deterministic,
so the same data always gives the same bytes (a re-run after a killed worker included).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring  # the C encoder json.dumps uses, non-ASCII kept
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from comparisons.exports.verdicts import Verdict
from comparisons.models import Choice, ExportFormat

PARQUET_BATCH = 10_000  # rows per Parquet row group

# OWASP's rule against formula injection: a spreadsheet runs a cell starting with one of these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD = (
    "text cells (external_id, rationale) starting with = + - @ tab or carriage return are "
    "prefixed with a single quote so spreadsheets show them as text (OWASP CSV injection); "
    "the JSONL and Parquet formats keep every value exact"
)


def iso(when: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC with microseconds: the one format of every export."""
    return None if when is None else when.astimezone(UTC).isoformat(timespec="microseconds")


class JudgmentRow(NamedTuple):
    """One row of the raw judgment formats, in column order."""

    judgment_id: int
    comparison_id: int
    external_id: str
    model_a: str  # the model of response "a" (canonical order), and of "b": traceable rows
    model_b: str
    rater: str
    choice: str
    display_order: str
    strength: str | None
    criteria: str  # compact JSON object {criterion: canonical choice}
    rationale: str
    flags: str  # compact JSON list
    duration_ms: int | None
    is_gold: bool
    gold_choice: str | None
    is_late: bool
    counted: bool
    shown_at: datetime
    created_at: datetime
    adjudication: str | None  # the comparison's verdict in force (or "exclude"), if any


JUDGMENT_COLUMNS = JudgmentRow._fields


# --- preference rows -------------------------------------------------------------------------


def messages(prompt: Any) -> list[dict[str, str]]:
    """A stored prompt as a list of {role, content} messages (a string is one user turn)."""
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


def pair_rows(format: str, verdict: Verdict, content: dict) -> list[dict]:
    """The rows a verdict on one comparison becomes; `content` holds its external id, prompt
    messages and responses [(model, text)] in canonical order."""
    prompt = content["prompt"]
    (model_a, text_a), (model_b, text_b) = content["responses"][:2]
    if format == ExportFormat.TRL_KTO:
        if verdict.choice == Choice.BOTH_BAD:
            labels = [(model_a, text_a, False), (model_b, text_b, False)]
        else:
            a_wins = verdict.choice == Choice.A
            labels = [(model_a, text_a, a_wins), (model_b, text_b, not a_wins)]
        # TRL reads prompt, completion and label; id and model trace a row to its comparison
        # and response, as the paired formats' id and chosen_model/rejected_model do.
        return [
            {
                "id": content["external_id"],
                "prompt": prompt,
                "completion": _assistant(text),
                "label": label,
                "model": model,
            }
            for model, text, label in labels
        ]
    if verdict.choice == Choice.A:
        chosen, rejected = (model_a, text_a), (model_b, text_b)
    else:
        chosen, rejected = (model_b, text_b), (model_a, text_a)
    if format == ExportFormat.OPENAI_DPO:
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
            "adjudicated": verdict.adjudicated,
        }
    ]


# --- writers ---------------------------------------------------------------------------------
# Each takes lists of rows (dicts for the preference formats, JudgmentRow for the raw ones) and
# writes them to a binary file the caller owns; close() finishes the format and returns what
# the manifest should say about the file, if anything.


class JsonlWriter:
    def __init__(self, fh: BinaryIO):
        self.fh = fh

    def write(self, rows: list[dict]) -> None:
        self.fh.write(
            "".join(
                json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows
            ).encode()
        )

    def close(self) -> dict:
        return {}


class ParquetWriter:
    def __init__(self, fh: BinaryIO, schema: pa.Schema):
        self.schema = schema
        self.pending: list = []
        # No write timestamps, a fixed writer version and compression: same rows, same bytes.
        self.writer = pq.ParquetWriter(fh, schema, compression="zstd", version="2.6")

    def write(self, rows: list) -> None:
        self.pending.extend(rows)
        if len(self.pending) >= PARQUET_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist(self.pending, schema=self.schema))
            self.pending = []

    def close(self) -> dict:
        self._flush()
        self.writer.close()
        return {}


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
        ("adjudicated", pa.bool_()),
    ]
)
UTC_MICROS = pa.timestamp("us", tz="UTC")
JUDGMENT_SCHEMA = pa.schema(
    [
        ("judgment_id", pa.int64()),
        ("comparison_id", pa.int64()),
        ("external_id", pa.string()),
        ("model_a", pa.string()),
        ("model_b", pa.string()),
        ("rater", pa.string()),
        ("choice", pa.string()),
        ("display_order", pa.string()),
        ("strength", pa.string()),
        ("criteria", pa.null()),  # replaced per export: a struct, see judgment_schema
        ("rationale", pa.string()),
        ("flags", pa.list_(pa.string())),
        ("duration_ms", pa.int64()),
        ("is_gold", pa.bool_()),
        ("gold_choice", pa.string()),
        ("is_late", pa.bool_()),
        ("counted", pa.bool_()),
        ("shown_at", UTC_MICROS),
        ("created_at", UTC_MICROS),
        ("adjudication", pa.string()),
    ]
)

_JSONL_JUDGMENT = (
    '{"judgment_id":%d,"comparison_id":%d,"external_id":%s,"model_a":%s,"model_b":%s,'
    '"rater":"%s","choice":"%s",'
    '"display_order":"%s","strength":%s,"criteria":%s,"rationale":%s,"flags":%s,'
    '"duration_ms":%s,"is_gold":%s,"gold_choice":%s,"is_late":%s,"counted":%s,'
    '"shown_at":"%s","created_at":"%s","adjudication":%s}\n'
)
_JSON_BOOL = {True: "true", False: "false"}


def _json_str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


class JudgmentJsonlWriter:
    """One JSON object per line, formatted from a template (several times faster than dumps)."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh

    def write(self, rows: list[JudgmentRow]) -> None:
        lines = [
            _JSONL_JUDGMENT
            % (
                r.judgment_id,
                r.comparison_id,
                encode_basestring(r.external_id),
                encode_basestring(r.model_a),
                encode_basestring(r.model_b),
                r.rater,
                r.choice,
                r.display_order,
                _json_str(r.strength),
                r.criteria,
                encode_basestring(r.rationale),
                r.flags,
                "null" if r.duration_ms is None else r.duration_ms,
                _JSON_BOOL[r.is_gold],
                _json_str(r.gold_choice),
                _JSON_BOOL[r.is_late],
                _JSON_BOOL[r.counted],
                iso(r.shown_at),
                iso(r.created_at),
                _json_str(r.adjudication),
            )
            for r in rows
        ]
        self.fh.write("".join(lines).encode())

    def close(self) -> dict:
        return {}


def neutralise_formula(text: str) -> str:
    """The cell as a spreadsheet shows it as text: a leading quote where it could run."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class JudgmentCsvWriter:
    def __init__(self, fh: BinaryIO):
        self.text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        # RFC 4180's CRLF: the writer then quotes every field holding a CR or LF of its own,
        # so a rationale with a carriage return cannot split a row.
        self.csv = csv.writer(self.text, lineterminator="\r\n")
        self.csv.writerow(JUDGMENT_COLUMNS)
        self.neutralised = 0

    def write(self, rows: list[JudgmentRow]) -> None:
        # csv writes None as an empty field; timestamps in the same ISO form as the JSONL.
        out = []
        for r in rows:
            external_id = neutralise_formula(r.external_id)
            rationale = neutralise_formula(r.rationale)
            self.neutralised += (external_id is not r.external_id) + (rationale is not r.rationale)
            out.append(
                r._replace(
                    external_id=external_id,
                    rationale=rationale,
                    shown_at=iso(r.shown_at),
                    created_at=iso(r.created_at),
                )
            )
        self.csv.writerows(out)

    def close(self) -> dict:
        self.text.flush()
        self.text.detach()  # the caller owns (fsyncs and closes) the binary file
        return {"formula_guard": FORMULA_GUARD, "cells_neutralised": self.neutralised}


def judgment_schema(criteria: list[str]) -> pa.Schema:
    """The raw judgments' Parquet schema: `criteria` a struct with one string field per
    criterion name (null where a judgment has no answer for it), so it is queried as columns,
    not parsed; a scheme without criteria has a null column of that name."""
    index = JUDGMENT_SCHEMA.get_field_index("criteria")
    kind = pa.struct([(name, pa.string()) for name in criteria]) if criteria else pa.null()
    return JUDGMENT_SCHEMA.set(index, pa.field("criteria", kind))


class JudgmentParquetWriter(ParquetWriter):
    def __init__(self, fh: BinaryIO, criteria: list[str]):
        super().__init__(fh, judgment_schema(criteria))
        self.has_criteria = bool(criteria)

    def _flush(self) -> None:
        if self.pending:
            columns = [list(column) for column in zip(*self.pending, strict=True)]
            flags = JUDGMENT_COLUMNS.index("flags")
            columns[flags] = [[] if f == "[]" else json.loads(f) for f in columns[flags]]
            at = JUDGMENT_COLUMNS.index("criteria")
            columns[at] = (
                [{} if c == "{}" else json.loads(c) for c in columns[at]]
                if self.has_criteria
                else [None] * len(columns[at])
            )
            self.writer.write_batch(pa.record_batch(columns, schema=self.schema))
            self.pending = []


def open_writer(format: ExportFormat, fh: BinaryIO, *, criteria: list[str] = ()):
    """The writer of `format`; `criteria` names the struct fields of the judgments Parquet."""
    if format == ExportFormat.TRL_PARQUET:
        return ParquetWriter(fh, TRL_SCHEMA)
    if format == ExportFormat.JUDGMENTS_PARQUET:
        return JudgmentParquetWriter(fh, list(criteria))
    if format == ExportFormat.JUDGMENTS_CSV:
        return JudgmentCsvWriter(fh)
    if format == ExportFormat.JUDGMENTS:
        return JudgmentJsonlWriter(fh)
    return JsonlWriter(fh)
