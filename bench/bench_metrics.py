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

import json
import resource
import time
from datetime import UTC, datetime

from bench import common

SIZES = common.env_sizes("BENCH_METRICS_SIZES", "100000,1000000")
GOAL_SECONDS = 60.0
RATERS = 100
MODELS = 12
OVERLAP = 3
GOLD_SHARE = 0.02


def main() -> None:
    url = common.database_url("metrics")
    common.recreate_database(url)
    try:
        common.run_child("bench.bench_metrics", common.child_env(url, ALLOWED_HOSTS="testserver"))
    finally:
        common.drop_database(url)


# --- child: Django is set up here ---------------------------------------------------------


def _child() -> None:
    common.setup_django()
    results = {"sizes": {}, "started_at": datetime.now(UTC).isoformat(), "goal_seconds": 60}
    for n in SIZES:
        project, seed_seconds = common.timed(_seed, n)
        print(f"seeded {n:,} judgments in {seed_seconds:.1f}s", flush=True)
        entry = {"seed_seconds": round(seed_seconds, 1)}
        entry.update(_measure(project))
        results["sizes"][str(n)] = entry
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    largest = results["sizes"][str(max(SIZES))]
    results["under_goal_at_largest"] = largest["compute_snapshot_s"] < GOAL_SECONDS
    _print_table(results)
    common.write_results("metrics", results)


def _measure(project) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from comparisons import metrics
    from comparisons.metrics import agreement, leaderboard, load

    out: dict = {}
    j, out["load_s"] = common.timed(load.load, project)
    (names, models, lengths), out["responses_s"] = common.timed(load.responses, project, j)
    _, out["gold_s"] = common.timed(load.gold_answers, project, j)
    _, out["agreement_s"] = common.timed(
        agreement.agreement_of, j, use_strength=project.use_strength
    )
    _, out["rater_table_s"] = common.timed(metrics._rater_table, project, j, lengths)
    _, out["leaderboard_s"] = common.timed(leaderboard.leaderboard_of, j, names, models)
    _, out["length_bias_s"] = common.timed(leaderboard.length_bias_of, j, lengths)
    _, out["progress_s"] = common.timed(metrics.project_progress, project)
    del j
    snapshot, out["compute_snapshot_s"] = common.timed(metrics.compute_snapshot, project)
    out["snapshot_bytes"] = len(json.dumps(snapshot.data))
    out["judgments"] = snapshot.judgment_count
    _, out["rater_scores_s"] = common.timed(metrics.rater_scores, project)

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


def _seed(n_judgments: int):
    """A project of about n_judgments judgments: overlap 3, strength and two criteria, MODELS
    models, RATERS raters, GOLD_SHARE of the judgments on gold, 1% late, over 30 days."""
    from accounts.models import User
    from comparisons.models import Project

    project = Project.objects.create(
        slug=f"bench-{n_judgments}",
        name=f"Bench {n_judgments:,}",
        overlap=OVERLAP,
        use_strength=True,
        criteria=["helpfulness", "harmlessness"],
    )
    raters = User.objects.bulk_create(
        User(email=f"r{i}-{n_judgments}@bench.example", password="!") for i in range(RATERS)
    )
    project.raters.add(*raters)
    n_gold = int(n_judgments * GOLD_SHARE)
    n_comparisons = (n_judgments - n_gold) // OVERLAP + n_gold
    common.seed_project(
        project,
        n_comparisons,
        [u.pk for u in raters],
        models=MODELS,
        gold=n_gold / n_comparisons,
        late=0.01,
        responses=(40, 400),
        spread_days=30,
        seed=n_judgments,
    )
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
    print()
    common.print_table(
        f"{'':34}" + "".join(f"{int(s):>14,}" for s in sizes),
        (f"{label:34}" + "".join(f"{results['sizes'][s].get(key, ''):>14}" for s in sizes)
         for key, label in keys),
        rule=False,
    )  # fmt: skip
    print(
        f"peak RSS {results['peak_rss_mb']} MB; goal < {GOAL_SECONDS:.0f}s at the largest size: "
        f"{'met' if results['under_goal_at_largest'] else 'MISSED'}"
    )
