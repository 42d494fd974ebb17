"""Validate a restored database in levels: the runbook's Validation Steps, made exact.

The runbook has an engineer run `SELECT version()`, a row-count query and `MAX(created_at)` by hand
and judge whether the latest records "match the expected restore point". Here every level is a
named check with measured values and its duration:

- `connect`: the restored database answers; its server version is reported.
- `row_counts`: an exact `COUNT(*)` of every configured table; a missing table fails.
- `recency:<table>`: the copy's newest row is not after the restore point, and (given the source)
  it is the source's newest row at or before the restore point, so no committed data in front of
  the restore point is missing. `data_gap_seconds` says how far before the restore point the
  newest surviving row lies.

A failed check is reported, never a crash: a query error (a timeout, a missing column) fails its
check with the database's own message; a copy that cannot be reached fails `connect` and the later
checks are reported as skipped. When any check fails, `ValidationFailed` is raised with a
plain-English summary of every failure, and the full report on its `report` attribute.

Every connection goes through `database.connect` (looked up at call time, so the rehearsal can
route it), is read-only with a statement timeout, and is closed before returning.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import psycopg2
from psycopg2 import sql

from restore_runbook.common.errors import InvalidInput, ValidationFailed
from restore_runbook.validation import database
from restore_runbook.validation.database import DbTarget

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


def validate_restored_database(
    copy: DbTarget,
    source: DbTarget | None,
    *,
    tables: Sequence[str],
    recency_column: str,
    restore_point: datetime,
    statement_timeout_ms: int,
    tolerance_seconds: float = 0.0,
) -> dict[str, Any]:
    """Check the restored database `copy` as of `restore_point`; return the report or raise.

    `source` (the production database, read-only) makes the recency check exact: the copy's newest
    row must be the source's newest row at or before the restore point. `tolerance_seconds`
    (default 0, exact) allows that many seconds of missing rows in front of the restore point,
    for sources whose `created_at` is set at transaction start well before commit.

    Raises `ValidationFailed` (with `.report`) when any check fails, `InvalidInput` when the
    arguments themselves are unusable.
    """
    if restore_point.tzinfo is None:
        raise InvalidInput(f"restore point {restore_point.isoformat()} has no UTC offset; pass an aware UTC datetime")
    if not tables:
        raise InvalidInput("no tables to validate; name at least one table")
    if statement_timeout_ms <= 0:
        raise InvalidInput("statement_timeout_ms must be a positive number of milliseconds")
    if tolerance_seconds < 0:
        raise InvalidInput("tolerance_seconds must be zero or more")
    restore_point = restore_point.astimezone(timezone.utc)
    began = time.perf_counter()
    checks: list[dict[str, Any]] = []
    copy_conn = source_conn = None
    try:
        # ---- level 1: connect
        started = time.perf_counter()
        try:
            copy_conn = database.connect(copy, statement_timeout_ms=statement_timeout_ms)
            with copy_conn.cursor() as cur:
                cur.execute("SELECT version(), current_setting('server_version')")
                version, server_version = cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - any failure to reach the copy is this check's verdict
            checks.append(
                _check(
                    "connect",
                    FAILED,
                    started,
                    f"could not connect to the restored database {copy.describe()}: {_error_text(exc, statement_timeout_ms)}",
                    {"target": copy.describe()},
                )
            )
            reason = "skipped because the restored database could not be reached"
            checks.append(_skipped("row_counts", reason))
            checks.extend(_skipped(f"recency:{table}", reason) for table in tables)
            return _finish(checks, restore_point, began)
        checks.append(
            _check(
                "connect",
                PASSED,
                started,
                f"connected to {copy.describe()}, PostgreSQL {server_version}",
                {"target": copy.describe(), "server_version": server_version, "version": version},
            )
        )

        # ---- level 2: exact row counts (the same scan also yields each table's newest row)
        started = time.perf_counter()
        measured, problems = _measure_copy(copy_conn, tables, recency_column, statement_timeout_ms)
        counts = {table: m.get("rows") for table, m in measured.items()}
        missing = [table for table, m in measured.items() if m.get("missing")]
        if problems:
            checks.append(_check("row_counts", FAILED, started, "; ".join(problems), {"counts": counts, "missing_tables": missing}))
        else:
            listing = ", ".join(f"{table} {rows:,}" for table, rows in counts.items())
            checks.append(
                _check(
                    "row_counts",
                    PASSED,
                    started,
                    f"counted rows in {len(tables)} tables: {listing}",
                    {"counts": counts, "missing_tables": []},
                )
            )

        # ---- level 3: recency against the restore point (and the source)
        source_error: str | None = None
        if source is not None:
            try:
                source_conn = database.connect(source, statement_timeout_ms=statement_timeout_ms)
            except Exception as exc:  # noqa: BLE001 - reported on every recency check it prevents
                source_error = f"could not connect to the source database {source.describe()}: {_error_text(exc, statement_timeout_ms)}"
        for table in tables:
            name = f"recency:{table}"
            m = measured[table]
            if "rows" not in m:
                checks.append(_skipped(name, f"skipped because table {table} could not be read in the restored database"))
                continue
            checks.append(
                _recency(
                    name,
                    table,
                    m,
                    copy_conn,
                    source,
                    source_conn,
                    source_error,
                    recency_column,
                    restore_point,
                    statement_timeout_ms,
                    tolerance_seconds,
                )
            )
        return _finish(checks, restore_point, began)
    finally:
        for conn in (copy_conn, source_conn):
            if conn is not None:
                with contextlib.suppress(Exception):  # closing must never hide the verdict
                    conn.close()


# --------------------------------------------------------------------------- the copy


def _measure_copy(conn, tables: Sequence[str], column: str, timeout_ms: int) -> tuple[dict[str, dict], list[str]]:
    """Existence of every table in one round trip, then one count-and-newest query per table."""
    measured: dict[str, dict[str, Any]] = {table: {} for table in tables}
    problems: list[str] = []
    with conn.cursor() as cur:
        try:
            cur.execute(
                "SELECT name, to_regclass(quote_ident(name)) IS NOT NULL FROM unnest(%s::text[]) AS name",
                (list(tables),),
            )
            exists = dict(cur.fetchall())
        except psycopg2.Error as exc:
            text = _error_text(exc, timeout_ms)
            return measured, [f"listing the tables failed: {text}"]
        for table in tables:
            if not exists.get(table):
                measured[table]["missing"] = True
                problems.append(f"table {table} does not exist in the restored database")
                continue
            started = time.perf_counter()
            try:
                cur.execute(
                    sql.SQL("SELECT count(*), max({col}) FROM {table}").format(col=sql.Identifier(column), table=sql.Identifier(table))
                )
                rows, newest = cur.fetchone()
            except psycopg2.Error as exc:
                problems.append(f"reading table {table} failed: {_error_text(exc, timeout_ms)}")
                continue
            measured[table].update(rows=rows, newest=_utc(newest), query_ms=_ms(started))
    return measured, problems


# --------------------------------------------------------------------------- recency


def _recency(
    name: str,
    table: str,
    m: dict[str, Any],
    copy_conn,
    source: DbTarget | None,
    source_conn,
    source_error: str | None,
    column: str,
    restore_point: datetime,
    timeout_ms: int,
    tolerance_s: float,
) -> dict[str, Any]:
    started = time.perf_counter()
    newest: datetime | None = m["newest"]
    values: dict[str, Any] = {
        "copy_rows": m["rows"],
        "copy_newest": _iso(newest),
        "restore_point": _iso(restore_point),
        "data_gap_seconds": _seconds(restore_point - newest) if newest is not None else None,
    }

    if newest is not None and newest > restore_point:
        try:
            with copy_conn.cursor() as cur:
                cur.execute(
                    sql.SQL("SELECT count(*) FROM {t} WHERE {c} > %s").format(t=sql.Identifier(table), c=sql.Identifier(column)),
                    (restore_point,),
                )
                after = cur.fetchone()[0]
            values["copy_rows_after_restore_point"] = after
            how_many = f"{after:,} rows were created after it"
        except psycopg2.Error as exc:
            how_many = f"counting the rows after it failed: {_error_text(exc, timeout_ms)}"
        return _check(
            name,
            FAILED,
            started,
            (
                f"newest {column} {_iso(newest)} is after the restore point {_iso(restore_point)} "
                f"({_span(newest - restore_point)} later); {how_many}, so this is not a copy as of the restore point"
            ),
            values,
        )

    if source is None:
        if newest is None:
            return _check(name, PASSED, started, f"table {table} is empty; no source to compare with", values)
        return _check(
            name,
            PASSED,
            started,
            (
                f"newest {column} {_iso(newest)} is not after the restore point "
                f"({_span(restore_point - newest)} before it); no source to compare with"
            ),
            values,
        )

    if source_error is not None:
        return _check(name, FAILED, started, source_error, values)
    try:
        with source_conn.cursor() as cur:
            # both maxima come from the index on the column (a backward scan), not a table scan
            cur.execute(
                sql.SQL("SELECT (SELECT max({c}) FROM {t} WHERE {c} <= %s), (SELECT max({c}) FROM {t})").format(
                    t=sql.Identifier(table), c=sql.Identifier(column)
                ),
                (restore_point,),
            )
            expected, source_newest = (_utc(v) for v in cur.fetchone())
    except psycopg2.Error as exc:
        return _check(name, FAILED, started, f"reading table {table} in the source failed: {_error_text(exc, timeout_ms)}", values)
    values["source_newest_at_restore_point"] = _iso(expected)
    values["source_newest"] = _iso(source_newest)

    if expected is None:
        if newest is None:
            return _check(name, PASSED, started, f"table {table} is empty, and the source had no rows by the restore point either", values)
        return _check(
            name,
            PASSED,
            started,
            (
                f"newest {column} {_iso(newest)} is not after the restore point; the source has no rows at or before it "
                "any more (deleted since, which is what a restore brings back)"
            ),
            values,
        )
    if newest is None:
        return _check(
            name,
            FAILED,
            started,
            (f"table {table} is empty in the restored database, but the source had rows by the restore point (newest {_iso(expected)})"),
            values,
        )
    missing = _seconds(expected - newest)
    values["missing_seconds"] = max(missing, 0.0)
    if missing > tolerance_s:
        return _check(
            name,
            FAILED,
            started,
            (
                f"newest {column} {_iso(newest)} is older than the source's newest row at or before the restore point "
                f"({_iso(expected)}), {_span(expected - newest)} of data missing"
            ),
            values,
        )
    if missing < 0:
        return _check(
            name,
            PASSED,
            started,
            (
                f"newest {column} {_iso(newest)} is not after the restore point and is newer than the source's newest row "
                f"at or before it ({_iso(expected)}): rows were deleted from the source since, which the copy still holds"
            ),
            values,
        )
    matched = "matches" if missing == 0 else f"is within the {tolerance_s:g} s tolerance of"
    return _check(
        name,
        PASSED,
        started,
        (
            f"newest {column} {_iso(newest)} {matched} the source's newest row at or before the restore point "
            f"({_span(restore_point - newest)} before the restore point)"
        ),
        values,
    )


# --------------------------------------------------------------------------- the report


def _check(name: str, status: str, started: float, detail: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "status": status, "passed": status == PASSED, "detail": detail, "values": values, "duration_ms": _ms(started)}


def _skipped(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "status": SKIPPED, "passed": False, "detail": reason, "values": {}, "duration_ms": 0.0}


def _finish(checks: list[dict[str, Any]], restore_point: datetime, began: float) -> dict[str, Any]:
    failed = [c for c in checks if c["status"] == FAILED]
    skipped = [c for c in checks if c["status"] == SKIPPED]
    passed = not failed and not skipped
    if passed:
        summary = f"all {len(checks)} checks passed"
    else:
        summary = f"{len(failed)} of {len(checks)} checks failed"
        if skipped:
            summary += f" ({len(skipped)} skipped)"
        summary += ": " + "; ".join(f"{_label(c['name'])}: {c['detail']}" for c in failed)
    report = {
        "passed": passed,
        "summary": summary,
        "checks": checks,
        "restore_point": _iso(restore_point),
        "duration_ms": _ms(began),
    }
    if not passed:
        raise ValidationFailed(summary, report=report)
    return report


def _label(name: str) -> str:
    kind, _, table = name.partition(":")
    return f"{kind}({table})" if table else kind


def _error_text(exc: BaseException, timeout_ms: int) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        text += f" (the statement timeout is {timeout_ms} ms)"
    return text


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a timestamp without time zone column: read as UTC
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _seconds(delta) -> float:
    return round(delta.total_seconds(), 6)


def _span(delta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 1:
        return f"{seconds * 1000:.0f} milliseconds"
    for unit, size, limit in (("second", 1, 120), ("minute", 60, 7200), ("hour", 3600, 172800), ("day", 86400, None)):
        if limit is None or seconds < limit:
            amount = round(seconds / size)
            return f"{amount} {unit}{'' if amount == 1 else 's'}"
    raise AssertionError("unreachable")
