"""What the load and fault suites share: the cluster's environment, Locust runs, their stats."""

from __future__ import annotations

import csv
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def cluster_env(cluster_dir: Path) -> dict[str, str]:
    """The environment `make cluster` runs the nodes with (written by deploy/cluster.sh)."""
    env_file = cluster_dir / "env"
    if not env_file.exists():
        raise SystemExit(f"{env_file} is missing: start the cluster first (make cluster)")
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        words = shlex.split(line)
        if len(words) >= 2 and words[0] in ("export", "declare"):
            name, _, value = words[-1].partition("=")
            env[name] = value
    return env


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def seed(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [str(VENV_BIN / "python"), "-m", "loadtest.seed", *args], cwd=ROOT, env=env, check=True
    )


def locust(env: dict[str, str], *, users: int, seconds: int, prefix: Path, extra_env: dict | None = None,
           background: bool = False) -> subprocess.Popen | None:  # fmt: skip
    """Run the Locust raters headless; stats in <prefix>_stats.csv (reset once all are spawned)."""
    rate = max(10, min(100, users // 10))
    command = [
        str(VENV_BIN / "locust"), "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(rate), "-t", f"{seconds + users // rate}s",
        "--host", env["CLUSTER_URL"], "--csv", str(prefix), "--reset-stats", "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "20",
    ]  # fmt: skip
    prefix.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**env, **(extra_env or {})}
    log = open(f"{prefix}.log", "w")  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    if background:
        return process
    process.wait()
    return None


def read_stats(prefix: Path) -> dict[str, dict]:
    """Locust's per-name stats: count, failures, p50/p95/p99 (ms), requests/s."""
    rows = {}
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            rows[row["Name"]] = {
                "count": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"] or 0),
                "p95_ms": float(row["95%"] or 0),
                "p99_ms": float(row["99%"] or 0),
                "per_s": round(float(row["Requests/s"] or 0), 1),
            }
    return rows
