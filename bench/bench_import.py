"""Import benchmark: 100,000 realistic JSONL lines through `import_comparisons`.

Generates the file once, then for SQLite (a temporary file database) and PostgreSQL
(`raterhub_bench_import`, created and dropped here) runs a fresh worker process that migrates,
imports the file into an empty project, then re-imports it with skip_existing (every line
already present). Each worker sets up Django itself, so the two databases never share a
process, and reports seconds, lines/s and peak RSS. DEBUG is off, as in production.

    make bench BENCH=import            # or: .venv/bin/python -m bench.bench_import [LINES]

Lines: BENCH_IMPORT_LINES (default 100000).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

LINES = int(os.environ.get("BENCH_IMPORT_LINES", "100000"))
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "raterhub_bench_import"

WORDS = ["the", "a", "model", "response", "prompt", "token", "latency", "gradient", "cache",
         "request", "server", "client", "function", "returns", "value", "error", "list", "index",
         "memory", "thread", "lock", "queue", "batch", "vector", "training", "reward", "policy",
         "preference", "rater", "judgment", "answer", "question", "explain", "because", "however",
         "therefore", "example", "simple", "fast", "slow", "correct", "incorrect", "first",
         "second", "finally"]  # fmt: skip
TOPICS = ["TCP slow start", "binary search", "photosynthesis", "the French Revolution",
          "Rust lifetimes", "Bayes' theorem", "a SQL index", "the CAP theorem"]  # fmt: skip


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _answer(rng: random.Random) -> str:
    """Markdown of the usual shapes: paragraphs, a list, sometimes code or a table."""
    parts = [_sentence(rng, rng.randint(8, 30)) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.4:
        parts.append("\n".join(f"- {_sentence(rng, rng.randint(4, 10))}" for _ in range(4)))
    if rng.random() < 0.3:
        parts.append("```python\ndef f(x):\n    return x * 2  # doubles\n\nprint(f(21))\n```")
    if rng.random() < 0.1:
        parts.append("| n | n² |\n|---|---|\n| 1 | 1 |\n| 2 | 4 |\n| 3 | 9 |")
    if rng.random() < 0.1:
        parts.append("\n\n".join(_sentence(rng, 40) for _ in range(rng.randint(5, 15))))
    return "\n\n".join(parts)


def generate(path: Path, lines: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    models = ["gpt-x", "llama-70b", "mistral-l", "qwen-72b", "claude-y"]
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            question = (
                f"Explain {rng.choice(TOPICS)} to a {rng.choice(['child', 'student', 'engineer'])}."
            )
            if rng.random() < 0.2:
                prompt: object = [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": _answer(rng)},
                    {"role": "user", "content": "Shorter, please, with an example."},
                ]
            else:
                prompt = question
            pair = rng.sample(models, 3 if rng.random() < 0.05 else 2)
            line = {
                "external_id": f"bench-{i:07d}",
                "prompt": prompt,
                "responses": [{"model": m, "content": _answer(rng)} for m in pair],
                "metadata": {"source": "bench", "topic_id": rng.randint(1, 500)},
            }
            if rng.random() < 0.1:
                line["priority"] = rng.randint(1, 5)
            if rng.random() < 0.02:
                line["gold"] = {"choice": rng.choice(["a", "b", "tie", "both_bad"])}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return path.stat().st_size


def worker(path: str) -> None:
    """Runs in its own process (environment from child_env, DEBUG off): set up Django, migrate,
    import, report JSON."""
    import resource

    common.setup_django()
    from django.conf import settings

    from comparisons.imports import import_comparisons
    from comparisons.models import Comparison, Project, Response

    project = Project.objects.create(slug="bench-import", name="Import benchmark")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

    def timed(**options) -> tuple[float, float, object]:
        with open(path, encoding="utf-8", errors="surrogateescape") as lines:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = import_comparisons(project, lines, **options)
            return time.perf_counter() - started, time.process_time() - cpu_started, result

    seconds, cpu_seconds, result = timed()
    assert result.ok, result.errors[:5]
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    reimport_seconds, _, again = timed(skip_existing=True)
    assert again.ok and again.skipped == result.created, again
    print(
        json.dumps(
            {
                "lines": result.total_lines,
                "batch_size": settings.RATERHUB_IMPORT_BATCH_SIZE,
                "created": result.created,
                "gold": result.gold,
                "responses": Response.objects.count(),
                "comparisons": Comparison.objects.count(),
                "seconds": round(seconds, 2),
                "lines_per_s": round(result.total_lines / seconds),
                # This process only (not the PostgreSQL server): steadier than wall time on a
                # shared machine.
                "python_cpu_seconds": round(cpu_seconds, 2),
                "load_average_1min": round(os.getloadavg()[0], 1),
                "reimport_skip_existing_seconds": round(reimport_seconds, 2),
                "rss_before_import_mb": rss_before,
                "peak_rss_mb": rss_peak,
            }
        )
    )


def _run_worker(database_url: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_import", "--worker", str(path)],
        env=common.child_env(database_url),
        cwd=common.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed on {database_url}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(lines: int = LINES) -> dict:
    import psycopg2

    results: dict = {"lines": lines, "databases": {}}
    with tempfile.TemporaryDirectory(prefix="raterhub-bench-import-") as tmp:
        path = Path(tmp) / "comparisons.jsonl"
        started = time.perf_counter()
        size = generate(path, lines)
        results["file_mb"] = round(size / 2**20, 1)
        print(
            f"generated {lines:,} lines, {size / 2**20:.0f} MB in {time.perf_counter() - started:.1f} s"
        )

        results["databases"]["sqlite"] = _run_worker(f"sqlite:///{tmp}/bench.sqlite3", path)

        pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DB}"
        try:
            common.recreate_database(pg_url)
        except psycopg2.OperationalError as exc:
            print(f"PostgreSQL skipped: {exc}".strip())
        else:
            try:
                results["databases"]["postgresql"] = _run_worker(pg_url, path)
            finally:
                common.drop_database(pg_url)

    print()
    common.print_table(
        f"{'database':<11} {'lines':>8} {'seconds':>8} {'lines/s':>8} {'CPU s':>6} "
        f"{'re-import s':>12} {'peak RSS MB':>12} {'load':>5}",
        (
            f"{name:<11} {row['lines']:>8,} {row['seconds']:>8.2f} {row['lines_per_s']:>8,} "
            f"{row['python_cpu_seconds']:>6.1f} {row['reimport_skip_existing_seconds']:>12.2f} "
            f"{row['peak_rss_mb']:>12,} {row['load_average_1min']:>5}"
            for name, row in results["databases"].items()
        ),
        rule=False,
    )
    common.write_results("import", results)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else LINES)
