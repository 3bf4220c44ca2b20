"""Adaptive overlap benchmark: the same labels for fewer judgments?

Simulated raters with known accuracies (spread evenly over 0.6-0.9) judge comparisons whose
better response is known, through the real queue (next_assignment + submit_judgment) from
several threads, each with its own PostgreSQL connection, until every comparison is complete.
A rater picks the better response with their accuracy; otherwise the worse one (75%) or a tie
(25%). For fixed 3, adaptive (2, 3), fixed 5 and adaptive (3, 5) it reports the counted
judgments used, the label accuracy against the truth (over decided comparisons: a strict
leader that is "a" or "b"), and the share decided.

Then the queue's own cost: one thread, round-robin raters, next + submit latency for fixed 3
and adaptive (2, 3), interleaved in blocks so that a change in machine load hits both alike.

Runs in a child process against its own database (BENCH_ADAPTIVE_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/raterhub_bench_adaptive; created and dropped here).
Knobs: BENCH_ADAPTIVE_COMPARISONS (800), BENCH_ADAPTIVE_RATERS (20), BENCH_ADAPTIVE_THREADS (4),
BENCH_ADAPTIVE_SEEDS (2 repetitions), BENCH_ADAPTIVE_LATENCY_ITERATIONS (600 per policy).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import traceback
from collections import Counter, deque

from bench import common

COMPARISONS = int(os.environ.get("BENCH_ADAPTIVE_COMPARISONS", "800"))
RATERS = int(os.environ.get("BENCH_ADAPTIVE_RATERS", "20"))
THREADS = int(os.environ.get("BENCH_ADAPTIVE_THREADS", "4"))
SEEDS = int(os.environ.get("BENCH_ADAPTIVE_SEEDS", "2"))
LATENCY_ITERATIONS = int(os.environ.get("BENCH_ADAPTIVE_LATENCY_ITERATIONS", "600"))
LATENCY_BLOCK = 50
ACCURACY_LOW, ACCURACY_HIGH = 0.6, 0.9
WRONG_TIE_SHARE = 0.25

POLICIES = {
    "fixed 3": {"overlap_policy": "fixed", "overlap": 3},
    "adaptive (2, 3)": {"overlap_policy": "adaptive", "min_overlap": 2, "max_overlap": 3},
    "fixed 5": {"overlap_policy": "fixed", "overlap": 5},
    "adaptive (3, 5)": {"overlap_policy": "adaptive", "min_overlap": 3, "max_overlap": 5},
}


def main() -> None:
    url = common.database_url("adaptive")
    common.recreate_database(url)
    try:
        common.run_child("bench.bench_adaptive", common.child_env(url))
    finally:
        if not os.environ.get("BENCH_ADAPTIVE_KEEP_DB"):
            common.drop_database(url)


# --- child: Django is set up here ---------------------------------------------------------


def accuracies(n: int) -> list[float]:
    return [ACCURACY_LOW + (ACCURACY_HIGH - ACCURACY_LOW) * i / max(n - 1, 1) for i in range(n)]


def answer(rng: random.Random, accuracy: float, truth: str) -> str:
    if rng.random() < accuracy:
        return truth
    return "tie" if rng.random() < WRONG_TIE_SHARE else ("b" if truth == "a" else "a")


def _child() -> None:
    common.setup_django()
    load_before = [round(x, 2) for x in os.getloadavg()]
    results: dict = {
        "config": {
            "comparisons": COMPARISONS,
            "raters": RATERS,
            "threads": THREADS,
            "seeds": SEEDS,
            "accuracies": [round(a, 3) for a in accuracies(RATERS)],
            "wrong_answers": f"the worse response, or a tie {WRONG_TIE_SHARE:.0%} of the time",
            "cpus": os.cpu_count(),
        },
        "labels": {},
    }
    for name, policy in POLICIES.items():
        runs = [_run_policy(name, policy, seed) for seed in range(SEEDS)]
        results["labels"][name] = _summary(runs)
        _print_labels(name, results["labels"][name])
    results["goals"] = _goals(results["labels"])
    results["latency"] = _latency()
    results["load_average"] = {
        "before": load_before,
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    _print(results)
    common.write_results("adaptive", results)


def _seed_project(name: str, policy: dict, seed: int):
    from accounts.models import User
    from comparisons.models import Comparison, Project, Response

    slug = f"{name.replace(' ', '').replace('(', '-').replace(')', '').replace(',', '-')}-{seed}"
    project = Project.objects.create(slug=slug, name=f"{name} #{seed}", lease_seconds=600, **policy)
    raters = [
        User.objects.get_or_create(email=f"sim{i}@bench.example", defaults={"is_active": True})[0]
        for i in range(RATERS)
    ]
    project.raters.add(*raters)
    rng = random.Random(f"truth-{seed}")
    comparisons = Comparison.objects.bulk_create(
        Comparison(
            project=project,
            external_id=f"c{i:05d}",
            prompt=[{"role": "user", "content": f"Question {i}?"}],
            metadata={"truth": rng.choice("ab")},
            open_slots=project.initial_slots,
        )
        for i in range(COMPARISONS)
    )
    Response.objects.bulk_create(
        Response(comparison=c, position=p, model_name=f"m{p}", content=f"Answer {p}")
        for c in comparisons
        for p in (0, 1)
    )
    truth = {c.pk: c.metadata["truth"] for c in comparisons}
    return project, raters, truth


def _run_policy(name: str, policy: dict, seed: int) -> dict:
    """Every comparison of a fresh project judged to completion by the simulated raters."""
    from django.db import connection

    from comparisons import queue
    from comparisons.models import Comparison, Judgment

    project, raters, truth = _seed_project(name, policy, seed)
    accuracy = dict(zip([r.pk for r in raters], accuracies(RATERS), strict=True))
    pool = deque(raters)
    lock = threading.Lock()
    errors: list[str] = []
    latencies: list[float] = []
    finished = threading.Event()

    def worker(index: int) -> None:
        rng = random.Random(f"{seed}-{index}")
        try:
            while not finished.is_set():
                with lock:
                    rater = pool.popleft()
                served = 0
                for _ in range(10):  # a short session, then someone else's turn
                    t0 = time.perf_counter()
                    lease = queue.next_assignment(rater, project)
                    if lease is None:
                        break
                    choice = answer(rng, accuracy[rater.pk], truth[lease.comparison_id])
                    queue.submit_judgment(lease, choice=choice, duration_ms=9000)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    served += 1
                with lock:
                    pool.append(rater)
                if (
                    not served
                    and not Comparison.objects.filter(
                        project=project, completed_at__isnull=True
                    ).exists()
                ):
                    finished.set()
        except Exception:
            errors.append(traceback.format_exc())
            finished.set()
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])

    votes: dict[int, list[str]] = {}
    for cid, choice in Judgment.objects.filter(project=project, counted=True).values_list(
        "comparison_id", "choice"
    ):
        votes.setdefault(cid, []).append(choice)
    decided = correct = 0
    for cid, choices in votes.items():
        ranked = Counter(choices).most_common(2)
        if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
            continue
        if ranked[0][0] in ("a", "b"):
            decided += 1
            correct += ranked[0][0] == truth[cid]
    used = sum(len(v) for v in votes.values())
    assert len(votes) == COMPARISONS, "every comparison judged"
    return {
        "judgments": used,
        "per_comparison": used / COMPARISONS,
        "decided_share": decided / COMPARISONS,
        "accuracy": correct / decided if decided else None,
        "correct_share": correct / COMPARISONS,
        "histogram": dict(sorted(Counter(len(v) for v in votes.values()).items())),
        "next_submit_ms": common.percentiles(latencies),
        "wall_s": round(wall, 2),
        "judgments_per_s": round(used / wall, 1),
    }


def _summary(runs: list[dict]) -> dict:
    mean = statistics.fmean
    histogram: Counter = Counter()
    for r in runs:
        histogram.update(r["histogram"])
    return {
        "judgments": round(mean(r["judgments"] for r in runs), 1),
        "per_comparison": round(mean(r["per_comparison"] for r in runs), 3),
        "accuracy": round(mean(r["accuracy"] for r in runs), 4),
        "decided_share": round(mean(r["decided_share"] for r in runs), 4),
        "correct_share": round(mean(r["correct_share"] for r in runs), 4),
        "histogram": {str(k): v for k, v in sorted(histogram.items())},
        "threaded_next_submit_ms_p50": round(mean(r["next_submit_ms"]["p50"] for r in runs), 3),
        "judgments_per_s": round(mean(r["judgments_per_s"] for r in runs), 1),
        "runs": runs,
    }


def _goals(labels: dict) -> dict:
    a3, f3 = labels["adaptive (2, 3)"], labels["fixed 3"]
    a5, f5 = labels["adaptive (3, 5)"], labels["fixed 5"]
    # Noise: the standard error of an accuracy over (decided comparisons x seeds).
    n3 = COMPARISONS * SEEDS * f3["decided_share"]
    n5 = COMPARISONS * SEEDS * f5["decided_share"]
    se3 = (f3["accuracy"] * (1 - f3["accuracy"]) / n3) ** 0.5
    se5 = (f5["accuracy"] * (1 - f5["accuracy"]) / n5) ** 0.5
    return {
        "adaptive_2_3_judgment_ratio": round(a3["judgments"] / f3["judgments"], 4),
        "adaptive_2_3_accuracy_delta": round(a3["accuracy"] - f3["accuracy"], 4),
        "fixed_3_accuracy_standard_error": round(se3, 4),
        "adaptive_3_5_judgment_ratio": round(a5["judgments"] / f5["judgments"], 4),
        "adaptive_3_5_accuracy_delta": round(a5["accuracy"] - f5["accuracy"], 4),
        "fixed_5_accuracy_standard_error": round(se5, 4),
    }


def _latency() -> dict:
    """next + submit in one thread, fixed 3 and adaptive (2, 3) interleaved in blocks."""
    from django.db import connection

    from comparisons import queue

    setups = {
        name: _seed_project(f"lat {name}", POLICIES[name], 99)
        for name in ("fixed 3", "adaptive (2, 3)")
    }
    samples: dict[str, list[float]] = {name: [] for name in setups}
    turn = {name: 0 for name in setups}
    rng = random.Random(7)
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
    for block in range(LATENCY_ITERATIONS // LATENCY_BLOCK + 1):
        order = list(setups) if block % 2 == 0 else list(reversed(list(setups)))
        for name in order:
            project, raters, truth = setups[name]
            for _ in range(LATENCY_BLOCK):
                rater = raters[turn[name] % len(raters)]
                turn[name] += 1
                t0 = time.perf_counter()
                lease = queue.next_assignment(rater, project)
                if lease is None:
                    continue
                queue.submit_judgment(
                    lease, choice=answer(rng, 0.75, truth[lease.comparison_id]), duration_ms=9000
                )
                if block:  # the first block warms connections and caches
                    samples[name].append((time.perf_counter() - t0) * 1000)
    out = {name: common.percentiles(s, count=True) for name, s in samples.items()}
    fixed, adaptive = out["fixed 3"], out["adaptive (2, 3)"]
    out["adaptive_over_fixed_p50"] = round(adaptive["p50"] / fixed["p50"], 4)
    out["adaptive_over_fixed_mean"] = round(adaptive["mean"] / fixed["mean"], 4)
    return out


def _print_labels(name: str, s: dict) -> None:
    print(
        f"{name:<16} judgments {s['judgments']:>8.1f} ({s['per_comparison']:.3f}/comparison)  "
        f"accuracy {s['accuracy']:.4f}  decided {s['decided_share']:.4f}  "
        f"histogram {s['histogram']}",
        flush=True,
    )


def _print(results: dict) -> None:
    g = results["goals"]
    lat = results["latency"]
    common.print_table(
        "goal                                         value",
        [
            f"adaptive (2,3) judgments / fixed 3           {g['adaptive_2_3_judgment_ratio']:.4f}"
            " (goal <= 0.85)",
            f"adaptive (2,3) accuracy - fixed 3            {g['adaptive_2_3_accuracy_delta']:+.4f}"
            f" (s.e. {g['fixed_3_accuracy_standard_error']:.4f})",
            f"adaptive (3,5) judgments / fixed 5           {g['adaptive_3_5_judgment_ratio']:.4f}"
            " (goal <= 0.70)",
            f"adaptive (3,5) accuracy - fixed 5            {g['adaptive_3_5_accuracy_delta']:+.4f}"
            f" (s.e. {g['fixed_5_accuracy_standard_error']:.4f})",
            f"next+submit p50 fixed 3 / adaptive (2,3) ms  {lat['fixed 3']['p50']:.3f} / "
            f"{lat['adaptive (2, 3)']['p50']:.3f} (ratio {lat['adaptive_over_fixed_p50']:.4f}, "
            "goal <= 1.10)",
            f"load average before / after                  {results['load_average']}",
        ],
    )
