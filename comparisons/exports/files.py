"""`export_preferences`: one export to one file, written whole or not at all, with its manifest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from comparisons.exports import ranked, source
from comparisons.exports.options import ExportOptions, below, parse_options
from comparisons.exports.rows import iso, open_writer, pair_rows
from comparisons.exports.verdicts import (
    AGGREGATED_ONLY_DEFINITIONS,
    DEFINITIONS,
    EXCLUDE,
    Verdict,
    adjudicated,
    aggregate,
    drop_reason,
)
from comparisons.models import ExportFormat, Project

CONTENT_BATCH = 1000  # comparisons whose prompt and responses are fetched together
# One mode for an export's file and its manifest, whatever the umask: owner read-write, group
# read, nothing for others. Both hold what a rater wrote or who was left out (pseudonyms,
# rationales, the e-mails of excluded raters), so they are not world-readable like a 0644 file;
# the group bit lets a service account or a backup job of the same group read them, which a
# 0600 file (mkstemp's default, the old data file) refused while its 0644 manifest allowed all.
EXPORT_FILE_MODE = 0o640

ProgressCallback = Callable[[int, int], None]


@dataclass
class _Counts:
    judgments: int = 0
    comparisons: int = 0
    rows: int = 0
    dropped: Counter = field(default_factory=Counter)
    adjudicated: int = 0  # comparisons whose reviewer's verdict replaced the vote
    excluded: int = 0  # comparisons a reviewer excluded


def _write_preferences(
    format: ExportFormat, opts: ExportOptions, selection, writer, counts, tick, rulings
):
    pending: list[Verdict] = []

    def flush() -> None:
        found = source.contents(sorted({v.comparison_id for v in pending}))
        rows: list[dict] = []
        for verdict in pending:
            content = found.get(verdict.comparison_id)
            if content is None or len(content["responses"]) < 2:
                counts.dropped["missing_response"] += 1
                continue
            if not content["prompt"] or content["prompt"][-1]["role"] != "user":
                counts.dropped["prompt_not_ending_in_user"] += 1
                continue
            rows.extend(pair_rows(format, verdict, content))
        writer.write(rows)
        counts.rows += len(rows)
        pending.clear()

    for cid, votes in source.votes_by_comparison(selection.queryset):
        counts.comparisons += 1
        counts.judgments += len(votes)
        tick(len(votes))
        ruling = rulings.get(cid)
        if ruling == EXCLUDE:
            counts.excluded += 1
            counts.dropped["excluded"] += 1
            continue
        if ruling is not None:
            # The reviewer's verdict replaces the vote, past the filters that judge the vote.
            counts.adjudicated += 1
            verdict = adjudicated(cid, votes, ruling)
            reason = drop_reason(format, verdict.choice)
            if reason:
                counts.dropped[reason] += 1
            else:
                pending.append(verdict)
            if len(pending) >= CONTENT_BATCH:
                flush()
            continue
        if opts.min_judgments is not None and len(votes) < opts.min_judgments:
            counts.dropped["min_judgments"] += 1 if opts.aggregation != "all" else len(votes)
            continue
        verdicts, reason = aggregate(cid, votes, opts.aggregation)
        if reason:
            counts.dropped[reason] += 1
        for verdict in verdicts:
            reason = drop_reason(format, verdict.choice)
            if reason is None and below(verdict.agreement, opts.min_agreement):
                reason = "min_agreement"
            if reason:
                counts.dropped[reason] += 1
            else:
                pending.append(verdict)
        if len(pending) >= CONTENT_BATCH:
            flush()
    flush()


def _write_judgments(project: Project, selection, writer, counts, tick, rulings) -> None:
    batch: list = []
    last_cid = None
    for row in source.judgment_rows(project, selection.queryset, rulings):
        batch.append(row)
        if row.comparison_id != last_cid:
            counts.comparisons += 1
            last_cid = row.comparison_id
            if row.adjudication == EXCLUDE:
                counts.excluded += 1
            elif row.adjudication is not None:
                counts.adjudicated += 1
        if len(batch) >= source.CHUNK_SIZE:
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
        return version("raterhub")
    except PackageNotFoundError:
        return "unknown"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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


def write_manifest(path: str | os.PathLike, manifest: dict) -> Path:
    """Write a manifest as indented JSON with the export file's own mode; return its path."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, EXPORT_FILE_MODE)
    os.fchmod(fd, EXPORT_FILE_MODE)  # an existing file, or a umask, keeps no other mode
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


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
    fmt = ExportFormat(format)
    ranked.check_format(project, fmt)
    started = timezone.now()
    selection = source.select(project, opts)
    rulings = source.rulings(project)
    total = selection.total
    counts = _Counts()
    done = reported = 0

    def tick(n: int) -> None:
        nonlocal done, reported
        done += n
        # Preference formats tick once per comparison: report about once per chunk read.
        if progress is not None and done - reported >= source.CHUNK_SIZE:
            progress(done, total)
            reported = done

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(fd, EXPORT_FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            criteria = (
                source.criteria_names(project, selection.queryset)
                if fmt == ExportFormat.JUDGMENTS_PARQUET
                else ()
            )
            writer = (project.is_ranking and ranked.open_writer(fmt, fh)) or open_writer(
                fmt, fh, criteria=criteria
            )
            if fmt == ExportFormat.RANKINGS:
                ranked.write_rankings(project, selection, writer, counts, tick)
            elif project.is_ranking and not fmt.is_raw:
                ranked.write_pairs(fmt, opts, selection, writer, counts, tick)
            elif fmt.is_raw:
                _write_judgments(project, selection, writer, counts, tick, rulings)
            else:
                _write_preferences(fmt, opts, selection, writer, counts, tick, rulings)
            file_notes = writer.close()
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
    definitions = {
        **{
            k: v
            for k, v in DEFINITIONS.items()
            if not fmt.is_raw or k not in AGGREGATED_ONLY_DEFINITIONS
        },
        "since": "judgment created_at >= since",
        "until": "judgment created_at < until",
        "rater": source.PSEUDONYM_DEFINITION,
        "rater_thresholds": "raters without a score (None) are kept",
        "complete": (
            "a regular comparison whose counted judgments reached `overlap` (fixed policy), or "
            "at least `min_overlap` with a leading choice that the judgments left up to "
            "`max_overlap` could not overturn, or `max_overlap` (adaptive policy); "
            "num_judgments therefore varies per row under the adaptive policy"
        ),
    }
    manifest = {
        "format": fmt.value,
        "file": path.name,
        "bytes": size,
        "sha256": checksum,
        "project": {"id": project.pk, "slug": project.slug, "name": project.name},
        "options": opts.as_json(),
        "overlap": {
            "policy": project.overlap_policy,
            "overlap": project.overlap,
            "min_overlap": project.min_overlap,
            "max_overlap": project.max_overlap,
            "complete_only": not opts.include_incomplete,
        },
        "counts": {
            "comparisons": counts.comparisons,
            "judgments": counts.judgments,
            "rows_written": counts.rows,
            "adjudicated": counts.adjudicated,
            "excluded": counts.excluded,
            "rows_dropped": dict(sorted(counts.dropped.items())),
            "dropped_unit": "judgment" if opts.aggregation == "all" or fmt.is_raw else "comparison",
            "judgments_excluded": selection.judgments_excluded,
            "raters_excluded": selection.raters_excluded,
        },
        "definitions": definitions,
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_s": round((finished - started).total_seconds(), 3),
        "code_version": code_version(),
    }
    if file_notes:
        manifest["file_notes"] = file_notes
    if project.is_ranking:
        manifest["ranking"] = ranked.manifest_notes(fmt)
    return manifest
