"""Gating check `schema`: every configured table exists in the copy, with the columns validation needs.

Read from the catalogs in one round trip, so it costs the same on a cold copy of any size. It also
says whether each table's recency column leads a btree index: without one, `max(column)` is a full
scan, which on a cold copy reads every block from S3.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2.extensions import connection

from restore_runbook.validation import report

CATALOG_SQL = """
SELECT t.name,
       c.oid IS NOT NULL,
       ARRAY(SELECT col FROM unnest(%(columns)s::text[]) AS col
              WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                 WHERE a.attrelid = c.oid AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped)),
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = c.oid AND a.attname = %(recency)s)
  FROM unnest(%(tables)s::text[]) WITH ORDINALITY AS t(name, position)
  LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(t.name))
 ORDER BY t.position
"""


@dataclass(frozen=True)
class Schema:
    """What the schema check found: which tables the later checks can read."""

    check: dict[str, Any]
    missing_tables: tuple[str, ...]
    missing_columns: dict[str, tuple[str, ...]]

    def readable(self, table: str) -> bool:
        return table not in self.missing_tables and table not in self.missing_columns

    def present(self, table: str) -> bool:
        return table not in self.missing_tables

    def why_unreadable(self, table: str) -> str:
        if table in self.missing_tables:
            return f"skipped because table {table} does not exist in the restored database"
        return f"skipped because table {table} has no column {', '.join(self.missing_columns[table])}"


def check_schema(conn: connection, tables: Sequence[str], recency_column: str, timeout_ms: int, columns: Sequence[str] = ()) -> Schema:
    started = time.perf_counter()
    expected = list(dict.fromkeys([recency_column, *columns]))
    try:
        with conn.cursor() as cur:
            cur.execute(CATALOG_SQL, {"tables": list(tables), "columns": expected, "recency": recency_column})
            rows = cur.fetchall()
    except psycopg2.Error as exc:
        failed = report.check("schema", report.FAILED, started, f"reading the catalog failed: {report.error_text(exc, timeout_ms)}", {})
        return Schema(failed, tuple(tables), {})
    missing_tables = tuple(name for name, exists, _, _ in rows if not exists)
    missing_columns = {name: tuple(cols) for name, exists, cols, _ in rows if exists and cols}
    unindexed = [name for name, exists, cols, indexed in rows if exists and not cols and not indexed]
    values = {
        "missing_tables": list(missing_tables),
        "missing_columns": {name: list(cols) for name, cols in missing_columns.items()},
        "expected_columns": expected,
        "recency_unindexed": unindexed,
    }
    problems = [f"table {name} does not exist in the restored database" for name in missing_tables]
    problems += [f"table {name} has no column {', '.join(cols)}" for name, cols in missing_columns.items()]
    if problems:
        return Schema(report.check("schema", report.FAILED, started, "; ".join(problems), values), missing_tables, missing_columns)
    detail = f"{len(rows)} tables exist with column {', '.join(expected)}"
    if unindexed:
        # not a failure: the copy is what the source was; but the recency read will be a full scan
        detail += f"; no index leads with {recency_column} on {', '.join(unindexed)}, so their recency read scans the table"
    return Schema(report.check("schema", report.PASSED, started, detail, values), (), {})
