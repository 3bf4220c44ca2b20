"""What the benchmarks share: the PostgreSQL database lifecycle, the Django child process, COPY
seeding of a judged project, percentiles, tables and the JSON result files."""

from __future__ import annotations

import io
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHUNK = 100_000  # rows per COPY round trip


def env_sizes(name: str, default: str) -> list[int]:
    """Comma-separated integers from environment variable `name` (or `default`)."""
    return [int(s) for s in os.environ.get(name, default).split(",")]


# --- database lifecycle (psycopg2 on the maintenance database) ----------------------------


def database_url(name: str) -> str:
    """BENCH_<NAME>_DATABASE_URL, else raterhub_bench_<name> on the local PostgreSQL."""
    default = f"postgres://postgres@127.0.0.1:5432/raterhub_bench_{name}"
    return os.environ.get(f"BENCH_{name.upper()}_DATABASE_URL", default)


def admin(url: str) -> tuple[Any, str]:
    """An autocommit connection to the server's `postgres` database, and the name in `url`."""
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


def recreate_database(url: str) -> None:
    """Drop (forcing out sessions) and create the database of `url`."""
    conn, name = admin(url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def drop_database(url: str) -> None:
    """Drop the database of `url` if it exists."""
    conn, name = admin(url)
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


# --- the child process where Django runs --------------------------------------------------


def child_env(url: str, **extra: str) -> dict[str, str]:
    """This process's environment plus production-like Django settings on database `url`."""
    return dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="raterhub.settings",
        DEBUG="0",  # no query log in memory
        SECRET_KEY="bench-only",
        LOG_LEVEL="WARNING",
        **extra,
    )


def run_child(module: str, env: dict[str, str], *args: str, capture: bool = False) -> str:
    """Run `module._child()` in a fresh interpreter (args in its sys.argv[1:]); its stdout if
    `capture`, else it prints straight through."""
    done = subprocess.run(
        [sys.executable, "-c", f"from {module} import _child; _child()", *args],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return done.stdout or ""


def setup_django(migrate: bool = True) -> None:
    """django.setup() in a child, then migrate the (empty) database."""
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


# --- seeding by COPY ----------------------------------------------------------------------

COMPARISON_COLUMNS = [
    "id", "project_id", "external_id", "prompt", "metadata", "priority", "gold_choice",
    "open_slots", "judged_count", "lease_count", "created_at", "lead_margin", "completed_at",
]  # fmt: skip
RESPONSE_COLUMNS = ["comparison_id", "position", "model_name", "content"]
ASSIGNMENT_COLUMNS = [
    "id", "project_id", "comparison_id", "rater_id", "status", "swapped", "leased_at",
    "expires_at", "finished_at", "skip_reason",
]  # fmt: skip
JUDGMENT_COLUMNS = [
    "id", "assignment_id", "project_id", "comparison_id", "rater_id", "choice", "strength",
    "criteria", "rationale", "flags", "duration_ms", "swapped", "is_gold", "is_late", "counted",
    "created_at",
]  # fmt: skip
FILLER = (
    "TCP slow start doubles the congestion window every round trip until a loss or the "
    "slow-start threshold, then congestion avoidance grows it by one segment per RTT. "
) * 4


def copy(cursor: Any, table: str, columns: list[str], rows: Iterable[Iterable[str]]) -> None:
    """COPY rows (tuples of already-formatted text, \\N for NULL) into table, CHUNK a trip."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    buffer = io.StringIO()
    for count, row in enumerate(rows, 1):
        buffer.write("\t".join(row))
        buffer.write("\n")
        if count % CHUNK == 0:
            buffer.seek(0)
            cursor.copy_expert(sql, buffer)
            buffer = io.StringIO()
    if buffer.tell():
        buffer.seek(0)
        cursor.copy_expert(sql, buffer)


def seed_project(
    project: Any,
    n: int,
    rater_ids: list[int],
    *,
    complete: float = 1.0,
    started: float = 0.0,
    models: int = 2,
    gold: float = 0.0,
    late: float = 0.0,
    responses: tuple[int, int] | None = None,
    spread_days: float = 0.0,
    seed: int = 0,
) -> int:
    """COPY n comparisons into `project` with their assignments and judgments; returns how many
    judgments. Of every ten regular comparisons round(10 * complete) have project.overlap
    judgments and round(10 * started) one; the last n * gold comparisons are gold, judged once.
    Raters are distinct per comparison. Choices follow a Bradley-Terry model over `models`
    models (10% tie, 5% both_bad); strength and criteria are filled when the project uses them.
    `responses` = (shortest, longest) response length adds two responses per comparison.
    Judgments are made 1 day ago plus up to `spread_days`; a share `late` is late."""
    from django.db import connection

    tables = ("comparison", "response", "assignment", "judgment")
    with connection.cursor() as cur:
        maxima = ", ".join(f"(SELECT coalesce(max(id), 0) FROM comparisons_{t})" for t in tables)
        cur.execute(f"SELECT {maxima}")
        base = dict(zip(tables, (m + 1 for m in cur.fetchone()), strict=True))
    plan = dict(
        pid=str(project.pk),
        overlap=project.overlap,
        strength=project.use_strength,
        criteria=list(project.criteria or ()),
        n=n,
        raters=rater_ids,
        complete=round(10 * complete),
        started=round(10 * (complete + started)),
        models=models,
        n_gold=round(n * gold),
        late=late,
        spread=spread_days * 86400,
        seed=seed,
        base_c=base["comparison"],
    )

    def comparisons() -> Iterator[tuple[str, ...]]:
        for c in _plan(**plan):
            yield c["row"]

    def response_rows() -> Iterator[tuple[str, ...]]:
        lo, hi = responses or (0, 0)
        for c in _plan(**plan):
            rng = random.Random(c["id"])
            for pos, model in enumerate(c["models"]):
                text = f"model-{model:02d} #{c['id']}: {FILLER}"
                yield c["id"], str(pos), f"model-{model:02d}", text[: rng.randint(lo, hi)]

    def assignments() -> Iterator[tuple[str, ...]]:
        k = base["assignment"]
        for c in _plan(**plan):
            for j in c["judgments"]:
                yield (str(k), plan["pid"], c["id"], j["rater"], "submitted", j["swapped"],
                       j["leased"], j["expires"], j["when"], "")  # fmt: skip
                k += 1

    def judgments() -> Iterator[tuple[str, ...]]:
        k = 0
        for c in _plan(**plan):
            for j in c["judgments"]:
                yield (str(base["judgment"] + k), str(base["assignment"] + k), plan["pid"],
                       c["id"], j["rater"], j["choice"], j["strength"], j["criteria"], "",
                       "[]", j["duration"], j["swapped"], c["gold"], j["late"],
                       "f" if j["late"] == "t" else "t", j["when"])  # fmt: skip
                k += 1

    with connection.cursor() as cur:
        copy(cur, "comparisons_comparison", COMPARISON_COLUMNS, comparisons())
        if responses:
            copy(cur, "comparisons_response", RESPONSE_COLUMNS, response_rows())
        copy(cur, "comparisons_assignment", ASSIGNMENT_COLUMNS, assignments())
        copy(cur, "comparisons_judgment", JUDGMENT_COLUMNS, judgments())
        for t in tables:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('comparisons_{t}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM comparisons_{t}))"
            )
        cur.execute("VACUUM ANALYZE")
        cur.execute("SELECT count(*) FROM comparisons_judgment WHERE project_id = %s", [project.pk])
        return cur.fetchone()[0]


def _plan(
    *,
    pid: str,
    overlap: int,
    strength: bool,
    criteria: list[str],
    n: int,
    raters: list[int],
    complete: int,
    started: int,
    models: int,
    n_gold: int,
    late: float,
    spread: float,
    seed: int,
    base_c: int,
) -> Iterator[dict[str, Any]]:
    """The seeded comparisons one by one, the same on every call (seeded random numbers)."""
    from comparisons.overlap import lead_margin

    rng = random.Random(seed)
    skill = [rng.gauss(0, 0.8) for _ in range(models)]
    now = datetime.now(UTC).replace(microsecond=0)
    created = now.isoformat()
    stride = 37 if len(raters) > 2 * 37 else 7
    for i in range(n):
        cid = base_c + i
        is_gold = i >= n - n_gold
        gold_choice = rng.choice("ab") if is_gold else None
        r = i % 10
        count = 1 if is_gold else overlap if r < complete else 1 if r < started else 0
        a = rng.randrange(models)
        b = (a + rng.randrange(1, models)) % models
        p_a = 1 / (1 + math.exp(skill[b] - skill[a]))
        start = rng.randrange(len(raters))
        judgments = []
        for slot in range(count):
            u = rng.random()
            if is_gold:
                choice = gold_choice if u < 0.85 else "tie"
            else:
                choice = "tie" if u < 0.1 else "both_bad" if u < 0.15 else "ab"[rng.random() >= p_a]
            agree = "tie" if choice == "both_bad" else choice
            when = now - timedelta(days=1, seconds=rng.uniform(0, spread))
            judgments.append(
                {
                    "rater": str(raters[(start + slot * stride) % len(raters)]),
                    "swapped": "t" if rng.random() < 0.5 else "f",
                    "choice": choice,
                    "strength": rng.choice(("slightly", "clearly", "much"))
                    if strength and choice in ("a", "b")
                    else "\\N",
                    "criteria": json.dumps(
                        {
                            c: agree if rng.random() < 0.8 else rng.choice(("a", "b", "tie"))
                            for c in criteria
                        }
                    ),
                    "duration": str(int(rng.lognormvariate(math.log(20000), 0.6))),
                    "late": "t" if rng.random() < late else "f",
                    "leased": (when - timedelta(seconds=60)).isoformat(),
                    "expires": (when + timedelta(seconds=540)).isoformat(),
                    "when": when.isoformat(),
                }
            )
        prompt = json.dumps([{"role": "user", "content": f"Question {cid}: explain TCP."}])
        margin = lead_margin([j["choice"] for j in judgments if j["late"] == "f"])
        completed = created if not is_gold and count >= overlap else "\\N"  # the fixed policy
        yield {
            "id": str(cid),
            "gold": "t" if is_gold else "f",
            "models": (a, b),
            "judgments": judgments,
            "row": (str(cid), pid, f"q-{cid:07d}", prompt, "{}", "0", gold_choice or "\\N",
                    str((1 if is_gold else overlap) - count), str(count), str(count), created,
                    str(margin), completed),
        }  # fmt: skip


# --- a real server ---------------------------------------------------------------------------


@dataclass
class Server:
    base: str  # http://127.0.0.1:<port>
    proc: subprocess.Popen


@contextmanager
def gunicorn(
    *,
    workers: int,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    ready_path: str = "/healthz",
    stop_seconds: float = 30,
) -> Iterator[Server]:
    """gunicorn serving raterhub.wsgi on a free local port (env: this process's if None), once
    `ready_path` answers; stopped on exit. RuntimeError if it never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "raterhub.wsgi", "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", *args,
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + ready_path, timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield Server(base, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=stop_seconds)


# --- statistics and reporting -------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """fn's value and its wall time in seconds (3 decimals)."""
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, round(time.perf_counter() - t0, 3)


def percentiles(
    samples: list[float],
    points: Iterable[int] = (50, 95, 99),
    digits: int = 3,
    *,
    mean: bool = True,
    count: bool = False,
) -> dict[str, Any]:
    """p50/p95/... (None with fewer than two samples), then the mean and/or the count n."""
    points = list(points)
    out: dict[str, Any] = dict.fromkeys((f"p{p}" for p in points), None)
    if len(samples) >= 2:
        qs = statistics.quantiles(samples, n=100, method="inclusive")
        out = {f"p{p}": round(qs[p - 1], digits) for p in points}
    if mean:
        out["mean"] = round(statistics.fmean(samples), digits) if samples else None
    if count:
        out["n"] = len(samples)
    return out


def print_table(header: str, rows: Iterable[str], *, rule: bool = True) -> None:
    """The header, a rule of dashes under it (if `rule`), then each row."""
    print(header)
    if rule:
        print("-" * len(header))
    for row in rows:
        print(row)


def write_results(name: str, results: dict[str, Any]) -> Path:
    """bench/results/<name>.json, indented; says where."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
