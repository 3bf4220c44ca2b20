"""make loadtest: Locust raters against the running `make cluster`, at stepped offered loads.

Each step runs N raters (5 to 15 s of thought per comparison, so about N/10 judgments/s offered).
They arrive over about a minute; 20 s after the last has started, the step measures --seconds of
steady load: p50/p95/p99 of the page load and of the submit, the error rate, judgments/s and
the machine's CPU busy fraction. The arrival's own figures are reported apart. The steps go up
until the steady submit p95 crosses 250 ms: that offered load is the saturation point.

    make cluster && make loadtest LOADTEST_ARGS="--steps 500,1000,1500,2000 --seconds 90"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from loadtest import common

SATURATION_P95_MS = 250


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster-dir", type=Path, default=Path("var/cluster"))
    parser.add_argument("--steps", default="250,500,1000,1500,2000,3000")
    parser.add_argument("--seconds", type=int, default=90)
    parser.add_argument("--comparisons", type=int, default=120000)
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
    for users in steps:
        started = time.time()
        prefix = work / f"step-{users}"
        locust = common.locust(env, users=users, seconds=args.seconds, prefix=prefix, background=True,
                               extra_env={"LOADTEST_SESSIONS": str(sessions)})  # fmt: skip
        # The machine's CPU over the steady window (Locust counts from about the same moment:
        # its own start-up, a second or two, is inside the 20 s settle).
        time.sleep(common.steady_after(users))
        busy_before, total_before = common.cpu_ticks()
        time.sleep(args.seconds)
        busy, total = common.cpu_ticks()
        locust.wait()
        stats = common.read_stats(prefix)
        arrival = json.loads(Path(f"{prefix}_arrival.json").read_text())
        submit, page = stats.get("submit", {}), stats.get("page", {})
        total_requests = stats.get("Aggregated", {})
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
            "cpu_busy": round((busy - busy_before) / max(1, total - total_before), 3),
            "arrival": {name: arrival[name] for name in ("page", "submit") if name in arrival},
            "wall_s": round(time.time() - started, 1),
        }
        results.append(step)
        print(
            f"{users:>5} raters  offered {step['offered_judgments_per_s']:>6}/s  got "
            f"{step['judgments_per_s']:>6}/s  submit p50/p95/p99 {submit.get('p50_ms')}/"
            f"{submit.get('p95_ms')}/{submit.get('p99_ms')} ms  page p50/p95/p99 "
            f"{page.get('p50_ms')}/{page.get('p95_ms')}/{page.get('p99_ms')} ms  errors "
            f"{step['error_rate']:.2%}  CPU busy {step['cpu_busy']:.0%}",
            flush=True,
        )
        if submit.get("p95_ms", 0) > SATURATION_P95_MS:
            break
    saturated = next((s for s in results if s["submit"].get("p95_ms", 0) > SATURATION_P95_MS), None)
    report = {
        "command": f"make loadtest LOADTEST_ARGS='--steps {args.steps} --seconds {args.seconds}'",
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
