"""Helpers shared by the rating-page tests (test_rate_*.py)."""

from __future__ import annotations

import os
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from comparisons.models import Comparison, Response


def add_comparisons(project, n: int, *, prefix: str = "bulk") -> None:
    """n two-response comparisons in two bulk inserts (fast enough for 1,000 in a test)."""
    start = Comparison.objects.filter(project=project).count()
    rows = Comparison.objects.bulk_create(
        Comparison(
            project=project,
            external_id=f"{prefix}-{start + i:06d}",
            prompt=[{"role": "user", "content": f"Question {i}?"}],
            open_slots=project.overlap,
        )
        for i in range(n)
    )
    if rows and rows[0].pk is None:  # backends without RETURNING on bulk insert
        rows = list(Comparison.objects.filter(project=project).order_by("-id")[:n])
    Response.objects.bulk_create(
        Response(comparison=c, position=pos, model_name=f"model-{pos}", content=f"Answer {pos}")
        for c in rows
        for pos in (0, 1)
    )


# Statements that only open or close a transaction: constant per request, and backend- and
# test-mode-specific (SQLite logs BEGIN IMMEDIATE, the test transaction adds SAVEPOINTs).
_TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)

# Budget per request, in data queries (measured the same on SQLite and PostgreSQL):
#   every rating view stays within 13; the largest,
#   htmx submit 13 = user 1 + the rater's assignment 1 + the queue's submit 4 + the queue's
#   next lease 5 (membership, the pick window's candidates, the lock of the one taken by
#   primary key, its slot, the lease) + progress 1 + responses 1 (the session comes from the
#   cache: cached_db). The pick reads candidates and locks apart so that neither statement's
#   plan depends on the planner's statistics (comparisons.sql).
PAGE_BUDGET = 13
ACTION_BUDGET = 13


def data_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if not _TRANSACTION_CONTROL.match(q["sql"])]


def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    queries = data_queries(ctx.captured_queries)
    if os.environ.get("RATE_PRINT_QUERIES"):  # debugging aid: RATE_PRINT_QUERIES=1 pytest -s
        print("\n".join(["----", *(q[:120] for q in queries)]))
    return len(queries)


def submit_url(html: str) -> str:
    return re.search(r'action="(/rate/[^"]+/submit)"', html).group(1)


def skip_url(html: str) -> str:
    return re.search(r'action="(/rate/[^"]+/skip)"', html).group(1)
