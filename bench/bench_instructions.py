"""Instructions per rating request, counted by callgrind: a figure of the rating loop that this
shared, noisy machine does not move, so two trees compare on one run each.

A child process runs under `valgrind --tool=callgrind` with counting off until the loop, on
its own PostgreSQL database seeded as the HTTP benchmark seeds it (BENCH_INSN_SIZE comparisons,
default 10,000, with their Markdown responses), with production settings (DEBUG off, Redis for
the cache when it answers). One rater, logged in through Django's test client, makes WARMUP htmx
submits, then SUBMITS more while callgrind counts, then PAGE_LOADS full page loads counted apart.
Reported: instructions per submit and per page load in the web process (Django, the test
client, psycopg2 and libpq; not PostgreSQL's own work, which runs in its server process).
Counts repeat within about 1% for the same code whatever else the machine does; times here
vary by 15%.

To compare with another tree: copy this file into its bench/ and run `python -m bench
instructions` there too; it needs bench_http's `_seed` and `plain_http_env` (an older tree
without the latter, round 1's for one, needs that function copied in beside it).
Needs valgrind (Debian's package). Writes bench/results/instructions.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import common

SIZE = int(os.environ.get("BENCH_INSN_SIZE", "10000"))
WARMUP, SUBMITS, PAGE_LOADS = 30, 60, 20

_SUBMIT = re.compile(rb'hx-post="(/rate/[^"]+/submit)"')
_TOKEN = re.compile(rb'"X-CSRFToken": "([^"]+)"')


def main() -> None:
    if shutil.which("valgrind") is None:
        print("skipped: bench instructions needs valgrind (apt-get install valgrind)")
        return
    url = common.database_url("insn")
    common.recreate_database(url)
    var = Path(tempfile.mkdtemp(prefix="raterhub-bench-insn-"))
    from bench.bench_http import plain_http_env

    env = plain_http_env(url, var, hosts="testserver", BENCH_INSN_OUT=str(var / "callgrind"))
    try:
        # Static files collected without valgrind: compressing them under it takes minutes.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            env=env, cwd=common.ROOT, check=True,
        )  # fmt: skip
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={var}/callgrind",
             sys.executable, "-c", "from bench.bench_instructions import _child; _child()"],
            env=env, cwd=common.ROOT, check=True,
        )  # fmt: skip
        counts = json.loads((var / "counts.json").read_text())
    finally:
        common.drop_database(url)
        shutil.rmtree(var, ignore_errors=True)
    results = {
        "started_at": datetime.now(UTC).isoformat(),
        "comparisons": SIZE,
        "submits_counted": SUBMITS,
        "page_loads_counted": PAGE_LOADS,
        "cache": "redis" if env["REDIS_URL"] else "file (no Redis reachable)",
        "instructions_per_submit": round(counts["submits"] / SUBMITS),
        "instructions_per_page_load": round(counts["pages"] / PAGE_LOADS),
        "statements_per_submit": counts["statements"],
    }
    common.print_table(
        f"{'request':<12} {'instructions':>14} {'statements':>11}",
        [
            f"{'htmx submit':<12} {results['instructions_per_submit']:>14,} "
            f"{results['statements_per_submit']:>11}",
            f"{'page load':<12} {results['instructions_per_page_load']:>14,} {'':>11}",
        ],
    )
    common.write_results("instructions", results)


# --- child: under callgrind, Django set up here --------------------------------------------


def _callgrind(*args: str) -> None:
    # callgrind_control exits 0 even when it finds no callgrind run to control; it says "OK."
    done = subprocess.run(
        ["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True, text=True
    )
    if "OK." not in done.stdout:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {done.stdout.strip()}")


def _dumped(out: str, name: str) -> int:
    """Total instructions of the dump `callgrind_control --dump=<name>` wrote."""
    for path in Path(out).parent.glob(Path(out).name + "*"):
        text = path.read_text(errors="replace")
        if f"\ndesc: Trigger: dump {name}\n" in text:
            return int(re.search(r"^(?:totals|summary): (\d+)", text, re.M).group(1))
    raise RuntimeError(f"no callgrind dump named {name!r}")


def _child() -> None:
    common.setup_django()
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from bench.bench_http import _seed

    project, _ = _seed(SIZE)
    caches["rendered"].clear()
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(email="bench0@bench.example"))
    body = client.get(f"/rate/{project.slug}/").content
    token = _TOKEN.search(body).group(1).decode()

    def submit(page: bytes) -> bytes:
        path = _SUBMIT.search(page).group(1).decode()
        data = {"choice": "1", "duration_ms": "9000"}
        response = client.post(path, data, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
        assert response.status_code == 200, response.status_code
        return response.content

    for _ in range(WARMUP):
        body = submit(body)
    statements = []
    with connection.execute_wrapper(lambda ex, sql, *a: statements.append(sql) or ex(sql, *a)):
        body = submit(body)
    out = os.environ["BENCH_INSN_OUT"]
    _callgrind("--instr=on")
    for _ in range(SUBMITS):
        body = submit(body)
    _callgrind("--dump=submits")
    for _ in range(PAGE_LOADS):
        assert client.get(f"/rate/{project.slug}/").status_code == 200
    _callgrind("--dump=pages")
    _callgrind("--instr=off")
    counts = {"submits": _dumped(out, "submits"), "pages": _dumped(out, "pages")}
    counts["statements"] = len(statements)
    (Path(out).parent / "counts.json").write_text(json.dumps(counts))
