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


# Raters arrive over about a minute (a campaign's raters log in over minutes, not all in one
# second), and the stats count from SETTLE_S after the last one has started: by then the first
# page loads of the arrival are over and every rater is in its think-submit loop.
ARRIVAL_S = 60
SETTLE_S = 20


def spawn_rate(users: int) -> int:
    return max(5, users // ARRIVAL_S)


def steady_after(users: int) -> int:
    """Seconds from Locust's start until the stats count: the arrival, then SETTLE_S."""
    return users // spawn_rate(users) + SETTLE_S


def locust(env: dict[str, str], *, users: int, seconds: int, prefix: Path, extra_env: dict | None = None,
           background: bool = False, cpus: str | None = None) -> subprocess.Popen | None:  # fmt: skip
    """Run the Locust raters headless for `seconds` of steady load after steady_after(users).

    Stats in <prefix>_stats.csv cover the steady load only; the arrival's own (the first page
    loads and submits, while raters are still starting) in <prefix>_arrival.json. `cpus`: the
    cores Locust may run on (taskset -c), to keep it off the web nodes' cores.
    """
    command = [
        str(VENV_BIN / "locust"), "-f", str(ROOT / "loadtest" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(spawn_rate(users)), "-t", f"{steady_after(users) + seconds}s",
        "--host", env["CLUSTER_URL"], "--csv", str(prefix), "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "20",
    ]  # fmt: skip
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **env,
        "LOADTEST_SETTLE": str(SETTLE_S),
        "LOADTEST_ARRIVAL": f"{prefix}_arrival.json",
        **(extra_env or {}),
    }
    log = open(f"{prefix}.log", "w")  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    if background:
        return process
    process.wait()
    return None


def cpu_ticks() -> list[tuple[int, int]]:
    """(busy, total) CPU ticks so far, from /proc/stat: the whole machine's, then each core's."""
    ticks = []
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            break
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        fields = [int(x) for x in line.split()[1:9]]
        idle = fields[3] + fields[4]  # idle + iowait
        ticks.append((sum(fields) - idle, sum(fields)))
    return ticks


def busy_fractions(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> list[float]:
    """The busy fraction of the machine, then of each core, between two cpu_ticks()."""
    return [
        round((busy - busy_before) / max(1, total - total_before), 3)
        for (busy_before, total_before), (busy, total) in zip(before, after, strict=True)
    ]


def process_ticks() -> dict[int, tuple[str, int, int]]:
    """Each process's (name, process group, user + system CPU ticks), from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # fields: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        found[int(stat.parent.name)] = (name, int(fields[2]), int(fields[11]) + int(fields[12]))
    return found


def cpu_by_group(samples: list[dict[int, tuple[str, int, int]]], group) -> dict[str, int]:
    """CPU ticks spent between the first and the last of `samples` (process_ticks() taken
    about a second apart), summed by `group(name, process group)` (None: not counted).

    A process alive at the first sample counts from it; one that started later counts whole;
    one that ended counts up to its last sample. Reading the children's ticks off their parent
    instead would count the whole life of a worker recycled within the window.
    """
    first, last = samples[0], {}
    for sample in samples:
        last.update(sample)
    spent: dict[str, int] = {}
    for pid, (name, pgrp, ticks) in last.items():
        label = group(name, pgrp)
        if label is not None:
            start = first[pid][2] if pid in first and first[pid][:2] == (name, pgrp) else 0
            spent[label] = spent.get(label, 0) + ticks - start
    return spent


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
