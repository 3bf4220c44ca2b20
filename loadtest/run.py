"""make loadtest: Locust raters against the running `make cluster`, at stepped offered loads.

Each step runs N raters (5 to 15 s of thought per comparison, so about N/10 judgments/s offered).
They arrive over about a minute; 20 s after the last has started, the step measures --seconds of
steady load: p50/p95/p99 of the page load and of the submit, the error rate, judgments/s, the
CPU busy fraction of the machine and of each core, and the CPU each part of the cluster spent
per request (the web nodes, the Celery workers and beat, nginx, PostgreSQL, Redis, Locust, the
kernel's threads). The arrival's own figures are reported apart. The steps go up until the
steady submit p95 crosses 250 ms: that offered load is the saturation point.

    make cluster && make loadtest LOADTEST_ARGS="--steps 500,1000,1500,2000 --seconds 90"

What one web core holds: the web nodes on core 0 and the rest of the cluster on core 1
(PostgreSQL and Redis, shared servers, are left where the kernel puts them), Locust on core 1:

    CLUSTER_WEB_CPUS=0 CLUSTER_OTHER_CPUS=1 make cluster
    make loadtest LOADTEST_ARGS="--steps 300,400,500 --locust-cpus 1 --out loadtest/results/loadtest-web-core.json"
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

from loadtest import common

SATURATION_P95_MS = 250


def _grouping(cluster_dir: Path):
    """What each process is, for common.cpu_by_group: the cluster's own by the process group
    its pid file names (deploy/cluster.sh starts each in a session of its own), the servers
    by name."""
    leaders = {}
    for pid_file in [*(cluster_dir / "pids").glob("*.pid"), cluster_dir / "nginx" / "nginx.pid"]:
        if pid_file.exists():
            name = pid_file.stem
            label = "web" if name.startswith("web-") else "nginx" if name == "nginx" else "celery"
            leaders[int(pid_file.read_text())] = label

    def group(name: str, pgrp: int) -> str:
        if pgrp in leaders:
            return leaders[pgrp]
        if pgrp == 0:
            return "kernel"
        return {"postgres": "postgresql", "redis-server": "redis", "locust": "locust"}.get(
            name, "other"
        )

    return group


def _per_request(spent: dict[str, int], requests: float) -> dict[str, float]:
    """CPU ticks by group as milliseconds per request, the costliest first."""
    per_tick = 1000 / os.sysconf("SC_CLK_TCK") / max(1.0, requests)
    return {
        label: round(ticks * per_tick, 2)
        for label, ticks in sorted(spent.items(), key=lambda kv: -kv[1])
    }


def _sample_processes(samples: list, stop: threading.Event) -> None:
    while True:
        samples.append(common.process_ticks())
        if stop.wait(1.0):
            samples.append(common.process_ticks())
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-dir", type=Path, default=Path("var/cluster"))
    parser.add_argument("--steps", default="250,500,1000,1500,2000,3000")
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--comparisons", type=int, default=120000)
    parser.add_argument("--locust-cpus", help="run Locust on these cores only (taskset -c)")
    parser.add_argument(
        "--out", type=Path, default=common.ROOT / "loadtest" / "results" / "loadtest.json"
    )
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    env = common.cluster_env(args.cluster_dir)
    work = common.ROOT / "var" / "loadtest"
    sessions = work / "sessions.json"
    common.seed(env, "--raters", str(max(steps)), "--comparisons", str(args.comparisons),
                "--sessions-file", str(sessions))  # fmt: skip
    results = []
    group = _grouping(args.cluster_dir)
    for users in steps:
        started = time.time()
        prefix = work / f"step-{users}"
        locust = common.locust(env, users=users, seconds=args.seconds, prefix=prefix, background=True,
                               extra_env={"LOADTEST_SESSIONS": str(sessions)},
                               cpus=args.locust_cpus)  # fmt: skip
        # The CPU over the steady window (Locust counts from about the same moment: its own
        # start-up, a second or two, is inside the 20 s settle).
        time.sleep(common.steady_after(users))
        ticks_before, samples, stop = common.cpu_ticks(), [], threading.Event()
        sampler = threading.Thread(target=_sample_processes, args=(samples, stop))
        sampler.start()
        time.sleep(args.seconds)
        ticks = common.cpu_ticks()
        stop.set()
        sampler.join()
        locust.wait()
        stats = common.read_stats(prefix)
        arrival = json.loads(Path(f"{prefix}_arrival.json").read_text())
        submit, page = stats.get("submit", {}), stats.get("page", {})
        total_requests = stats.get("Aggregated", {})
        busy = common.busy_fractions(ticks_before, ticks)
        spent = common.cpu_by_group(samples, group)
        step = {
            "raters": users,
            "offered_judgments_per_s": round(users / 10, 1),
            "judgments_per_s": submit.get("per_s", 0.0),
            "submit": submit,
            "page": page,
            "failed_attempts_retried": stats.get("submit-attempt-failed", {}).get("count", 0)
            + stats.get("page-attempt-failed", {}).get("count", 0),
            "error_rate": round(
                (submit.get("failures", 0) + page.get("failures", 0))
                / max(1, submit.get("count", 0) + page.get("count", 0)),
                5,
            ),
            "requests": total_requests.get("count", 0),
            "cpu_busy": busy[0],
            "cpu_busy_per_core": busy[1:],
            "cpu_ms_per_request": _per_request(
                spent, total_requests.get("per_s", 0) * args.seconds
            ),
            "arrival": {name: arrival[name] for name in ("page", "submit") if name in arrival},
            "wall_s": round(time.time() - started, 1),
        }
        results.append(step)
        print(
            f"{users:>5} raters  offered {step['offered_judgments_per_s']:>6}/s  got "
            f"{step['judgments_per_s']:>6}/s  submit p50/p95/p99 {submit.get('p50_ms')}/"
            f"{submit.get('p95_ms')}/{submit.get('p99_ms')} ms  page p50/p95/p99 "
            f"{page.get('p50_ms')}/{page.get('p95_ms')}/{page.get('p99_ms')} ms  errors "
            f"{step['error_rate']:.2%}  CPU busy {step['cpu_busy']:.0%} (cores "
            f"{' '.join(f'{b:.0%}' for b in step['cpu_busy_per_core'])})  web CPU "
            f"{step['cpu_ms_per_request'].get('web')} ms/request",
            flush=True,
        )
        if submit.get("p95_ms", 0) > SATURATION_P95_MS:
            break
    saturated = next((s for s in results if s["submit"].get("p95_ms", 0) > SATURATION_P95_MS), None)
    report = {
        "command": f"make loadtest LOADTEST_ARGS='--steps {args.steps} --seconds {args.seconds}"
        + (f" --locust-cpus {args.locust_cpus}'" if args.locust_cpus else "'"),
        "cores": {
            "web": env.get("CLUSTER_WEB_CPUS") or "any",
            "workers_beat_nginx": env.get("CLUSTER_OTHER_CPUS") or "any",
            "locust": args.locust_cpus or "any",
            "postgresql_redis": "any",
        },
        "think_time_s": [5, 15],
        "arrival_s": common.ARRIVAL_S,
        "settle_s": common.SETTLE_S,
        "seconds_per_step": args.seconds,
        "steps": results,
        "saturation": {
            "threshold_submit_p95_ms": SATURATION_P95_MS,
            "first_step_over": saturated["raters"] if saturated else None,
            "offered_judgments_per_s": saturated["offered_judgments_per_s"] if saturated else None,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
