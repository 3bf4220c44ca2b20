"""API benchmark: the token API and its Python client, beside the CLI import and the direct export.

On PostgreSQL (BENCH_API_DATABASE_URL, default raterhub_bench_api, created and dropped here),
gunicorn as in production (BENCH_API_WORKERS sync workers, default 2) and, for the export, a real
Celery worker on the embedded broker. Each client run is its own process (its peak RSS is the
client's own); the server's peak is the largest VmHWM among gunicorn's workers (or the Celery
worker's), each phase on a fresh server.

  push    BENCH_API_PUSH comparisons (default 100,000, bench_import's generator) from a JSONL
          file through `Project.push` (chunks of 5,000), vs `import_comparisons` of the same
          file in one process (what `manage.py import_comparisons` runs)
  pull    BENCH_API_JUDGMENTS judgments (default 1,000,002) through `Project.judgments()`
          (cursor pages of 5,000), vs `export_preferences(..., "judgments")` to a file
  export  the same judgments as a `judgments` export through the API (created, polled by
          `job.wait()`, downloaded), vs the direct export above

Goal (issue 12): push and pull within 2x of the CLI import and the direct export; memory flat in
the data size.

    make bench BENCH=api
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench import common

PUSH = int(os.environ.get("BENCH_API_PUSH", "100000"))
JUDGMENTS = int(os.environ.get("BENCH_API_JUDGMENTS", "1000002"))
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))
PAGE = 5000
RATERS = 60
GOAL_RATIO = 2.0


def main() -> None:
    url = common.database_url("api")
    common.recreate_database(url)
    tmp = Path(tempfile.mkdtemp(prefix="raterhub-bench-api-"))
    env = common.child_env(
        url,
        RATERHUB_VAR_DIR=str(tmp),
        MEDIA_ROOT=str(tmp / "media"),
        RATERHUB_API_RATE_LIMIT="1000000/min",
        RATERHUB_API_MAX_PAGE_SIZE=str(PAGE),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LOG_REQUESTS="0",
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(name, None)  # the embedded filesystem broker, in tmp
    results: dict = {
        "benchmark": "api",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "push_rows": PUSH,
        "gunicorn_workers": WORKERS,
        "cpus": os.cpu_count(),
    }
    try:
        seeded = _django(env, "seed")
        key = seeded["key"]
        results["seed"] = seeded | {"key": "…"}
        print(f"seeded {seeded['judgments']:,} judgments in {seeded['seconds']} s", flush=True)
        path = tmp / "push.jsonl"
        from bench.bench_import import generate

        results["push_file_mb"] = round(generate(path, PUSH) / 2**20, 1)

        with _gunicorn(env) as server:
            results["push"] = _client(env, "push", server.base, key, str(path))
            results["push"]["server_peak_rss_mb"] = _peak_rss_mb(server.proc)
        print("push", results["push"], flush=True)
        results["cli_import"] = _django(env, "import", str(path))
        print("cli import", results["cli_import"], flush=True)

        with _gunicorn(env) as server:
            results["pull"] = _client(env, "pull", server.base, key)
            results["pull"]["server_peak_rss_mb"] = _peak_rss_mb(server.proc)
        print("pull", results["pull"], flush=True)
        results["direct_export"] = _django(env, "export", str(tmp / "direct.jsonl"))
        print("direct export", results["direct_export"], flush=True)

        with _gunicorn(env) as server, _Worker(env) as worker:
            results["api_export"] = _client(env, "export", server.base, key, str(tmp / "api.jsonl"))
            results["api_export"]["server_peak_rss_mb"] = _peak_rss_mb(server.proc)
            results["api_export"]["worker_peak_rss_mb"] = worker.peak_rss_mb()
        print("api export", results["api_export"], flush=True)
    finally:
        for leftover in sorted(tmp.rglob("*"), reverse=True):
            leftover.rmdir() if leftover.is_dir() else leftover.unlink()
        tmp.rmdir()
        common.drop_database(url)
    _report(results)


def _report(r: dict) -> None:
    push, cli = r["push"], r["cli_import"]
    pull, direct, api = r["pull"], r["direct_export"], r["api_export"]
    r["ratios"] = {
        "push_vs_cli_import": round(push["seconds"] / cli["seconds"], 2),
        "pull_vs_direct_export": round(pull["seconds"] / direct["seconds"], 2),
        "api_export_vs_direct_export": round(api["seconds"] / direct["seconds"], 2),
    }
    r["goals_met"] = {
        "push_within_2x": r["ratios"]["push_vs_cli_import"] <= GOAL_RATIO,
        "pull_within_2x": r["ratios"]["pull_vs_direct_export"] <= GOAL_RATIO,
    }
    rows = [
        ("push (client)", push, cli),
        ("CLI import", cli, None),
        ("pull (client)", pull, direct),
        ("API export", api, direct),
        ("direct export", direct, None),
    ]
    common.print_table(
        f"{'what':<15} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'x ref':>6} "
        f"{'client MB':>10} {'server MB':>10}",
        (
            f"{name:<15} {row['rows']:>10,} {row['seconds']:>8.1f} "
            f"{row['rows'] / row['seconds']:>9,.0f} "
            f"{(row['seconds'] / ref['seconds']) if ref else 1:>6.2f} "
            f"{row.get('client_peak_rss_mb', 0):>10.0f} "
            f"{row.get('server_peak_rss_mb', row.get('peak_rss_mb', 0)):>10.0f}"
            for name, row, ref in rows
        ),
        rule=False,
    )
    common.write_results("api", r)


# --- processes ---------------------------------------------------------------------------


def _django(env: dict, *args: str) -> dict:
    out = common.run_child("bench.bench_api", env, *args, capture=True)
    return json.loads(out.strip().splitlines()[-1])


def _client(env: dict, *args: str) -> dict:
    # The client needs no Django: its own process, so its peak RSS is the client's alone.
    out = subprocess.run(
        [sys.executable, "-c", "from bench.bench_api import _client_main; _client_main()", *args],
        env=env,
        cwd=common.ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _vmhwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextmanager
def _gunicorn(env: dict):
    with common.gunicorn(workers=WORKERS, env=env, args=("--timeout", "300")) as server:
        yield server


def _peak_rss_mb(proc) -> float:
    return max((_vmhwm_mb(pid) for pid in _children(proc.pid)), default=0.0)


class _Worker:
    def __init__(self, env: dict):
        self.env = env

    def __enter__(self) -> _Worker:
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "raterhub",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
            ],
            cwd=common.ROOT,
            env=self.env,
        )
        return self

    def peak_rss_mb(self) -> float:
        return _vmhwm_mb(self.proc.pid)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --- the client's side (no Django) ----------------------------------------------------------


def _client_main() -> None:
    import resource

    from raterhub_client import RaterHub

    command, base, key, *rest = sys.argv[1:]
    hub = RaterHub(base, key, progress=False)
    started = time.perf_counter()
    if command == "push":
        counts = hub.project("bench-push").push(rest[0])
        rows = counts["created"]
        assert rows == PUSH, counts
    elif command == "pull":
        rows = sum(1 for _ in hub.project("bench-pull").judgments(page_size=PAGE))
    else:
        job = hub.project("bench-pull").export("judgments")
        job.wait(progress=False)
        job.download(rest[0])
        rows = job["rows"]
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"rows": rows, "seconds": round(seconds, 2), "client_peak_rss_mb": round(peak, 1)}
        )
    )


# --- Django children ---------------------------------------------------------------------------


def _child() -> None:  # what common.run_child runs in a fresh interpreter
    import resource

    command, *args = sys.argv[1:]
    common.setup_django(migrate=command == "seed")
    started = time.perf_counter()
    if command == "seed":
        result = _seed()
    elif command == "import":
        from comparisons.imports import import_comparisons
        from comparisons.models import Project

        project = Project.objects.create(slug="bench-cli", name="CLI import")
        with open(args[0], "rb") as fh:
            outcome = import_comparisons(project, fh)
        assert outcome.ok, outcome.errors[:3]
        result = {"rows": outcome.created}
    else:
        from comparisons.exports import export_preferences
        from comparisons.models import Project

        manifest = export_preferences(Project.objects.get(slug="bench-pull"), "judgments", args[0])
        result = {"rows": manifest["counts"]["rows_written"]}
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def _seed() -> dict:
    from accounts.models import User
    from api.tokens import issue_token
    from comparisons.models import Project

    started = time.perf_counter()
    lead = User.objects.create(email="lead@bench.example", is_staff=True, is_superuser=True)
    User.objects.bulk_create(
        User(email=f"rater{i}@bench.example", password="!") for i in range(RATERS)
    )
    rater_ids = list(
        User.objects.filter(is_staff=False).order_by("id").values_list("id", flat=True)
    )
    Project.objects.create(slug="bench-push", name="Bench push")
    pull = Project.objects.create(slug="bench-pull", name="Bench pull", overlap=3)
    judgments = common.seed_project(
        pull, math.ceil(JUDGMENTS / 3), rater_ids, responses=(335, 350), seed=12
    )
    _, key = issue_token(user=lead, name="bench")
    return {"judgments": judgments, "seconds": round(time.perf_counter() - started, 1), "key": key}
