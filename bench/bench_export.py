"""Export benchmark: every format over 1,000,000 judgments on PostgreSQL, beside raw COPY.

Seeds (by COPY) one project of BENCH_EXPORT_COMPARISONS comparisons (default 333,334) judged by
three raters each (1,000,002 judgments; a mix of a / b / tie / both_bad with strengths, ~400
character responses), then for each format runs `export_preferences` in a fresh subprocess and
reports its wall time, judgments read per second, rows written, file size and peak RSS
(ru_maxrss of that subprocess, Django and pyarrow included). The floor is a raw
`COPY (SELECT …) TO STDOUT` of the same judgment rows (same joins, filter and order) into a file.

Goals (issue 5): `judgments` JSONL within 3x of COPY, every format under 60 s, peak RSS under
300 MB. Database: BENCH_EXPORT_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/raterhub_bench_export), created and dropped here.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common

COMPARISONS = int(os.environ.get("BENCH_EXPORT_COMPARISONS", "333334"))
FORMATS = os.environ.get(
    "BENCH_EXPORT_FORMATS",
    "judgments,judgments-csv,judgments-parquet,trl,trl-parquet,trl-kto,openai-dpo",
).split(",")
RATERS = 60
GOAL_SECONDS = 60
GOAL_RSS_MB = 300
GOAL_COPY_RATIO = 3


def main() -> None:
    url = common.database_url("export")
    common.recreate_database(url)
    env = common.child_env(url)
    out_dir = Path(tempfile.mkdtemp(prefix="raterhub-bench-export-"))
    try:
        _run_child(env, ["seed"])
        results = [_copy_floor(url, out_dir)]
        for fmt in FORMATS:
            results.append(_run_child(env, ["export", fmt, str(out_dir / f"out.{fmt}")]))
            (out_dir / f"out.{fmt}").unlink(missing_ok=True)
    finally:
        for leftover in out_dir.glob("*"):
            leftover.unlink()
        out_dir.rmdir()
        if not os.environ.get("BENCH_EXPORT_KEEP_DB"):
            common.drop_database(url)
    _report(results)


def _run_child(env: dict, args: list[str]) -> dict:
    out = common.run_child("bench.bench_export", env, *args, capture=True)
    return json.loads(out.strip().splitlines()[-1])


def _report(results: list[dict]) -> None:
    floor = results[0]["seconds"]
    marks = []
    for r in results:
        r["x_copy"] = round(r["seconds"] / floor, 2)
        misses = []
        if r["format"] != "COPY (floor)":
            if r["seconds"] > GOAL_SECONDS:
                misses.append(f">{GOAL_SECONDS}s")
            if r["peak_rss_mb"] > GOAL_RSS_MB:
                misses.append(f">{GOAL_RSS_MB}MB")
            if r["format"] == "judgments" and r["seconds"] / floor > GOAL_COPY_RATIO:
                misses.append(f">{GOAL_COPY_RATIO}x COPY")
        r["goals_met"] = not misses
        marks.append("ok" if not misses else "MISSED " + " ".join(misses))
    common.print_table(
        f"{'format':<18} {'seconds':>8} {'x COPY':>7} {'judgments/s':>12} {'rows':>9} "
        f"{'MB':>7} {'peak RSS MB':>12}  goals",
        (
            f"{r['format']:<18} {r['seconds']:>8.2f} {r['seconds'] / floor:>7.2f} "
            f"{r['judgments_per_s']:>12,.0f} {r['rows']:>9,} {r['bytes'] / 1e6:>7.1f} "
            f"{r['peak_rss_mb']:>12.1f}  {mark}"
            for r, mark in zip(results, marks, strict=True)
        ),
        rule=False,
    )
    common.write_results(
        "export",
        {
            "benchmark": "export",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "comparisons": COMPARISONS,
            "judgments": results[0]["rows"],
            "goals": {
                "seconds": GOAL_SECONDS,
                "peak_rss_mb": GOAL_RSS_MB,
                "judgments_vs_copy": GOAL_COPY_RATIO,
            },
            "results": results,
        },
    )


# The raw rows `judgments` exports: same joins, filter and order, no Python in between.
COPY_SQL = """
COPY (
  SELECT j.id, j.comparison_id, c.external_id, j.rater_id, j.choice, j.swapped, j.strength,
         j.criteria, j.rationale, j.flags, j.duration_ms, j.is_gold, c.gold_choice, j.is_late,
         j.counted, a.leased_at, j.created_at
  FROM comparisons_judgment j
  JOIN comparisons_comparison c ON c.id = j.comparison_id
  JOIN comparisons_assignment a ON a.id = j.assignment_id
  WHERE j.project_id = {pid} AND NOT j.is_gold AND NOT j.is_late
  ORDER BY j.comparison_id, j.id
) TO STDOUT
"""


def _copy_floor(url: str, out_dir: Path) -> dict:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM comparisons_project WHERE slug = 'bench-export'")
        pid = cur.fetchone()[0]
        path = out_dir / "copy.tsv"
        started = time.perf_counter()
        with open(path, "w") as fh:
            cur.copy_expert(COPY_SQL.format(pid=pid), fh)
            fh.flush()
            os.fsync(fh.fileno())
        seconds = time.perf_counter() - started
        rows = cur.rowcount
    conn.close()
    size = path.stat().st_size
    path.unlink()
    return {
        "format": "COPY (floor)",
        "seconds": round(seconds, 3),
        "judgments_per_s": rows / seconds,
        "rows": rows,
        "bytes": size,
        "peak_rss_mb": 0.0,
    }


# --- child processes: Django is set up here --------------------------------------------------


def _child() -> None:
    command, *args = sys.argv[1:]
    common.setup_django(migrate=command == "seed")
    result = _seed() if command == "seed" else _export(*args)
    print(json.dumps(result))


def _export(fmt: str, path: str) -> dict:
    import resource

    from comparisons.exports import export_preferences
    from comparisons.models import Project

    project = Project.objects.get(slug="bench-export")
    started = time.perf_counter()
    manifest = export_preferences(project, fmt, path)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "format": fmt,
        "seconds": round(seconds, 3),
        "judgments_per_s": manifest["counts"]["judgments"] / seconds,
        "rows": manifest["counts"]["rows_written"],
        "bytes": manifest["bytes"],
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "rows_dropped": manifest["counts"]["rows_dropped"],
    }


def _seed() -> dict:
    from accounts.models import User
    from comparisons.models import Project

    started = time.perf_counter()
    User.objects.bulk_create(
        User(email=f"rater{i}@bench.example", password="!") for i in range(RATERS)
    )
    rater_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    project = Project.objects.create(
        slug="bench-export", name="Bench export", overlap=3, use_strength=True
    )
    judgments = common.seed_project(project, COMPARISONS, rater_ids, responses=(335, 350), seed=5)
    return {"seeded_judgments": judgments, "seconds": round(time.perf_counter() - started, 1)}
