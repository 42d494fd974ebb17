"""Databases for the validation tests, in the session's one local PostgreSQL (`local_pg`, tests/conftest.py).

- `source_db`: the seeded IRISX source (2,000 calls ending at `NOW`), built once per session.
  Treat it as read-only; copy it to change anything.
- `make_copy(restore_point=None)`: a fresh copy of the source (`CREATE DATABASE ... TEMPLATE`),
  cut back to `restore_point` when given, as a point-in-time restore would be; dropped after the test.
- `large_copy`: a source of 200,000 calls and its point-in-time copy, built once per session, for
  the checks that must meet a real slow statement. Read-only.
- `target(dbname, **changes)`: the `DbTarget` for a database in the local cluster.

And the helpers every test file uses: `execute` (one statement, autocommit, its rows), `by_name`
(a report's checks by name), `validate` (the whole validation of the sample tables as of
`RESTORE_POINT`, a 5 s statement timeout unless given) and `corrupt_index` (an index amcheck
finds corrupted).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from restore_runbook.validation.checks import validate_restored_database
from restore_runbook.validation.database import DbTarget
from restorectl import sample_data
from restorectl.localpg import LocalPostgres

NOW = datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc)
RESTORE_POINT = NOW - timedelta(hours=1)
SOURCE_CALLS = 2_000
SOURCE_DB = "validation_source"
LARGE_CALLS = 200_000
LARGE_SOURCE = "validation_large_source"


def execute(local_pg: LocalPostgres, dbname: str, statement: str, params: object = None) -> list[tuple] | None:
    conn = local_pg.connect(dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def corrupt_index(local_pg: LocalPostgres, dbname: str, index: str, table: str, key: str) -> None:
    """Make `index` on `table` (`key`: an int4 column or expression) corrupted, as amcheck sees it.

    PostgreSQL's own method (src/bin/pg_amcheck/t/005_opclass_damage.pl): build the index with an
    operator class whose comparison function sorts ascending, then replace that function with one
    sorting descending. Nothing on disk changes, but every page's items are now out of order for the
    opclass, which `bt_index_check` reports as "item order invariant violated" (SQLSTATE XX002)."""
    execute(
        local_pg,
        dbname,
        f"""
        CREATE FUNCTION int4_asc_cmp(a int4, b int4) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT btint4cmp($1, $2) $$;
        CREATE OPERATOR CLASS int4_fickle_ops FOR TYPE int4 USING btree AS
            OPERATOR 1 < (int4, int4), OPERATOR 2 <= (int4, int4), OPERATOR 3 = (int4, int4),
            OPERATOR 4 >= (int4, int4), OPERATOR 5 > (int4, int4), FUNCTION 1 int4_asc_cmp(int4, int4);
        CREATE INDEX {index} ON {table} ({key} int4_fickle_ops);
        CREATE OR REPLACE FUNCTION int4_asc_cmp(a int4, b int4) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT btint4cmp($2, $1) $$;
        """,
    )


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def validate(copy: DbTarget, source: DbTarget | None, **kwargs: Any) -> dict:
    kwargs.setdefault("statement_timeout_ms", 5_000)
    return validate_restored_database(
        copy, source, tables=sample_data.TABLES, recency_column="created_at", restore_point=RESTORE_POINT, **kwargs
    )


@pytest.fixture(scope="session")
def source_db(local_pg: LocalPostgres) -> dict:
    """The seeded source database; returns the seed summary plus its name under "dbname"."""
    local_pg.drop_database(SOURCE_DB)
    local_pg.create_database(SOURCE_DB)
    conn = local_pg.connect(SOURCE_DB)
    try:
        summary = sample_data.seed(conn, SOURCE_CALLS, NOW)
    finally:
        conn.close()
    return {**summary, "dbname": SOURCE_DB}


@pytest.fixture(scope="session")
def large_copy(local_pg: LocalPostgres) -> Iterator[dict]:
    local_pg.drop_database(LARGE_SOURCE)
    local_pg.create_database(LARGE_SOURCE)
    conn = local_pg.connect(LARGE_SOURCE)
    try:
        summary = sample_data.seed(conn, LARGE_CALLS, NOW)
    finally:
        conn.close()
    copy = LARGE_SOURCE + "_copy"
    local_pg.create_database(copy, template=LARGE_SOURCE)
    local_pg.delete_rows_after(copy, sample_data.TABLES, "created_at", RESTORE_POINT)
    yield {"source": LARGE_SOURCE, "copy": copy, "summary": summary}
    local_pg.drop_database(copy)
    local_pg.drop_database(LARGE_SOURCE)


@pytest.fixture(scope="session")
def target(local_pg: LocalPostgres) -> Callable[..., DbTarget]:
    def make(dbname: str, **changes: object) -> DbTarget:
        return replace(
            DbTarget(host=local_pg.host, port=local_pg.port, dbname=dbname, user=local_pg.user, password=local_pg.password),
            **changes,
        )

    return make


_copy_numbers = itertools.count(1)


@pytest.fixture
def make_copy(local_pg: LocalPostgres, source_db: dict) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(restore_point: datetime | None = None) -> str:
        name = f"validation_copy_{next(_copy_numbers)}"
        local_pg.create_database(name, template=source_db["dbname"])
        made.append(name)
        if restore_point is not None:
            local_pg.delete_rows_after(name, sample_data.TABLES, "created_at", restore_point)
        return name

    yield make
    for name in made:
        local_pg.drop_database(name)
