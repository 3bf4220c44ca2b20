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
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_queue import _copy, _drop_database, _recreate_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "export.json"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/raterhub_bench_export"
COMPARISONS = int(os.environ.get("BENCH_EXPORT_COMPARISONS", "333334"))
FORMATS = os.environ.get(
    "BENCH_EXPORT_FORMATS",
    "judgments,judgments-csv,judgments-parquet,trl,trl-parquet,trl-kto,openai-dpo",
).split(",")
RATERS = 60
GOAL_SECONDS = 60
GOAL_RSS_MB = 300
GOAL_COPY_RATIO = 3

RESPONSE = (
    "TCP slow start doubles the congestion window every round trip until a loss or the "
    "slow-start threshold, then congestion avoidance grows it by one segment per RTT. "
) * 2


def main() -> None:
    url = os.environ.get("BENCH_EXPORT_DATABASE_URL", DEFAULT_URL)
    _recreate_database(url)
    env = dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="raterhub.settings",
        DEBUG="0",  # no query log in memory
        SECRET_KEY="bench-only",
        LOG_LEVEL="WARNING",
    )
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
            _drop_database(url)
    _report(results)


def _run_child(env: dict, args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", "from bench.bench_export import _child; _child()", *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(results: list[dict]) -> None:
    floor = results[0]["seconds"]
    print(
        f"{'format':<18} {'seconds':>8} {'x COPY':>7} {'judgments/s':>12} {'rows':>9} "
        f"{'MB':>7} {'peak RSS MB':>12}  goals"
    )
    for r in results:
        ratio = r["seconds"] / floor
        r["x_copy"] = round(ratio, 2)
        misses = []
        if r["format"] != "COPY (floor)":
            if r["seconds"] > GOAL_SECONDS:
                misses.append(f">{GOAL_SECONDS}s")
            if r["peak_rss_mb"] > GOAL_RSS_MB:
                misses.append(f">{GOAL_RSS_MB}MB")
            if r["format"] == "judgments" and ratio > GOAL_COPY_RATIO:
                misses.append(f">{GOAL_COPY_RATIO}x COPY")
        r["goals_met"] = not misses
        print(
            f"{r['format']:<18} {r['seconds']:>8.2f} {ratio:>7.2f} {r['judgments_per_s']:>12,.0f} "
            f"{r['rows']:>9,} {r['bytes'] / 1e6:>7.1f} {r['peak_rss_mb']:>12.1f}  "
            f"{'ok' if not misses else 'MISSED ' + ' '.join(misses)}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
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
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


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
    import django

    django.setup()
    command, *args = sys.argv[1:]
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
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import User
    from comparisons.models import Project

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    User.objects.bulk_create(
        User(email=f"rater{i}@bench.example", password="!") for i in range(RATERS)
    )
    rater_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    project = Project.objects.create(
        slug="bench-export", name="Bench export", overlap=3, use_strength=True
    )
    pid = str(project.pk)
    n = COMPARISONS
    rng = random.Random(5)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    choices = ["a"] * 45 + ["b"] * 40 + ["tie"] * 10 + ["both_bad"] * 5
    strengths = ["slightly", "clearly", "much"]

    def comparisons():
        for i in range(1, n + 1):
            prompt = json.dumps([{"role": "user", "content": f"Question {i}: explain TCP."}])
            yield (str(i), pid, f"q-{i:07d}", prompt, "{}", "0", "\\N", "0", "3", "3", "2026-01-01")

    def responses():
        rid = 0
        for i in range(1, n + 1):
            for pos, model in ((0, "model-a"), (1, "model-b")):
                rid += 1
                yield (str(rid), str(i), str(pos), model, f"{model} #{i}: {RESPONSE}")

    def judged():
        # (assignment/judgment id, comparison, rater, swapped, choice, strength, when)
        jid = 0
        for i in range(1, n + 1):
            first = rng.randrange(len(rater_ids))
            for k in range(3):
                jid += 1
                choice = rng.choice(choices)
                strength = rng.choice(strengths) if choice in ("a", "b") else None
                when = (base + timedelta(seconds=jid * 2)).isoformat()
                rater = rater_ids[(first + k * 7) % len(rater_ids)]
                yield jid, i, rater, jid % 2 == 0, choice, strength, when

    rows = list(judged())  # ~1M small tuples; the seeder is not what is measured

    def assignments():
        for jid, cid, rater, swapped, _c, _s, when in rows:
            yield (
                str(jid),
                pid,
                str(cid),
                str(rater),
                "submitted",
                "t" if swapped else "f",
                when,
                when,
                when,
                "",
            )

    def judgments():
        for jid, cid, rater, swapped, choice, strength, when in rows:
            yield (
                str(jid),
                str(jid),
                pid,
                str(cid),
                str(rater),
                choice,
                strength or "\\N",
                "{}",
                "",
                "[]",
                str(4000 + jid % 20000),
                "t" if swapped else "f",
                "f",
                "f",
                "t",
                when,
            )

    with connection.cursor() as cur:
        _copy(
            cur,
            "comparisons_comparison",
            [
                "id",
                "project_id",
                "external_id",
                "prompt",
                "metadata",
                "priority",
                "gold_choice",
                "open_slots",
                "judged_count",
                "lease_count",
                "created_at",
            ],
            comparisons(),
        )
        _copy(
            cur,
            "comparisons_response",
            ["id", "comparison_id", "position", "model_name", "content"],
            responses(),
        )
        _copy(
            cur,
            "comparisons_assignment",
            [
                "id",
                "project_id",
                "comparison_id",
                "rater_id",
                "status",
                "swapped",
                "leased_at",
                "expires_at",
                "finished_at",
                "skip_reason",
            ],
            assignments(),
        )
        _copy(
            cur,
            "comparisons_judgment",
            [
                "id",
                "assignment_id",
                "project_id",
                "comparison_id",
                "rater_id",
                "choice",
                "strength",
                "criteria",
                "rationale",
                "flags",
                "duration_ms",
                "swapped",
                "is_gold",
                "is_late",
                "counted",
                "created_at",
            ],
            judgments(),
        )
        for table in ("comparison", "response", "assignment", "judgment"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('comparisons_{table}', 'id'), "
                f"(SELECT max(id) FROM comparisons_{table}))"
            )
        cur.execute("VACUUM ANALYZE")
    return {"seeded_judgments": len(rows), "seconds": round(time.perf_counter() - started, 1)}
