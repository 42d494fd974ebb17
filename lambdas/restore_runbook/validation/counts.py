"""Reporting check `row_counts`: an exact `count(*)` of every table, each in its own time box.

The runbook's counts are what an engineer looks at, so they are measured; but an exact count reads
every block of the table, and a copy restored from a snapshot loads each block from S3 the first
time it is read, so on a large cold copy a count can take far longer than any statement timeout.
A count that runs out of its budget is reported as "not measured", never a failed restore, unless
`counts_required` is set.

Each copy count is compared with the source's count of rows whose column is at or before the restore point. Equal
counts say the copy holds every row the source has from before the restore point. The comparison
is only valid while no such row has been deleted from the source since (or had its column
changed): a copy with more rows is what a restore after a deletion looks like, so that is said, not
failed. A copy with fewer rows is reported (it fails only when counts are required): rows stamped
before the restore point but committed after it, or rows the copy lacks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection, cursor

from restore_runbook.validation import report
from restore_runbook.validation.report import FAILED, PASSED, REPORTED

NAME = "row_counts"


def count_rows(
    copy_conn: connection,
    source_conn: connection | None,
    tables: Sequence[str],
    *,
    column: str,
    restore_point: datetime,
    budget_ms: int,
    required: bool,
    source_note: str | None = None,
) -> dict[str, Any]:
    """`tables` are the ones that exist in the copy; `source_conn` may be None (`source_note` says why)."""
    started = time.perf_counter()
    budget = f"{budget_ms / 1000:g} s budget"
    # The source is another server: its counts run alongside the copy's, so the report costs the
    # longer of the two, not their sum (psycopg2 releases the GIL while a query runs).
    with ThreadPoolExecutor(max_workers=1) as pool:
        at_point = pool.submit(_source_counts, source_conn, tables, column, restore_point, budget_ms) if source_conn is not None else None
        with copy_conn.cursor() as cur:
            per_table = {t: _count(cur, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)), (), budget_ms) for t in tables}
        source_counts = at_point.result() if at_point is not None else {}
    for table, source_entry in source_counts.items():
        entry = per_table[table]
        if entry["rows"] is not None:
            entry["source_rows_at_restore_point"] = source_entry["rows"]
            entry["source_ms"] = source_entry["ms"]
            entry["against_source"], entry["comparison"] = _compare(entry["rows"], source_entry, budget)
    values = {
        "counts": {table: entry["rows"] for table, entry in per_table.items()},
        "source_counts_at_restore_point": {t: e.get("source_rows_at_restore_point") for t, e in per_table.items()},
        "not_measured": [table for table, entry in per_table.items() if entry["rows"] is None],
        "fewer_than_source": [table for table, entry in per_table.items() if entry.get("against_source") == "fewer"],
        "budget_ms": budget_ms,
        "required": required,
        "tables": per_table,
    }
    parts = []
    for table, entry in per_table.items():
        text = f"{table} {entry['rows']:,}" if entry["rows"] is not None else f"{table} not measured ({budget}: {entry['error']})"
        if entry.get("comparison"):
            text += f" ({entry['comparison']})"
        parts.append(text)
    detail = "; ".join(parts) or "no table to count"
    if source_conn is None and source_note:
        detail += f"; not compared with the source: {source_note}"
    incomplete = values["not_measured"] or values["fewer_than_source"]
    if not incomplete:
        return report.check(NAME, PASSED, started, detail, values, gating=required)
    if required:
        return report.check(NAME, FAILED, started, f"row counts are required: {detail}", values, gating=True)
    return report.check(NAME, REPORTED, started, detail, values, gating=False)


def _source_counts(
    conn: connection, tables: Sequence[str], column: str, restore_point: datetime, budget_ms: int
) -> dict[str, dict[str, Any]]:
    # The rows at or before the restore point, counted as all rows less those after it: a plain
    # count(*) is the cheapest full read (no per-row filter; an index-only scan of the smallest index
    # once vacuumed), and the rows after the point are a short range of the recency column's index.
    # One statement, so both counts see one snapshot of a source that keeps taking writes. A NULL
    # in the column is not "at or before" the point, as in `column <= point`.
    query = sql.SQL("SELECT (SELECT count(*) FROM {table}) - (SELECT count(*) FROM {table} WHERE {column} > %s OR {column} IS NULL)")
    with conn.cursor() as cur:
        return {
            t: _count(cur, query.format(table=sql.Identifier(t), column=sql.Identifier(column)), (restore_point,), budget_ms)
            for t in tables
        }


def _count(cur: cursor, statement: sql.Composable, params: Sequence[Any], budget_ms: int) -> dict[str, Any]:
    began = time.perf_counter()
    try:
        rows = (report.time_boxed(cur, statement, params, budget_ms) or (None,))[0]
    except psycopg2.errors.QueryCanceled:
        return {"rows": None, "ms": report.ms(began), "error": "ran out of time"}
    except psycopg2.Error as exc:
        return {"rows": None, "ms": report.ms(began), "error": report.error_text(exc, budget_ms)}
    return {"rows": rows, "ms": report.ms(began)}


def _compare(rows: int, source: dict[str, Any], budget: str) -> tuple[str, str]:
    expected = source["rows"]
    if expected is None:
        return "not measured", f"source count at the restore point not measured ({budget}: {source['error']})"
    if rows == expected:
        return "matches", "matches the source at the restore point"
    if rows > expected:
        return "more", (
            f"{rows - expected:,} more than the source's {expected:,} at the restore point: rows deleted from the source since "
            "(or their timestamp changed), so the counts cannot be compared"
        )
    return "fewer", (
        f"fewer than the source's {expected:,} at the restore point by {expected - rows:,}: rows stamped before the restore "
        "point but committed after it, or rows missing from the copy"
    )
