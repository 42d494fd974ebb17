"""Gating checks `recency:<table>`: the copy's newest row against the restore point and the source.

The copy's newest row must not be after the restore point, and (given the source) it must be the
source's newest row at or before the restore point, so no committed data in front of the restore
point is missing. Every read is `max(column)`, a backward scan of the column's index: a few blocks
whatever the table's size, so it holds on a cold copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection

from restore_runbook.validation import report
from restore_runbook.validation.report import FAILED, PASSED, iso, span


@dataclass(frozen=True)
class Recency:
    """What every recency check of one validation shares."""

    column: str
    restore_point: datetime
    timeout_ms: int
    tolerance_s: float = 0.0


@dataclass(frozen=True)
class Source:
    """The source as the recency checks see it: a connection, or why there is none."""

    conn: Any = None
    error: str | None = None


def check_recency(rules: Recency, table: str, copy_conn: connection, source: Source | None) -> dict[str, Any]:
    name = f"recency:{table}"
    started = time.perf_counter()
    try:
        newest = _newest(copy_conn, table, rules.column)
    except psycopg2.Error as exc:
        return report.check(name, FAILED, started, f"reading table {table} failed: {report.error_text(exc, rules.timeout_ms)}", {})
    values: dict[str, Any] = {
        "copy_newest": iso(newest),
        "restore_point": iso(rules.restore_point),
        "data_gap_seconds": report.seconds(rules.restore_point - newest) if newest is not None else None,
    }
    if newest is not None and newest > rules.restore_point:
        status, detail = _after_restore_point(rules, table, copy_conn, newest, values)
    elif source is None:
        status, detail = _without_source(rules, table, newest)
    elif source.error is not None:
        status, detail = FAILED, source.error
    else:
        status, detail = _against_source(rules, table, source.conn, newest, values)
    return report.check(name, status, started, detail, values)


def _newest(conn: connection, table: str, column: str) -> datetime | None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT max({c}) FROM {t}").format(c=sql.Identifier(column), t=sql.Identifier(table)))
        return report.utc(report.row_of(cur)[0])


def _after_restore_point(rules: Recency, table: str, conn: connection, newest: datetime, values: dict[str, Any]) -> tuple[str, str]:
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT count(*) FROM {t} WHERE {c} > %s").format(t=sql.Identifier(table), c=sql.Identifier(rules.column)),
                (rules.restore_point,),
            )
            after = report.row_of(cur)[0]
        values["copy_rows_after_restore_point"] = after
        how_many = f"{after:,} rows were created after it"
    except psycopg2.Error as exc:
        how_many = f"counting the rows after it failed: {report.error_text(exc, rules.timeout_ms)}"
    return FAILED, (
        f"newest {rules.column} {iso(newest)} is after the restore point {iso(rules.restore_point)} "
        f"({span(newest - rules.restore_point)} later); {how_many}, so this is not a copy as of the restore point"
    )


def _without_source(rules: Recency, table: str, newest: datetime | None) -> tuple[str, str]:
    if newest is None:
        return PASSED, f"table {table} is empty; no source to compare with"
    return PASSED, (
        f"newest {rules.column} {iso(newest)} is not after the restore point "
        f"({span(rules.restore_point - newest)} before it); no source to compare with"
    )


def _source_newest(rules: Recency, table: str, conn: connection) -> tuple[datetime | None, datetime | None]:
    with conn.cursor() as cur:
        # both maxima come from the index on the column (a backward scan), not a table scan
        cur.execute(
            sql.SQL("SELECT (SELECT max({c}) FROM {t} WHERE {c} <= %s), (SELECT max({c}) FROM {t})").format(
                t=sql.Identifier(table), c=sql.Identifier(rules.column)
            ),
            (rules.restore_point,),
        )
        expected, newest = report.row_of(cur)
    return report.utc(expected), report.utc(newest)


def _against_source(rules: Recency, table: str, conn: connection, newest: datetime | None, values: dict[str, Any]) -> tuple[str, str]:
    try:
        expected, source_newest = _source_newest(rules, table, conn)
    except psycopg2.Error as exc:
        return FAILED, f"reading table {table} in the source failed: {report.error_text(exc, rules.timeout_ms)}"
    values["source_newest_at_restore_point"] = iso(expected)
    values["source_newest"] = iso(source_newest)
    column = rules.column
    if expected is None:
        if newest is None:
            return PASSED, f"table {table} is empty, and the source had no rows by the restore point either"
        return PASSED, (
            f"newest {column} {iso(newest)} is not after the restore point; the source has no rows at or before it "
            "any more (deleted since, which is what a restore brings back)"
        )
    if newest is None:
        return FAILED, (
            f"table {table} is empty in the restored database, but the source had rows by the restore point (newest {iso(expected)})"
        )
    missing = report.seconds(expected - newest)
    values["missing_seconds"] = max(missing, 0.0)
    if missing > rules.tolerance_s:
        return FAILED, (
            f"newest {column} {iso(newest)} is older than the source's newest row at or before the restore point "
            f"({iso(expected)}), {span(expected - newest)} of data missing"
        )
    if missing < 0:
        return PASSED, (
            f"newest {column} {iso(newest)} is not after the restore point and is newer than the source's newest row "
            f"at or before it ({iso(expected)}): rows were deleted from the source since, which the copy still holds"
        )
    matched = "matches" if missing == 0 else f"is within the {rules.tolerance_s:g} s tolerance of"
    return PASSED, (
        f"newest {column} {iso(newest)} {matched} the source's newest row at or before the restore point "
        f"({span(rules.restore_point - newest)} before the restore point)"
    )
