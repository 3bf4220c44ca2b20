"""Queue benchmark: next_assignment + submit_judgment at 10k, 100k and 1M comparisons.

For each size N it seeds PostgreSQL with COPY (a realistic mix: 30% of comparisons fully judged,
10% started with one judgment, the rest untouched, with their assignment and judgment rows),
then measures with one rater the latency of next, submit and next+submit (p50/p95/p99), a rater
working alone far ahead of everyone (LONE_ITERATIONS judgments: is their next as fast at the end
as at the start?), the throughput of 1, 4 and 16 concurrent raters (processes, each its own
connection), and records EXPLAIN (ANALYZE, BUFFERS) of the pick query at the smallest and largest
size.

First of all, on the brand-new database, the minute after a real import
(`fresh_import`): FRESH_COMPARISONS comparisons go in through `import_comparisons`, as a lead's
upload would, with no manual ANALYZE (this PostgreSQL runs with autovacuum off, so nothing else
gathers statistics either), then one rater works alone for FRESH_SECONDS; then the same for
FRESH_WIPED_SECONDS with the tables' statistics deleted, as if the import had not analyzed.

Runs in a child process against its own database (BENCH_QUEUE_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/raterhub_bench_queue; created and dropped here), so it does
not depend on which database other benchmarks configured. Sizes: BENCH_QUEUE_SIZES=10000,1000000.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from datetime import UTC, datetime

from bench import common

SIZES = common.env_sizes("BENCH_QUEUE_SIZES", "10000,100000,1000000")
LATENCY_ITERATIONS = int(os.environ.get("BENCH_QUEUE_ITERATIONS", "1000"))
LONE_ITERATIONS = int(os.environ.get("BENCH_QUEUE_LONE_ITERATIONS", "3000"))
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_QUEUE_SECONDS", "8"))
FRESH_COMPARISONS = int(os.environ.get("BENCH_QUEUE_FRESH_COMPARISONS", "100000"))
FRESH_SECONDS = float(os.environ.get("BENCH_QUEUE_FRESH_SECONDS", "60"))
FRESH_WIPED_SECONDS = float(os.environ.get("BENCH_QUEUE_FRESH_WIPED_SECONDS", "20"))
# BENCH_QUEUE_SCENARIOS=fresh runs only the minute after an import.
SCENARIOS = os.environ.get("BENCH_QUEUE_SCENARIOS", "fresh,sizes").split(",")
CONCURRENCY = (1, 4, 16)
SEED_RATERS = 100


def main() -> None:
    url = common.database_url("queue")
    common.recreate_database(url)
    try:
        common.run_child("bench.bench_queue", common.child_env(url))
    finally:
        if not os.environ.get("BENCH_QUEUE_KEEP_DB"):
            common.drop_database(url)


# --- child: Django is set up here ---------------------------------------------------------


def _child() -> None:
    common.setup_django()
    results = {"sizes": {}, "started_at": datetime.now(UTC).isoformat()}
    if "fresh" in SCENARIOS:
        results["fresh_import"] = _fresh_import()
        _print_fresh(results["fresh_import"])
    if "sizes" not in SCENARIOS:
        common.write_results("queue-fresh", results)
        return
    for n in SIZES:
        project, seed_seconds = common.timed(_seed, n)
        print(f"seeded {n:,} comparisons in {seed_seconds:.1f}s", flush=True)
        entry = {"seed_seconds": round(seed_seconds, 1)}
        entry["durable_commit_floor_ms"] = _commit_floor_ms()
        entry.update(_latency(project))
        entry.update(_latency(project, email="bench63@bench.example", async_commit=True))
        entry["lone_rater"] = _lone_rater(project)
        if n in (min(SIZES), max(SIZES)):
            entry["explain"] = _explain(project)
        entry["throughput"] = {str(k): _throughput(project, k) for k in CONCURRENCY}
        results["sizes"][str(n)] = entry
        _print_row(n, entry)
    small, large = results["sizes"][str(min(SIZES))], results["sizes"][str(max(SIZES))]
    results["p95_ratio_largest_to_smallest"] = round(
        large["next_submit_ms"]["p95"] / small["next_submit_ms"]["p95"], 2
    )
    results["p95_ratio_largest_to_smallest_async_commit"] = round(
        large["next_submit_ms_async_commit"]["p95"] / small["next_submit_ms_async_commit"]["p95"],
        2,
    )
    results["goals"] = {
        "p95 at largest <= 1.5x p95 at smallest": results["p95_ratio_largest_to_smallest"] <= 1.5,
        "next+submit p95 < 10 ms at every size": all(
            e["next_submit_ms"]["p95"] < 10 for e in results["sizes"].values()
        ),
        "same two goals with async commit (no fsync wait)": results[
            "p95_ratio_largest_to_smallest_async_commit"
        ]
        <= 1.5
        and all(e["next_submit_ms_async_commit"]["p95"] < 10 for e in results["sizes"].values()),
        "a rater alone: next p50 at the end within 1.5x of the start (every size)": all(
            e["lone_rater"]["last_over_first"] <= 1.5 for e in results["sizes"].values()
        ),
    }
    _print_table(results)
    common.write_results("queue", results)


def import_fresh_project():
    """A project of FRESH_COMPARISONS comparisons imported as a lead's upload would be, with
    one rater: (project, rater, import seconds). Nothing here analyzes the tables."""
    from accounts.models import User
    from comparisons.imports import import_comparisons
    from comparisons.models import Project

    rater = User.objects.create(email="fresh@bench.example", password="!")
    project = Project.objects.create(slug="fresh", name="Fresh import", overlap=3)
    project.raters.add(rater)
    lines = (
        json.dumps(
            {
                "external_id": f"f-{i}",
                "prompt": f"Question {i}: explain TCP.",
                "responses": [
                    {"model": "m-a", "content": f"Answer A {i}"},
                    {"model": "m-b", "content": f"Answer B {i}"},
                ],
            }
        )
        for i in range(FRESH_COMPARISONS)
    )
    result, import_seconds = common.timed(import_comparisons, project, lines)
    assert result.ok and result.created == FRESH_COMPARISONS, result.errors[:3]
    return project, rater, import_seconds


def wipe_statistics() -> None:
    """As if nothing had ever analyzed the queue's tables."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "DELETE FROM pg_statistic WHERE starelid IN ('comparisons_comparison'::regclass, "
            "'comparisons_assignment'::regclass, 'comparisons_judgment'::regclass)"
        )


def _fresh_import() -> dict:
    """The first minute after a real import of FRESH_COMPARISONS comparisons, one rater alone."""
    project, rater, import_seconds = import_fresh_project()
    out = {
        "comparisons": FRESH_COMPARISONS,
        "import_seconds": import_seconds,
        "after_import": _alone(rater, project, FRESH_SECONDS),
    }
    wipe_statistics()
    out["statistics_wiped"] = _alone(rater, project, FRESH_WIPED_SECONDS)
    return out


def _alone(rater, project, seconds: float) -> dict:
    from comparisons import queue

    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        lease = queue.next_assignment(rater, project)
        times.append((time.perf_counter() - t0) * 1000)
        queue.submit_judgment(lease, choice="a", duration_ms=9000)
    return {
        "seconds": seconds,
        "judgments": len(times),
        "judgments_per_s": round(len(times) / seconds, 1),
        "next_ms": common.percentiles(times),
        "next_max_ms": round(max(times), 2),
    }


def _print_fresh(fresh: dict) -> None:
    print(f"fresh import of {fresh['comparisons']:,} comparisons in {fresh['import_seconds']} s")
    for key in ("after_import", "statistics_wiped"):
        r = fresh[key]
        print(
            f"  {key}: {r['judgments']:,} judgments in {r['seconds']:g} s "
            f"({r['judgments_per_s']}/s), next p50 {r['next_ms']['p50']:.2f} "
            f"p95 {r['next_ms']['p95']:.2f} max {r['next_max_ms']:.2f} ms",
            flush=True,
        )


def _seed(n: int):
    """A fresh project of n comparisons: 30% complete, 10% started, 60% untouched."""
    from django.db import connection

    from accounts.models import User
    from comparisons.models import Project

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE comparisons_judgment, comparisons_assignment, comparisons_response, "
            "comparisons_comparison, comparisons_project_raters, comparisons_project "
            "RESTART IDENTITY CASCADE"
        )
    if not User.objects.filter(email__startswith="seed").exists():
        User.objects.bulk_create(
            User(email=f"seed{i}@bench.example", password="!") for i in range(SEED_RATERS)
        )
        User.objects.bulk_create(
            User(email=f"bench{i}@bench.example", password="!") for i in range(64)
        )
    seed_ids = list(
        User.objects.filter(email__startswith="seed").order_by("id").values_list("id", flat=True)
    )
    project = Project.objects.create(slug=f"bench-{n}", name=f"Bench {n}", overlap=3)
    project.raters.add(*User.objects.all())
    common.seed_project(project, n, seed_ids, complete=0.3, started=0.1)
    with connection.cursor() as cur:
        # A steady-state database: vacuumed (autovacuum would have) and the bulk load's dirty
        # pages flushed, so the first measured commits do not pay for the seeding.
        cur.execute("CHECKPOINT")
    return project


def _latency(project, *, email: str = "bench0@bench.example", async_commit: bool = False) -> dict:
    """One rater, sequential next -> submit. async_commit=True runs the same with the session's
    synchronous_commit off, which shows the cost of the queries without the WAL flush (fsync)
    that every durable commit waits for."""
    from django.db import connection

    from accounts.models import User
    from comparisons import queue

    rater = User.objects.get(email=email)
    with connection.cursor() as cur:
        cur.execute(f"SET synchronous_commit TO {'off' if async_commit else 'on'}")
    rng = random.Random(0)
    nexts, submits, both, cpu = [], [], [], []
    for i in range(LATENCY_ITERATIONS + 50):
        c0 = time.process_time()
        t0 = time.perf_counter()
        lease = queue.next_assignment(rater, project)
        t1 = time.perf_counter()
        queue.submit_judgment(lease, choice=rng.choice("ab"), duration_ms=9000)
        t2 = time.perf_counter()
        if i >= 50:  # warm-up: connection, caches
            nexts.append((t1 - t0) * 1000)
            submits.append((t2 - t1) * 1000)
            both.append((t2 - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit TO on")
    suffix = "_async_commit" if async_commit else ""
    return {
        f"next_ms{suffix}": common.percentiles(nexts),
        f"submit_ms{suffix}": common.percentiles(submits),
        f"next_submit_ms{suffix}": common.percentiles(both),
        # Python/Django CPU in this process per next+submit: the part machine load inflates.
        f"client_cpu_ms{suffix}": round(statistics.fmean(cpu), 3),
        f"load_average{suffix}": [round(x, 2) for x in os.getloadavg()],
    }


def _lone_rater(project, email: str = "bench62@bench.example") -> dict:
    """A rater far ahead of everyone: their own judged, still open comparisons pile up at the
    top of the pick order. next p50 over their first and last 500 judgments."""
    from accounts.models import User
    from comparisons import queue

    rater = User.objects.get(email=email)
    times = []
    for _ in range(LONE_ITERATIONS):
        t0 = time.perf_counter()
        lease = queue.next_assignment(rater, project)
        times.append((time.perf_counter() - t0) * 1000)
        queue.submit_judgment(lease, choice="a", duration_ms=9000)
    first, last = statistics.median(times[:500]), statistics.median(times[-500:])
    return {
        "judgments": LONE_ITERATIONS,
        "next_p50_first_500_ms": round(first, 2),
        "next_p50_last_500_ms": round(last, 2),
        "last_over_first": round(last / first, 2),
    }


def _commit_floor_ms() -> float:
    """p50 of an empty durable write transaction: this server's fsync cost per commit."""
    from django.db import connection, transaction

    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor (x int)")
    samples = []
    for _ in range(200):
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("INSERT INTO bench_commit_floor VALUES (1)")
        samples.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(samples), 3)


def _explain(project) -> str:
    """The pick for the latency rater (who by now has ~1,000 judgments for NOT EXISTS to skip)."""
    from accounts.models import User
    from comparisons import queue

    rater = User.objects.get(email="bench0@bench.example")
    plans = queue.explain_pick(rater, project)
    return "\n".join(f"-- {name}:\n{plan}" for name, plan in plans.items())


def _worker(project_id: int, email: str, seconds: float, start, out) -> None:
    from django.db import connection

    from accounts.models import User
    from comparisons import queue
    from comparisons.models import Project

    connection.close()  # never share the parent's socket
    project = Project.objects.get(pk=project_id)
    rater = User.objects.get(email=email)
    start.wait()
    done = errors = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            lease = queue.next_assignment(rater, project)
            if lease is None:
                break
            queue.submit_judgment(lease, choice="a", duration_ms=9000)
            done += 1
        except Exception:
            errors += 1
    connection.close()
    out.put((done, errors))


def _throughput(project, concurrency: int) -> dict:
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    # Raters bench1.. so the latency rater's history does not matter; fresh ones per run.
    offset = {1: 1, 4: 2, 16: 6}[concurrency]
    procs = [
        ctx.Process(
            target=_worker,
            args=(project.pk, f"bench{offset + i}@bench.example", THROUGHPUT_SECONDS, start, out),
        )
        for i in range(concurrency)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process connect before the clock starts
    start.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    return {
        "ops": total,
        "errors": sum(r[1] for r in results),
        "per_second": round(total / THROUGHPUT_SECONDS, 1),
    }


def _print_row(n: int, e: dict) -> None:
    ns = e["next_submit_ms"]
    print(
        f"  N={n:>9,}  next+submit p50 {ns['p50']:.2f} p95 {ns['p95']:.2f} p99 {ns['p99']:.2f} ms",
        flush=True,
    )


def _print_table(results: dict) -> None:
    header = (
        f"{'N':>10} | {'next p50/p95/p99 ms':>21} | {'submit p50/p95/p99 ms':>21} | "
        f"{'next+submit p50/p95/p99 ms':>26} | {'same, async commit':>20} | "
        f"{'ops/s @1':>8} {'@4':>7} {'@16':>7}"
    )

    def fmt(p: dict) -> str:
        return f"{p['p50']:.2f}/{p['p95']:.2f}/{p['p99']:.2f}"

    def row(n: str, e: dict) -> str:
        tp = e["throughput"]
        return (
            f"{int(n):>10,} | {fmt(e['next_ms']):>21} | {fmt(e['submit_ms']):>21} | "
            f"{fmt(e['next_submit_ms']):>26} | {fmt(e['next_submit_ms_async_commit']):>20} | "
            f"{tp['1']['per_second']:>8} "
            f"{tp['4']['per_second']:>7} {tp['16']['per_second']:>7}"
        )

    print()
    common.print_table(header, (row(n, e) for n, e in results["sizes"].items()))
    floors = ", ".join(f"{e['durable_commit_floor_ms']}" for e in results["sizes"].values())
    print(f"\ndurable commit (fsync) floor p50 per size, ms: {floors}")
    cpu = ", ".join(f"{e['client_cpu_ms']}" for e in results["sizes"].values())
    print(f"client CPU per next+submit per size, ms: {cpu}")
    loads = ", ".join(f"{e['load_average'][0]}" for e in results["sizes"].values())
    print(f"1-min load average during the latency run per size: {loads} (2 cores)")
    print(f"p95 ratio largest/smallest: {results['p95_ratio_largest_to_smallest']}")
    for n, e in results["sizes"].items():
        lone = e["lone_rater"]
        print(f"N={int(n):,}: a rater alone, next p50 over their first / last 500 of "
              f"{lone['judgments']:,} judgments: {lone['next_p50_first_500_ms']} / "
              f"{lone['next_p50_last_500_ms']} ms")  # fmt: skip
    for goal, ok in results["goals"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {goal}")
    for n, e in results["sizes"].items():
        if "explain" in e:
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the pick at N={int(n):,}:\n{e['explain']}")


if __name__ == "__main__":
    main()
