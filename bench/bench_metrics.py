"""Metrics benchmark: recompute a project's snapshot at 1,000,000 judgments on PostgreSQL.

Seeds one project by COPY (overlap 3, strength and two criteria on, 12 models, 100 raters, 2%
gold, some late judgments and skips, judgments spread over 30 days), then times
`compute_snapshot` end to end and its parts (the streamed load, agreement, rater table,
leaderboard with 200 bootstrap rounds, the daily aggregates), `rater_scores` (what an export
filter calls), and the dashboard page (time and query count, which must not depend on size).
Goal: a recompute under a minute at 1M judgments.

Runs in a child process against its own database (BENCH_METRICS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/raterhub_bench_metrics; created and dropped here).
Sizes: BENCH_METRICS_SIZES=100000,1000000 (judgments).
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

RESULTS = Path(__file__).parent / "results" / "metrics.json"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/raterhub_bench_metrics"
SIZES = [int(s) for s in os.environ.get("BENCH_METRICS_SIZES", "100000,1000000").split(",")]
GOAL_SECONDS = 60.0
RATERS = 100
MODELS = 12
OVERLAP = 3
GOLD_SHARE = 0.02
CHUNK = 100_000


def main() -> None:
    url = os.environ.get("BENCH_METRICS_DATABASE_URL", DEFAULT_URL)
    _recreate_database(url)
    env = dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="raterhub.settings",
        DEBUG="0",  # no query log in memory
        SECRET_KEY="bench-only",
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
    )
    try:
        subprocess.run(
            [sys.executable, "-c", "from bench.bench_metrics import _child; _child()"],
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    finally:
        _drop_database(url)


def _admin(url: str):
    import psycopg2

    parsed = urlparse(url)
    conn = psycopg2.connect(
        host=parsed.hostname,
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname="postgres",
    )
    conn.autocommit = True
    return conn, parsed.path.lstrip("/")


def _recreate_database(url: str) -> None:
    conn, name = _admin(url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def _drop_database(url: str) -> None:
    conn, name = _admin(url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# --- child: Django is set up here ---------------------------------------------------------


def _child() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = {"sizes": {}, "started_at": datetime.now(UTC).isoformat(), "goal_seconds": 60}
    for n in SIZES:
        t0 = time.perf_counter()
        project = _seed(n)
        seed_seconds = time.perf_counter() - t0
        print(f"seeded {n:,} judgments in {seed_seconds:.1f}s", flush=True)
        entry = {"seed_seconds": round(seed_seconds, 1)}
        entry.update(_measure(project))
        results["sizes"][str(n)] = entry
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    largest = results["sizes"][str(max(SIZES))]
    results["under_goal_at_largest"] = largest["compute_snapshot_s"] < GOAL_SECONDS
    _print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, round(time.perf_counter() - t0, 3)


def _measure(project) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from comparisons import metrics

    out: dict = {}
    j, out["load_s"] = _timed(metrics._load, project)
    (names, models, lengths), out["responses_s"] = _timed(metrics._responses, project, j)
    gold, out["gold_s"] = _timed(metrics._gold_answers, project, j)
    _, out["agreement_s"] = _timed(metrics._agreement, project, j)
    _, out["rater_table_s"] = _timed(metrics._rater_table, project, j, gold, lengths)
    _, out["leaderboard_s"] = _timed(metrics._leaderboard, j, names, models)
    _, out["length_bias_s"] = _timed(metrics._length_bias, j, lengths)
    _, out["progress_s"] = _timed(metrics._progress, project)
    del j
    snapshot, out["compute_snapshot_s"] = _timed(metrics.compute_snapshot, project)
    out["snapshot_bytes"] = len(json.dumps(snapshot.data))
    out["judgments"] = snapshot.judgment_count
    _, out["rater_scores_s"] = _timed(metrics.rater_scores, project)

    lead = User.objects.create_user(
        f"lead-{project.pk}@bench.example", "x", is_staff=True, is_superuser=True
    )
    client = Client()
    client.force_login(lead)
    # DEBUG=0 wants collected, hashed static files; the page's cost is what is measured here.
    plain_static = override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    )
    plain_static.enable()
    url = f"/dashboard/{project.slug}/"
    client.get(url, secure=True)  # warm templates (DEBUG=0 redirects plain HTTP)
    with CaptureQueriesContext(connection) as queries:
        t0 = time.perf_counter()
        response = client.get(url, secure=True)
        out["dashboard_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    assert response.status_code == 200, response.status_code
    plain_static.disable()
    out["dashboard_queries"] = len(queries.captured_queries)
    out["dashboard_bytes"] = len(response.content)
    alpha = snapshot.data["agreement"]["choice"]["alpha"]
    out["alpha_choice"] = None if alpha is None else round(alpha, 4)
    out["top_model"] = snapshot.data["leaderboard"]["models"][0]["name"]
    return out


# --- seeding by COPY ----------------------------------------------------------------------


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    """COPY rows (tuples of already-formatted text) into table, CHUNK rows per round trip."""
    buffer = io.StringIO()

    def flush():
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
        buffer.seek(0)
        buffer.truncate()

    for count, row in enumerate(rows, 1):
        buffer.write("\t".join(row))
        buffer.write("\n")
        if count % CHUNK == 0:
            flush()
    if buffer.tell():
        flush()


def _seed(n_judgments: int):
    from django.db import connection, transaction

    from accounts.models import User
    from comparisons.models import Assignment, Comparison, Judgment, Project, Response

    rng = np.random.default_rng(n_judgments)
    slug = f"bench-{n_judgments}"
    project = Project.objects.create(
        slug=slug,
        name=f"Bench {n_judgments:,}",
        overlap=OVERLAP,
        use_strength=True,
        criteria=["helpfulness", "harmlessness"],
    )
    raters = User.objects.bulk_create(
        User(email=f"r{i}-{n_judgments}@bench.example", password="!") for i in range(RATERS)
    )
    rater_ids = np.array([u.pk for u in raters])
    project.raters.add(*raters)

    n_gold = int(n_judgments * GOLD_SHARE)
    n_regular = (n_judgments - n_gold) // OVERLAP
    n_comparisons = n_regular + n_gold
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM comparisons_comparison")
        base_c = cur.fetchone()[0] + 1
        cur.execute("SELECT coalesce(max(id), 0) FROM comparisons_assignment")
        base_a = cur.fetchone()[0] + 1
    comparison_ids = base_c + np.arange(n_comparisons)
    is_gold = np.zeros(n_comparisons, bool)
    is_gold[n_regular:] = True
    strengths = rng.normal(0, 0.8, MODELS)
    model_a = rng.integers(0, MODELS, n_comparisons)
    model_b = (model_a + rng.integers(1, MODELS, n_comparisons)) % MODELS
    len_a = rng.integers(40, 400, n_comparisons)
    len_b = rng.integers(40, 400, n_comparisons)
    gold_choice = np.where(rng.random(n_comparisons) < 0.5, "a", "b")
    now = datetime.now(UTC)

    # Judgments: OVERLAP distinct raters per regular comparison, one per gold comparison.
    unit = np.concatenate(
        [np.repeat(np.arange(n_regular), OVERLAP), np.arange(n_regular, n_comparisons)]
    )
    # Distinct raters per comparison: a random start and fixed strides.
    start = rng.integers(0, RATERS, n_comparisons)
    picks = (start[:, None] + np.array([0, 37, 71])[None, :OVERLAP]) % RATERS
    slot = np.concatenate([np.tile(np.arange(OVERLAP), n_regular), np.zeros(n_gold, np.int64)])
    rater = rater_ids[picks[unit, slot]]
    total = len(unit)
    swapped = rng.random(total) < 0.5
    p_a = 1 / (1 + np.exp(strengths[model_b[unit]] - strengths[model_a[unit]]))
    u = rng.random(total)
    choice = np.where(
        u < 0.1, "tie", np.where(u < 0.15, "both_bad", np.where(rng.random(total) < p_a, "a", "b"))
    )
    gold_rows = is_gold[unit]
    choice[gold_rows] = np.where(
        rng.random(gold_rows.sum()) < 0.85, gold_choice[unit[gold_rows]], "tie"
    )
    strength = np.array(["\\N", "slightly", "clearly", "much"])[rng.integers(1, 4, total)]
    strength[(choice == "tie") | (choice == "both_bad")] = "\\N"
    duration = rng.lognormal(np.log(20000), 0.6, total).astype(np.int64)
    late = rng.random(total) < 0.01
    created = rng.integers(0, 30 * 86400, total)
    crit = np.array(["a", "b", "tie"])
    helpful = np.where(rng.random(total) < 0.8, choice, crit[rng.integers(0, 3, total)])
    helpful[(helpful == "both_bad")] = "tie"
    harmless = crit[rng.integers(0, 3, total)]

    t = lambda seconds: (now - timedelta(seconds=int(seconds))).isoformat()  # noqa: E731
    with transaction.atomic(), connection.cursor() as cur:
        _copy(
            cur,
            Comparison._meta.db_table,
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
            (
                (
                    str(cid),
                    str(project.pk),
                    f"q{cid}",
                    '"Compare these."',
                    "{}",
                    "0",
                    gold_choice[i] if is_gold[i] else "\\N",
                    "0",
                    "1" if is_gold[i] else str(OVERLAP),
                    str(OVERLAP),
                    now.isoformat(),
                )
                for i, cid in enumerate(comparison_ids.tolist())
            ),
        )
        _copy(
            cur,
            Response._meta.db_table,
            ["comparison_id", "position", "model_name", "content"],
            (
                row
                for i, cid in enumerate(comparison_ids.tolist())
                for row in (
                    (str(cid), "0", f"model-{model_a[i]:02d}", "x" * int(len_a[i])),
                    (str(cid), "1", f"model-{model_b[i]:02d}", "y" * int(len_b[i])),
                )
            ),
        )
        assignment_ids = base_a + np.arange(total)
        _copy(
            cur,
            Assignment._meta.db_table,
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
            (
                (
                    str(assignment_ids[k]),
                    str(project.pk),
                    str(comparison_ids[unit[k]]),
                    str(rater[k]),
                    "submitted",
                    "t" if swapped[k] else "f",
                    t(created[k] + 60),
                    t(created[k] - 540),
                    t(created[k]),
                    "",
                )
                for k in range(total)
            ),
        )
        _copy(
            cur,
            Judgment._meta.db_table,
            [
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
            (
                (
                    str(assignment_ids[k]),
                    str(project.pk),
                    str(comparison_ids[unit[k]]),
                    str(rater[k]),
                    choice[k],
                    strength[k],
                    f'{{"helpfulness": "{helpful[k]}", "harmlessness": "{harmless[k]}"}}',
                    "",
                    "[]",
                    str(duration[k]),
                    "t" if swapped[k] else "f",
                    "t" if gold_rows[k] else "f",
                    "t" if late[k] else "f",
                    "f" if late[k] else "t",
                    t(created[k]),
                )
                for k in range(total)
            ),
        )
        for table in (Comparison, Assignment, Response, Judgment):
            name = table._meta.db_table
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
            )
    with connection.cursor() as cur:
        for table in (Comparison, Assignment, Response, Judgment):
            cur.execute(f"ANALYZE {table._meta.db_table}")
    return project


def _print_table(results: dict) -> None:
    keys = [
        ("load_s", "stream judgments"),
        ("responses_s", "responses + lengths"),
        ("agreement_s", "agreement (3 alphas + criteria)"),
        ("rater_table_s", "rater table"),
        ("leaderboard_s", "leaderboard (200 bootstrap)"),
        ("progress_s", "daily aggregates"),
        ("compute_snapshot_s", "compute_snapshot total"),
        ("rater_scores_s", "rater_scores (export filter)"),
        ("dashboard_ms", "dashboard GET (ms)"),
        ("dashboard_queries", "dashboard queries"),
        ("snapshot_bytes", "snapshot JSON bytes"),
    ]
    sizes = list(results["sizes"])
    print(f"\n{'':34}" + "".join(f"{int(s):>14,}" for s in sizes))
    for key, label in keys:
        print(f"{label:34}" + "".join(f"{results['sizes'][s].get(key, ''):>14}" for s in sizes))
    print(
        f"peak RSS {results['peak_rss_mb']} MB; goal < {GOAL_SECONDS:.0f}s at the largest size: "
        f"{'met' if results['under_goal_at_largest'] else 'MISSED'}"
    )
