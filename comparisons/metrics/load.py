"""A project's judgments as numpy arrays, read once (the only module of metrics that queries
judgments row by row)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length

from comparisons.models import (
    Adjudication,
    Choice,
    Comparison,
    Judgment,
    Project,
    Response,
    ReviewVerdict,
    Strength,
)

CHOICES = [Choice.A.value, Choice.B.value, Choice.TIE.value, Choice.BOTH_BAD.value]

CHOICE_CODE = {c: i for i, c in enumerate(CHOICES)}
A, B, TIE, BOTH_BAD = range(4)
STRENGTH_CODE = {
    None: 0,
    Strength.SLIGHTLY.value: 1,
    Strength.CLEARLY.value: 2,
    Strength.MUCH.value: 3,
}

CHUNK = 20_000


@dataclass
class Judgments:
    """A project's judgments as parallel arrays, one entry per judgment."""

    ids: np.ndarray  # judgment id
    unit: np.ndarray  # comparison index into .comparison_ids
    rater: np.ndarray  # rater index into .rater_ids
    choice: np.ndarray  # 0 a, 1 b, 2 tie, 3 both_bad
    strength: np.ndarray  # 0 none, 1 slightly, 2 clearly, 3 much
    swapped: np.ndarray
    gold: np.ndarray
    counted: np.ndarray
    late: np.ndarray
    seconds: np.ndarray  # nan when unknown
    criteria: dict[str, np.ndarray]  # per criterion name: choice code, -1 when not given
    comparison_ids: np.ndarray
    rater_ids: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def project_mask(self) -> np.ndarray:
        """Judgments that count for project-level numbers."""
        return self.counted & ~self.late & ~self.gold


def load(project: Project, *, with_criteria: bool | None = None) -> Judgments:
    """Stream the project's judgments once into numpy arrays (chunked: bounded memory)."""
    if with_criteria is None:
        with_criteria = bool(project.criteria)
    fields = [
        "id",
        "comparison_id",
        "rater_id",
        "choice",
        "strength",
        "swapped",
        "is_gold",
        "counted",
        "is_late",
        "duration_ms",
    ]
    names = [str(name) for name in project.criteria] if with_criteria else []
    # Each criterion's choice as text, extracted by the database: parsing a million JSON
    # objects in Python would cost more than all the other columns together.
    qs = (
        Judgment.objects.current()
        .filter(project=project)
        .order_by()
        .values_list(*fields, *(KeyTextTransform(name, "criteria") for name in names))
    )
    cols: dict[str, list[np.ndarray]] = {f: [] for f in fields}
    criteria: dict[str, list[np.ndarray]] = {name: [] for name in names}
    buffer: list[tuple] = []

    def flush() -> None:
        if not buffer:
            return
        columns = list(zip(*buffer, strict=True))
        cols["id"].append(np.fromiter(columns[0], np.int64, len(buffer)))
        cols["comparison_id"].append(np.fromiter(columns[1], np.int64, len(buffer)))
        cols["rater_id"].append(np.fromiter(columns[2], np.int64, len(buffer)))
        cols["choice"].append(
            np.fromiter((CHOICE_CODE[c] for c in columns[3]), np.int8, len(buffer))
        )
        cols["strength"].append(
            np.fromiter((STRENGTH_CODE.get(s, 0) for s in columns[4]), np.int8, len(buffer))
        )
        for i, name in ((5, "swapped"), (6, "is_gold"), (7, "counted"), (8, "is_late")):
            cols[name].append(np.fromiter(columns[i], bool, len(buffer)))
        cols["duration_ms"].append(
            np.fromiter(
                (math.nan if d is None else d / 1000.0 for d in columns[9]),
                np.float64,
                len(buffer),
            )
        )
        for offset, name in enumerate(names, start=len(fields)):
            criteria[name].append(
                np.fromiter((CHOICE_CODE.get(c, -1) for c in columns[offset]), np.int8, len(buffer))
            )
        buffer.clear()

    for row in qs.iterator(chunk_size=CHUNK):
        buffer.append(row)
        if len(buffer) >= CHUNK:
            flush()
    flush()

    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate(cols[name]) if cols[name] else np.zeros(0, dtype)

    comparison_ids, unit = np.unique(cat("comparison_id", np.int64), return_inverse=True)
    rater_ids, rater = np.unique(cat("rater_id", np.int64), return_inverse=True)
    return Judgments(
        ids=cat("id", np.int64),
        unit=unit.astype(np.int64),
        rater=rater.astype(np.int64),
        choice=cat("choice", np.int8),
        strength=cat("strength", np.int8),
        swapped=cat("swapped", bool),
        gold=cat("is_gold", bool),
        counted=cat("counted", bool),
        late=cat("is_late", bool),
        seconds=cat("duration_ms", np.float64),
        criteria={
            name: np.concatenate(parts) if parts else np.zeros(0, np.int8)
            for name, parts in criteria.items()
        },
        comparison_ids=comparison_ids,
        rater_ids=rater_ids,
    )


def per_unit(j: Judgments, comparison_values: dict[int, Any], fill, dtype) -> np.ndarray:
    """Map a {comparison id: value} dict onto each judgment (fill where absent)."""
    if not j.size:
        return np.zeros(0, dtype)
    lookup = np.array([comparison_values.get(int(cid), fill) for cid in j.comparison_ids], dtype)
    return lookup[j.unit]


def gold_answers(project: Project, j: Judgments) -> np.ndarray:
    """The gold choice code of each judgment's comparison, -1 for regular comparisons."""
    gold = {
        cid: CHOICE_CODE[choice]
        for cid, choice in Comparison.objects.filter(project=project, gold_choice__isnull=False)
        .order_by()
        .values_list("id", "gold_choice")
    }
    return per_unit(j, gold, -1, np.int8)


def known_answers(project: Project, j: Judgments) -> tuple[np.ndarray, np.ndarray]:
    """Per judgment: the known answer's choice code (-1 for none) and whether it is a
    reviewer's verdict. A comparison's verdict in force is its known answer, over its gold
    answer too (a reviewer may find the gold wrong); an excluded comparison has none."""
    answers = gold_answers(project, j)
    verdicts = dict(
        Adjudication.objects.filter(project=project)
        .latest_per_comparison()
        .order_by()
        .values_list("comparison_id", "choice")
    )
    codes = {
        cid: -1 if choice == ReviewVerdict.EXCLUDE else CHOICE_CODE[choice]
        for cid, choice in verdicts.items()
    }
    adjudicated = per_unit(j, dict.fromkeys(codes, True), False, bool)
    answers = np.where(adjudicated, per_unit(j, codes, -1, np.int8), answers).astype(np.int8)
    return answers, adjudicated & (answers >= 0)


def responses(project: Project, j: Judgments) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model names and content lengths of responses A and B for every judged comparison.

    Returns (model names, model index per comparison (N, 2) with -1 when missing,
    lengths per comparison (N, 2) with -1 when missing), indexed like j.comparison_ids.
    """
    n = len(j.comparison_ids)
    models = np.full((n, 2), -1, np.int64)
    lengths = np.full((n, 2), -1, np.int64)
    names: dict[str, int] = {}
    if not n:
        return [], models, lengths
    rows = (
        Response.objects.filter(comparison__project=project, position__in=(0, 1))
        .order_by()
        .values_list("comparison_id", "position", "model_name", Length("content"))
    )
    cids, positions, model_idx, lens = [], [], [], []
    for cid, position, name, length in rows.iterator(chunk_size=CHUNK):
        cids.append(cid)
        positions.append(position)
        model_idx.append(names.setdefault(name, len(names)))
        lens.append(length or 0)
    if cids:
        cid_arr = np.array(cids, np.int64)
        where = np.searchsorted(j.comparison_ids, cid_arr)
        where = np.clip(where, 0, n - 1)
        known = j.comparison_ids[where] == cid_arr
        pos = np.array(positions, np.int64)[known]
        models[where[known], pos] = np.array(model_idx, np.int64)[known]
        lengths[where[known], pos] = np.array(lens, np.int64)[known]
    return list(names), models, lengths
