"""`make bench`: runs every bench/bench_*.py module's `main()` in turn (or the ones named).

Each module prints its own table and writes JSON under bench/results/. Benchmarks need
PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/raterhub_bench).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    for name in names:
        module = importlib.import_module(
            f"bench.{name if name.startswith('bench_') else 'bench_' + name}"
        )
        print(f"\n=== {module.__name__} ===", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
