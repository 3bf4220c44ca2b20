"""Every hand-written SQL statement of RaterHub: the queue's candidate reads, its hot-path
reads and slot update, and ANALYZE.

Why these are SQL and everything else is the ORM: "the rater never had this comparison" must
stay a per-row probe of the (comparison, rater) unique index. Written as the ORM writes it, a
NOT EXISTS becomes an anti-join that PostgreSQL may plan as a hash or rescan of the rater's
whole history, and which plan it picks depends on statistics that lag a busy rater's history
(or are missing right after an import: autovacuum may be off). So each statement here:
  - has no join for the planner to choose a strategy for: the candidates come straight off
    the pick index (comparison_pick_idx, whose condition and order these repeat), ids only,
    and the row taken is then locked by primary key (LOCK_FIRST_FREE), and
  - fences the probe with OFFSET 0 (PostgreSQL cannot flatten a subquery with an OFFSET) and
    keeps it off the rater_id indexes with a unary + (the same idiom works on SQLite).
The hot path's other statements (RATER_LEASE, RATER_STANDING, RESPONSE_TEXTS,
MEMBERSHIP, LOCK_LEASE, POLICY_AND_COUNTED_CHOICES, COUNT_JUDGMENT, FINISH_LEASE, WINDOW_END,
TAKE_SLOT) are SQL for CPU alone: the ORM spends more CPU building them than the database
spends answering them. Measured before and after in one session (the closing notes of round 2,
issue 11): with the queue's statements written through the ORM, one next + submit cost 3.1x the
client CPU (4.1 ms against 1.3 ms); with the rating views' reads too, a whole htmx submit cost
25.5 ms of CPU in-process against 14.5 ms then.
Two helpers here finish that work: `_instances` reads rows into model instances as raw() does,
but resolves columns to fields once per statement shape instead of on every call; `insert`
writes the queue's new leases and judgments with one statement per model, built once from its
fields, instead of compiling an INSERT on every create(). With ops.cache's reused Redis client,
they took an htmx submit from 33.1M to 28.2M instructions in the web process, and reading the
lease with its project and the standing with the "left" count (16 statements to 13) to 27.8M
(27.6M for round 1), counted by `make bench BENCH=instructions`. On PostgreSQL, `_execute`
prepares each statement once per connection: the server's CPU per judgment in the HTTP
benchmark fell by about a third (see there).
"Had" leaves out released leases (a lead gave the comparison back to the queue, this rater
included), as the once-per-rater constraint does. Each statement runs unchanged on PostgreSQL
and SQLite (LOCK_LEASE adds its lock clause on PostgreSQL only). The queue is their only
caller, and imports call `analyze_comparisons` after a bulk insert.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from weakref import WeakKeyDictionary

from django.conf import settings
from django.db import connection
from django.db.models import IntegerField, Model
from django.db.models.expressions import RawSQL

from comparisons.models import Assignment, Comparison, Judgment, Project


def _columns(model: type[Model], alias: str) -> str:
    """The model's columns, qualified by `alias`, in field order. A statement whose rows become
    whole instances names them instead of `*`: a prepared statement's result may not change
    shape, and a migration that adds a column would otherwise break it until reconnection."""
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


# The pick window: the first rows of the pick index, up to a limit, that the rater never had,
# in pick order (at most `candidates` of them). The window's rows come out of the index in that
# order, so there is no sort and the probes stop once enough are found: reading the whole
# window probed 100 comparisons per pick (231 buffer hits, the second costliest statement of a
# submit under 700 raters), where the lock almost always takes the first.
WINDOW_CANDIDATES = """
SELECT w.id FROM (
    SELECT c.id, c.priority, c.judged_count FROM comparisons_comparison c
    WHERE c.project_id = %s AND c.open_slots > 0 AND c.gold_choice IS NULL
    ORDER BY c.priority DESC, c.judged_count DESC, c.id
    LIMIT %s
) w
WHERE NOT EXISTS (
    SELECT 1 FROM comparisons_assignment seen
    WHERE seen.comparison_id = w.id AND +seen.rater_id = %s AND NOT (seen.status = 'released')
    LIMIT 1 OFFSET 0
)
ORDER BY w.priority DESC, w.judged_count DESC, w.id
LIMIT %s
"""

# Never-judged open comparisons of one priority, oldest first (an index range of the pick
# index: project, priority and judged_count = 0 fixed, in id order).
UNTOUCHED_CANDIDATES = """
SELECT c.id FROM comparisons_comparison c
WHERE c.project_id = %s AND c.open_slots > 0 AND c.gold_choice IS NULL
    AND c.priority = %s AND c.judged_count = 0
    AND NOT EXISTS (
        SELECT 1 FROM comparisons_assignment seen
        WHERE seen.comparison_id = c.id AND +seen.rater_id = %s AND NOT (seen.status = 'released')
        LIMIT 1 OFFSET 0
    )
ORDER BY c.id
LIMIT %s
"""

# The first open comparison in the whole pick order that the rater never had.
FIRST_OPEN = """
SELECT c.id FROM comparisons_comparison c
WHERE c.project_id = %s AND c.open_slots > 0 AND c.gold_choice IS NULL
    AND NOT EXISTS (
        SELECT 1 FROM comparisons_assignment seen
        WHERE seen.comparison_id = c.id AND +seen.rater_id = %s AND NOT (seen.status = 'released')
        LIMIT 1 OFFSET 0
    )
ORDER BY c.priority DESC, c.judged_count DESC, c.id
LIMIT 1
"""

# How many open regular comparisons of a project the rater was never given (a released lease
# does not count as given), read up to a limit: "N left for you". The same fenced probe as the
# pick, so the count stops at the limit instead of anti-joining the whole project (an exact
# count through the ORM took 232 ms at 120k comparisons, on every rating request). Comparisons
# nobody has judged yet are counted first: the rater can have had few of them (a skip, an
# expired lease), so reaching the limit costs about `limit` probes. Only when fewer remain does
# the second branch walk the judged ones, whose rejects are the rater's own judgments still
# open. Counted in one pass, a rater far ahead of the others (thousands of their judgments
# still open at the top of the order) paid a probe for each on every request: 5.8 ms at 2,000.
# Parameters: (project,) rater, limit, (project,) rater, limit, limit (_untouched_params).
_UNTOUCHED_BRANCH = """
    SELECT b.id FROM (
        SELECT c.id FROM comparisons_comparison c
        WHERE c.project_id = PROJECT AND c.open_slots > 0 AND c.gold_choice IS NULL
            AND c.judged_count JUDGED
            AND NOT EXISTS (
                SELECT 1 FROM comparisons_assignment seen
                WHERE seen.comparison_id = c.id AND +seen.rater_id = %s
                    AND seen.status <> 'released'
                LIMIT 1 OFFSET 0
            )
        ORDER BY c.priority DESC, c.judged_count DESC, c.id  -- the pick index's order
        LIMIT %s
    ) b"""
_UNTOUCHED_COUNT = f"""
(SELECT count(*) FROM (
    SELECT u.id FROM ({_UNTOUCHED_BRANCH.replace("JUDGED", "= 0")}
    UNION ALL{_UNTOUCHED_BRANCH.replace("JUDGED", "> 0")}
    ) u
    LIMIT %s
) w)
"""
# Per row of a query over projects (an annotation).
UNTOUCHED_COUNT_PER_PROJECT = _UNTOUCHED_COUNT.replace("PROJECT", '"comparisons_project"."id"')

# The oldest gold comparison the rater never had (served by comparison_gold_idx).
FIRST_GOLD = """
SELECT c.id FROM comparisons_comparison c
WHERE c.project_id = %s AND c.gold_choice IS NOT NULL
    AND NOT EXISTS (
        SELECT 1 FROM comparisons_assignment seen
        WHERE seen.comparison_id = c.id AND +seen.rater_id = %s AND NOT (seen.status = 'released')
        LIMIT 1 OFFSET 0
    )
ORDER BY c.id
LIMIT 1
"""


# A rater's membership of a project, fresh: (status, lease_seconds, gold_rate, live lease id).
MEMBERSHIP = """
SELECT p.status, p.lease_seconds, p.gold_rate, (
    SELECT a.id FROM comparisons_assignment a
    WHERE a.project_id = p.id AND a.rater_id = %s AND a.status = 'active'
    LIMIT 1
)
FROM comparisons_project p
JOIN comparisons_project_raters m ON m.project_id = p.id AND m.user_id = %s
WHERE p.id = %s
"""

# A rater's own lease in a project they are a member of, found by its id and the project's
# slug (the rating views' URL): the lease's columns, then its project's. The lease is read by
# primary key inside a fenced subquery (LIMIT 1 OFFSET 0), so the only plan is one probe of the
# primary key, then of the project's and the membership's unique keys: joined flat, with
# statistics stale or missing, PostgreSQL scanned the rater's or the project's whole history by
# another index.
RATER_LEASE = f"""
SELECT {_columns(Assignment, "a")}, {_columns(Project, "p")}
FROM (SELECT * FROM comparisons_assignment WHERE id = %s LIMIT 1 OFFSET 0) a
JOIN comparisons_project p ON p.id = a.project_id
JOIN comparisons_project_raters m ON m.project_id = p.id AND m.user_id = a.rater_id
WHERE a.rater_id = %s AND p.slug = %s
"""

# A rater's standing in a project, for the rating panel: their judgments in force (all, and
# made since the first parameter) and the last of them, with whether its comparison is still
# incomplete. One row; the judgment's columns are NULL before their first judgment.
RATER_STANDING = """
SELECT j.id, j.assignment_id, j.comparison_id, j.rater_id, j.created_at, j.superseded_at,
    c.completed_at IS NULL AS still_open, counts.total, counts.today
FROM (
    SELECT count(*) AS total, count(CASE WHEN mine.created_at >= %s THEN 1 END) AS today,
        max(mine.id) AS last_id
    FROM comparisons_judgment mine
    WHERE mine.project_id = %s AND mine.rater_id = %s AND mine.superseded_at IS NULL
) counts
LEFT JOIN comparisons_judgment j ON j.id = counts.last_id
LEFT JOIN comparisons_comparison c ON c.id = j.comparison_id
"""
# The same with the untouched count as the column `left_count`: the panel of a comparison
# reads both in one round trip. Its parameters come first (_untouched_params).
RATER_STANDING_AND_LEFT = RATER_STANDING.replace(
    "counts.today\n",
    "counts.today,\n" + _UNTOUCHED_COUNT.replace("PROJECT", "%s").strip() + " AS left_count\n",
    1,
)

# A comparison's response texts, in position order (the import's order).
RESPONSE_TEXTS = (
    "SELECT content FROM comparisons_response WHERE comparison_id = %s ORDER BY position"
)

# A lease with what a submit needs, and its comparison's counters, both locked on PostgreSQL
# (a double submit, a reclaim and a skip all take the lease's lock first; counting a judgment
# takes the comparison's).
LOCK_LEASE = """
SELECT c.id, c.gold_choice, c.open_slots, c.judged_count, c.lead_margin, c.completed_at,
    a.status AS lease_status, a.skip_reason AS lease_skip_reason, a.swapped AS lease_swapped,
    j.id AS lease_judgment_id
FROM comparisons_assignment a
JOIN comparisons_comparison c ON c.id = a.comparison_id
LEFT JOIN comparisons_judgment j ON j.assignment_id = a.id AND j.superseded_at IS NULL
WHERE a.id = %s
"""
LOCK_LEASE_POSTGRESQL = LOCK_LEASE + "FOR NO KEY UPDATE OF a, c\n"

# The project's overlap settings, with the counted choices in force (not superseded) of one of
# its comparisons (a left join: one row with a NULL choice before any judgment). The judgments
# are read by comparison in a materialized CTE (a fence), the only condition there: joined
# flat, with statistics stale or missing, PostgreSQL intersected the project's index with the
# partial one of judgments in force and walked every current judgment of the project (1.4 ms
# per submit at 8,000 of them, half of a submit's statement time in the load test, and growing
# with the project).
POLICY_AND_COUNTED_CHOICES = """
WITH j AS MATERIALIZED (
    SELECT mine.choice, mine.counted, mine.superseded_at FROM comparisons_judgment mine
    WHERE mine.comparison_id = %s
)
SELECT p.overlap_policy, p.overlap, p.min_overlap, p.max_overlap, j.choice
FROM comparisons_project p
LEFT JOIN j ON j.counted = %s AND j.superseded_at IS NULL
WHERE p.id = %s
"""

# The priority of the pick window's last row (the pick index's order).
WINDOW_END = """
SELECT c.priority FROM comparisons_comparison c
WHERE c.project_id = %s AND c.open_slots > 0 AND c.gold_choice IS NULL
ORDER BY c.priority DESC, c.judged_count DESC, c.id
LIMIT 1 OFFSET %s
"""

# One slot of an open comparison for a new lease.
TAKE_SLOT = """
UPDATE comparisons_comparison
SET open_slots = open_slots - 1, lease_count = lease_count + 1
WHERE id = %s AND open_slots > 0
"""


# A judgment counted on a (locked) regular comparison: one more judgment, the new lead margin,
# open slots moved by the change of target, and completed_at (set once, kept after).
COUNT_JUDGMENT = """
UPDATE comparisons_comparison
SET judged_count = judged_count + 1, lead_margin = %s, open_slots = open_slots + %s,
    completed_at = %s
WHERE id = %s
"""

# A lease whose judgment is being recorded.
FINISH_LEASE = "UPDATE comparisons_assignment SET status = %s, finished_at = %s WHERE id = %s"

# The first of the candidates (in their order) that still has an open slot and that no other
# transaction holds, locked. The lateral subquery carries the lock, so PostgreSQL cannot
# flatten it into a join: the only plan is a loop over the candidates, each one probe of the
# primary key, stopping at the first it can lock.
LOCK_FIRST_FREE = f"""
SELECT {_columns(Comparison, "c")} FROM unnest(%s::bigint[]) WITH ORDINALITY AS k(id, n)
CROSS JOIN LATERAL (
    SELECT * FROM comparisons_comparison c
    WHERE c.id = k.id AND c.open_slots > 0 AND c.gold_choice IS NULL
    FOR NO KEY UPDATE SKIP LOCKED
) c
ORDER BY k.n
LIMIT 1
"""


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _RowPlan:
    """How a result row of given columns becomes an instance of a model: the model's fields in
    its own order and where each is in the row, each column's converters, and the other columns
    (set as attributes)."""

    names: list[str]
    positions: list[int]
    converters: list[tuple[int, list, object]]
    extras: list[tuple[str, int]]


_plans: dict[tuple, _RowPlan] = {}


def _plan(model: type[Model], columns: tuple[str, ...]) -> _RowPlan:
    key = (connection.vendor, model, columns)
    plan = _plans.get(key)
    if plan is None:
        by_column = {f.column: f for f in model._meta.concrete_fields}
        fields = [f for f in model._meta.concrete_fields if f.column in columns]
        converters = []
        for pos, column in enumerate(columns):
            field = by_column.get(column)
            if field is not None:
                col = field.get_col(model._meta.db_table)
                found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if found:
                    converters.append((pos, found, col))
        plan = _plans[key] = _RowPlan(
            names=[f.attname for f in fields],
            positions=[columns.index(f.column) for f in fields],
            converters=converters,
            extras=[(c, pos) for pos, c in enumerate(columns) if c not in by_column],
        )
    return plan


def _make(model: type[M], columns: tuple[str, ...], row) -> M:
    """One result row of `columns` as a `model` instance, as Model.objects.raw() makes it (the
    fields' and the backend's converters; other columns become attributes)."""
    plan = _plan(model, columns)
    values = list(row)
    for pos, converters, col in plan.converters:
        for convert in converters:
            values[pos] = convert(values[pos], col, connection)
    instance = model.from_db(connection.alias, plan.names, [values[i] for i in plan.positions])
    for name, pos in plan.extras:
        setattr(instance, name, values[pos])
    return instance


# On PostgreSQL each statement here is prepared once per connection (PREPARE, sent with its
# first EXECUTE in one round trip) and then executed by name, so the server parses and plans it
# once instead of on every request. Measured one statement at a time on the benchmark's
# database, 1,500 runs each, server CPU per run: the standing with the "left" count 860 to
# 385 us, the rater's lease 430 to 227, the lease lock 360 to 177, the policy read 260 to 143,
# the responses 200 to 107. In the HTTP benchmark (16 raters, three runs each, in turns),
# PostgreSQL's CPU per judgment went from 6.0-6.1 ms to 3.2-3.7 ms. Behind pgbouncer in
# transaction mode (a prepared statement lives in one server session) set
# DB_PREPARED_STATEMENTS=0.
# raw connection -> {statement: its EXECUTE by name, with the statement's placeholders}
_prepared: WeakKeyDictionary = WeakKeyDictionary()
_names = itertools.count()
_PLACEHOLDER = re.compile(r"(?<!%)%s")


def _execute(cursor, statement: str, params: list) -> None:
    """cursor.execute(statement, params), through the connection's prepared statement."""
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        cursor.execute(statement, params)
        return
    executes = _prepared.setdefault(connection.connection, {})
    execute = executes.get(statement)
    if execute is not None:
        cursor.execute(execute, params)
        return
    # A fresh name each try: if this call fails after its PREPARE took effect, the next try
    # must not collide with it (a prepared statement outlives a rollback).
    name = f"raterhub_{next(_names)}"
    execute = f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"
    numbered = iter(range(1, len(params) + 1))
    body = _PLACEHOLDER.sub(lambda _: f"${next(numbered)}", statement)
    cursor.execute(f"PREPARE {name} AS {body};\n{execute}", params)
    executes[statement] = execute


def _described(sql: str, params: list) -> tuple[tuple[str, ...], list[tuple]]:
    """The column names and the rows of `sql`."""
    with connection.cursor() as cursor:
        _execute(cursor, sql, params)
        return tuple(c[0] for c in cursor.description), cursor.fetchall()


def _instances(model: type[M], sql: str, params: list) -> list[M]:
    """The rows of `sql` as `model` instances (_make), without raw()'s per-call work:
    resolving columns to fields is done once per statement shape, not on every call. On the
    rating requests, raw() spent 1.6 ms of CPU per submit above the statements themselves."""
    columns, rows = _described(sql, params)
    return [_make(model, columns, row) for row in rows]


def _instance(model: type[M], sql: str, params: list) -> M | None:
    return next(iter(_instances(model, sql, params)), None)


_inserts: dict[tuple, tuple[str, list, bool]] = {}


def insert(instance: Model) -> None:
    """Write a new instance as its row and set its primary key, as save() does for a new row
    (pre_save values such as auto_now_add included), with one statement per model built once
    from its fields instead of compiled on every call. No signals are sent: nothing listens to
    the models the queue inserts (Assignment, Judgment). Two inserts per submit cost 1.6 ms of
    CPU through Model.objects.create."""
    model = type(instance)
    key = (connection.vendor, model)
    found = _inserts.get(key)
    if found is None:
        meta, quote = model._meta, connection.ops.quote_name
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        if any(f.generated or f.has_db_default() for f in fields):
            raise TypeError(f"insert() writes every field's value: use create() for {model}.")
        statement = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
        returning = connection.features.can_return_columns_from_insert  # not SQLite < 3.35
        if returning:
            statement += f" RETURNING {quote(meta.pk.column)}"
        found = _inserts[key] = (statement, fields, returning)
    statement, fields, returning = found
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        _execute(cursor, statement, values)
        instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    instance._state.adding = False
    instance._state.db = connection.alias


def lock_first_free(ids: list[int]) -> Comparison | None:
    """LOCK_FIRST_FREE on PostgreSQL. SQLite has no row locks: its immediate transactions
    serialize every queue write, so the first candidate still open is the one."""
    if not ids:
        return None
    if connection.vendor == "postgresql":
        return _instance(Comparison, LOCK_FIRST_FREE, [ids])
    return Comparison.objects.filter(pk=ids[0], open_slots__gt=0).first()


def _ids(sql: str, params: list) -> list[int]:
    with connection.cursor() as cursor:
        _execute(cursor, sql, params)
        return [row[0] for row in cursor.fetchall()]


def _row(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        _execute(cursor, sql, params)
        return cursor.fetchone()


def membership(*, project_id: int, rater_id: int) -> tuple[str, int, float, int | None] | None:
    """(status, lease_seconds, gold_rate, live lease id), or None if the rater is not a member."""
    return _row(MEMBERSHIP, [rater_id, rater_id, project_id])


def rater_lease(*, assignment_id: int, rater_id: int, slug: str) -> Assignment | None:
    """RATER_LEASE, with its project attached; None if it is not the rater's or they no
    longer rate its project."""
    columns, rows = _described(RATER_LEASE, [assignment_id, rater_id, slug])
    if not rows:
        return None
    row = rows[0]
    split = len(Assignment._meta.concrete_fields)  # the lease's columns, then the project's
    lease = _make(Assignment, columns[:split], row[:split])
    lease.project = _make(Project, columns[split:], row[split:])
    return lease


def rater_standing(
    *, project_id: int, rater_id: int, since: datetime, left_limit: int | None = None
) -> Judgment:
    """RATER_STANDING as the rater's last judgment in force (pk None before their first), with
    `still_open`, `total` and `today` (made since `since`) attached; with `left_limit`,
    RATER_STANDING_AND_LEFT, which attaches `left_count` too (counted up to that limit)."""
    statement, params = _standing_statement(project_id, rater_id, since, left_limit)
    return _instance(Judgment, statement, params)


def _standing_statement(
    project_id: int, rater_id: int, since: datetime, left_limit: int | None
) -> tuple[str, list]:
    """rater_standing's statement and its parameters (the tests explain the same)."""
    params = [connection.ops.adapt_datetimefield_value(since), project_id, rater_id]
    if left_limit is None:
        return RATER_STANDING, params
    return RATER_STANDING_AND_LEFT, [*_untouched_params(project_id, rater_id, left_limit), *params]


def response_texts(comparison_id: int) -> list[str]:
    with connection.cursor() as cursor:
        _execute(cursor, RESPONSE_TEXTS, [comparison_id])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class LockedLease:
    status: str
    skip_reason: str
    swapped: bool
    judgment_id: int | None
    comparison: Comparison  # gold_choice and the queue's counters only

    @property
    def comparison_id(self) -> int:
        return self.comparison.pk


def lock_lease(assignment_id: int) -> LockedLease:
    """LOCK_LEASE: the lease and its comparison, locked until the transaction ends on
    PostgreSQL (SQLite's writes are serialized). Assignment.DoesNotExist if there is none."""
    statement = LOCK_LEASE_POSTGRESQL if connection.vendor == "postgresql" else LOCK_LEASE
    # The model's own converters, so completed_at is a datetime on SQLite too.
    comparison = _instance(Comparison, statement, [assignment_id])
    if comparison is None:
        raise Assignment.DoesNotExist(f"Assignment {assignment_id} does not exist.")
    return LockedLease(
        status=comparison.lease_status,
        skip_reason=comparison.lease_skip_reason,
        swapped=bool(comparison.lease_swapped),
        judgment_id=comparison.lease_judgment_id,
        comparison=comparison,
    )


def policy_and_counted_choices(*, project_id: int, comparison_id: int) -> list[tuple]:
    with connection.cursor() as cursor:
        _execute(cursor, POLICY_AND_COUNTED_CHOICES, [comparison_id, True, project_id])
        return cursor.fetchall()


def window_end(*, project_id: int, window: int) -> int | None:
    row = _row(WINDOW_END, [project_id, window - 1])
    return None if row is None else row[0]


def take_slot(comparison_id: int) -> bool:
    with connection.cursor() as cursor:
        _execute(cursor, TAKE_SLOT, [comparison_id])
        return cursor.rowcount == 1


def count_judgment(
    *, comparison_id: int, lead_margin: int, slot_change: int, completed_at: datetime | None
) -> None:
    completed = connection.ops.adapt_datetimefield_value(completed_at)
    with connection.cursor() as cursor:
        _execute(cursor, COUNT_JUDGMENT, [lead_margin, slot_change, completed, comparison_id])


def finish_lease(*, assignment_id: int, status: str, finished_at: datetime) -> None:
    finished = connection.ops.adapt_datetimefield_value(finished_at)
    with connection.cursor() as cursor:
        _execute(cursor, FINISH_LEASE, [status, finished, assignment_id])


def _window_params(project_id: int, rater_id: int, window: int, candidates: int) -> list[int]:
    """WINDOW_CANDIDATES's parameters, in its order."""
    return [project_id, window, rater_id, candidates]


def window_candidates(*, project_id: int, rater_id: int, window: int, candidates: int) -> list[int]:
    return _ids(WINDOW_CANDIDATES, _window_params(project_id, rater_id, window, candidates))


def untouched_candidates(*, project_id: int, rater_id: int, priority: int, limit: int) -> list[int]:
    return _ids(UNTOUCHED_CANDIDATES, [project_id, priority, rater_id, limit])


def first_open(*, project_id: int, rater_id: int) -> int | None:
    return next(iter(_ids(FIRST_OPEN, [project_id, rater_id])), None)


def untouched_count_per_project(*, rater_id: int, limit: int) -> RawSQL:
    """The untouched count (as in RATER_STANDING_AND_LEFT) as an annotation of a Project
    queryset (its table is the outer one)."""
    params = _untouched_params(None, rater_id, limit)
    return RawSQL(UNTOUCHED_COUNT_PER_PROJECT, params, output_field=IntegerField())


def _untouched_params(project_id: int | None, rater_id: int, limit: int) -> list[int]:
    """_UNTOUCHED_COUNT's parameters, with the project's id (None where it is the outer row's)."""
    branch = [rater_id, limit] if project_id is None else [project_id, rater_id, limit]
    return [*branch, *branch, limit]


def first_gold(*, project_id: int, rater_id: int) -> int | None:
    return next(iter(_ids(FIRST_GOLD, [project_id, rater_id])), None)


def explain_pick(*, project_id: int, rater_id: int, window: int, candidates: int) -> dict[str, str]:
    """The database's plans of the fast pick's two statements, run for real (EXPLAIN ANALYZE)
    on PostgreSQL; the caller rolls back (the lock locks)."""
    analyze = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else None
    explain = analyze or "EXPLAIN QUERY PLAN "
    params = _window_params(project_id, rater_id, window, candidates)
    ids = _ids(WINDOW_CANDIDATES, params)
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute(explain + WINDOW_CANDIDATES, params)
        plans["window"] = "\n".join(" ".join(map(str, row)) for row in cursor.fetchall())
        if analyze:
            cursor.execute(analyze + LOCK_FIRST_FREE, [ids])
            plans["lock"] = "\n".join(" ".join(map(str, row)) for row in cursor.fetchall())
    return plans


ANALYZE_COMPARISONS = "ANALYZE comparisons_comparison, comparisons_response"


def analyze_comparisons() -> None:
    """Fresh planner statistics after a bulk import (PostgreSQL; autovacuum would do it within
    about a minute, where it is on). The pick's plan does not depend on them; other reads do."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(ANALYZE_COMPARISONS)
