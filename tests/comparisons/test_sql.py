"""comparisons.sql's two helpers that stand in for the ORM on the rating requests: rows read into
model instances (`_instances`) and the queue's inserts (`insert`). Each must give what the ORM
gives, converters and defaults included, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from comparisons import sql
from comparisons.models import Assignment, Comparison, Judgment
from tests.factories import AssignmentFactory, ComparisonFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_rows_read_into_instances_equal_the_orms_including_json_datetimes_and_extra_columns():
    project = ProjectFactory()
    comparison = ComparisonFactory(
        project=project,
        prompt=[{"role": "user", "content": "Hi ✓"}],
        metadata={"source": "x", "n": [1, 2]},
        completed_at=timezone.now(),
    )
    # Columns in another order than the model's, and one that is no field.
    statement = (
        "SELECT c.completed_at, c.prompt, 7 AS extra, c.* FROM comparisons_comparison c "
        "WHERE c.id = %s"
    )
    for _ in range(2):  # the second read goes through the cached plan
        got = sql._instance(Comparison, statement, [comparison.pk])
        assert _fields(got) == _fields(Comparison.objects.get(pk=comparison.pk))
        assert got.extra == 7
        assert got._state.adding is False
    assert sql._instance(Comparison, statement, [comparison.pk + 1000]) is None


def test_insert_writes_the_row_the_orm_would_and_sets_the_key_and_auto_now_add():
    project = ProjectFactory()
    comparison = ComparisonFactory(project=project)
    rater = UserFactory()
    project.raters.add(rater)
    now = timezone.now()
    lease = Assignment(
        project=project,
        comparison=comparison,
        rater=rater,
        swapped=True,
        leased_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    sql.insert(lease)
    assert lease.pk is not None and lease._state.adding is False
    assert _fields(Assignment.objects.get(pk=lease.pk)) == _fields(lease)

    judgment = Judgment(
        assignment=lease,
        project=project,
        comparison=comparison,
        rater=rater,
        choice="a",
        criteria={"accuracy": "b"},
        flags=["unsafe"],
        rationale="Because ✓",
        duration_ms=1234,
    )
    sql.insert(judgment)
    stored = Judgment.objects.get(pk=judgment.pk)
    assert judgment.created_at is not None
    assert _fields(stored) == _fields(judgment)
    assert (stored.criteria, stored.flags) == ({"accuracy": "b"}, ["unsafe"])


def test_insert_finds_the_new_key_without_returning_too(monkeypatch):
    # SQLite before 3.35 (Django 5.2 supports 3.31) has no INSERT … RETURNING.
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's path: PostgreSQL always returns the key")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    monkeypatch.setattr(sql, "_inserts", {})
    project = ProjectFactory()
    now = timezone.now()
    leases = []
    for comparison in (ComparisonFactory(project=project), ComparisonFactory(project=project)):
        lease = Assignment(project=project, comparison=comparison, rater=UserFactory(), leased_at=now,
                           expires_at=now + timedelta(minutes=5))  # fmt: skip
        sql.insert(lease)
        leases.append(lease)
    assert "RETURNING" not in next(iter(sql._inserts.values()))[0]
    stored = dict(Assignment.objects.values_list("pk", "comparison_id"))
    assert stored == {lease.pk: lease.comparison_id for lease in leases}


# --- prepared statements (PostgreSQL) -------------------------------------------------------


def _prepared(fragment: str) -> list[str]:
    """The names of this connection's prepared statements whose text holds `fragment`."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements ORDER BY name")
        return [name for name, statement in cursor.fetchall() if fragment in statement]


def _new_connection() -> None:
    # A new server session: nothing prepared on it yet.
    from django.db import connection

    connection.close()
    connection.ensure_connection()


@pytest.mark.postgres
def test_a_statement_is_prepared_once_per_connection_and_then_run_by_name(transactional_db):
    _new_connection()
    comparison = ComparisonFactory(responses=[("m1", "first"), ("m2", "second")])
    fragment = "FROM comparisons_response WHERE comparison_id = $1"
    assert _prepared(fragment) == []
    for _ in range(3):
        assert sql.response_texts(comparison.pk) == ["first", "second"]
    assert len(_prepared(fragment)) == 1
    # A new connection prepares it again (the old session's statements went with it).
    _new_connection()
    assert sql.response_texts(comparison.pk) == ["first", "second"]
    assert len(_prepared(fragment)) == 1


@pytest.mark.postgres
def test_a_first_run_that_fails_leaves_the_statement_usable(transactional_db):
    from django.db import IntegrityError, transaction

    comparison = ComparisonFactory()
    rater = UserFactory()
    now = timezone.now()

    def lease():
        return Assignment(project=comparison.project, comparison=comparison, rater=rater,
                          leased_at=now, expires_at=now + timedelta(minutes=5))  # fmt: skip

    sql.insert(lease())
    _new_connection()
    # Its first run on this connection: PREPARE took effect, the EXECUTE broke the
    # once-per-rater constraint, and the transaction rolled back (the prepared one stays).
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert(lease())
    Assignment.objects.all().delete()
    second = lease()
    sql.insert(second)  # under another name: the first one's would collide
    assert Assignment.objects.get().pk == second.pk
    assert len(_prepared('INSERT INTO "comparisons_assignment"')) == 2


@pytest.mark.postgres
def test_a_prepared_lease_read_survives_a_migration_that_adds_a_column(project, alice):
    from django.db import connection

    lease = AssignmentFactory(project=project, rater=alice)
    read = lambda: sql.rater_lease(assignment_id=lease.pk, rater_id=alice.pk, slug=project.slug)  # noqa: E731
    assert read().project == project
    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending checks: ALTER may run
        cursor.execute("ALTER TABLE comparisons_project ADD COLUMN added_later integer")
        cursor.execute("ALTER TABLE comparisons_assignment ADD COLUMN added_later integer")
    # The statement names its columns: its result keeps its shape (with `*` PostgreSQL refused
    # the prepared plan: "cached plan must not change result type").
    assert read().project == project


@pytest.mark.postgres
def test_prepared_statements_can_be_switched_off_for_a_pooler(transactional_db, settings):
    settings.DB_PREPARED_STATEMENTS = False
    _new_connection()
    comparison = ComparisonFactory(responses=[("m1", "first"), ("m2", "second")])
    assert sql.response_texts(comparison.pk) == ["first", "second"]
    assert _prepared("comparisons_response") == []
