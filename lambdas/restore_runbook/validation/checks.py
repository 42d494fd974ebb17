"""Validate a restored database: gate on what proves the copy, report the rest.

The runbook has an engineer run `SELECT version()`, a row-count query and `MAX(created_at)` by hand
and judge whether the latest records "match the expected restore point". Here every level is a
named check with measured values and its duration. The checks that decide pass or fail are cheap
and exact on a cold copy of any size, because a copy restored from a snapshot loads each block
from S3 the first time it is read and a full scan under a statement timeout would fail good
restores:

- `connect`: the restored database answers; its server version is reported.
- `schema`: every configured table exists with the recency column (validation/schema.py).
- `recency:<table>`: the copy's newest row against the restore point and the source, from the
  column's index (validation/recency.py).
- `index_integrity`: amcheck's `bt_index_check` on the critical tables' btree indexes, within one
  budget for them all (validation/integrity.py); "not available" and indexes the budget did not
  cover are reported, not failed, unless required.
- `row_counts`: a report, not a gate: an exact count per table in its own time box, compared with
  the source's count at the restore point where that comparison is valid (validation/counts.py);
  it gates only when `counts_required` is set.

A failed check is reported, never a crash: a query error fails its check with the database's own
message; a copy that cannot be reached fails `connect` and the later checks are reported as
skipped. When any gating check fails, `ValidationFailed` is raised with a plain-English summary of
every failure, and the full report on its `report` attribute.

Every connection goes through `database.connect` (looked up at call time, so the rehearsal can
route it), is read-only with a statement timeout, and is closed before returning.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from restore_runbook.common.errors import InvalidInput, ValidationFailed
from restore_runbook.settings import INTEGRITY_BUDGET_DEFAULT_SECONDS
from restore_runbook.validation import counts, database, integrity, report
from restore_runbook.validation.database import DbTarget
from restore_runbook.validation.recency import Recency, Source, check_recency
from restore_runbook.validation.report import FAILED, PASSED, REPORTED, SKIPPED, check, error_text, iso, label, ms, skipped
from restore_runbook.validation.schema import check_schema


def validate_restored_database(
    copy: DbTarget,
    source: DbTarget | None,
    *,
    tables: Sequence[str],
    recency_column: str,
    restore_point: datetime,
    statement_timeout_ms: int,
    tolerance_seconds: float = 0.0,
    count_budget_ms: int | None = None,
    counts_required: bool = False,
    integrity_check_tables: Sequence[str] | None = None,
    integrity_check_indexes: Sequence[str] = (),
    integrity_required: bool = False,
    integrity_budget_ms: int = INTEGRITY_BUDGET_DEFAULT_SECONDS * 1000,
) -> dict[str, Any]:
    """Check the restored database `copy` as of `restore_point`; return the report or raise.

    `source` (the production database, read-only) makes the recency check exact: the copy's newest
    row must be the source's newest row at or before the restore point. `tolerance_seconds`
    (default 0, exact) allows that many seconds of missing rows in front of the restore point,
    for sources whose `created_at` is set at transaction start well before commit.

    `count_budget_ms` boxes each count (default: the statement timeout); `integrity_check_tables`
    names the tables whose indexes are verified (default: all of `tables`; empty: none),
    `integrity_check_indexes` names indexes verified too (first), and `integrity_budget_ms` bounds
    that whole check (default: the setting's default).

    Raises `ValidationFailed` (with `.report`) when any gating check fails, `InvalidInput` when
    the arguments themselves are unusable.
    """
    restore_point = _check_arguments(tables, restore_point, statement_timeout_ms, tolerance_seconds, count_budget_ms, integrity_budget_ms)
    integrity_tables = list(tables if integrity_check_tables is None else integrity_check_tables)
    began = time.perf_counter()
    checks: list[dict[str, Any]] = []
    copy_conn = source_conn = integrity_conn = None
    try:
        copy_conn, connected = _connect_copy(copy, statement_timeout_ms)
        checks.append(connected)
        if copy_conn is None:
            reason = "skipped because the restored database could not be reached"
            checks.append(skipped("schema", reason))
            checks.extend(skipped(f"recency:{table}", reason) for table in tables)
            checks.append(skipped(integrity.NAME, reason))
            checks.append(skipped(counts.NAME, reason, gating=counts_required))
            return _finish(checks, restore_point, began)

        schema = check_schema(copy_conn, tables, recency_column, statement_timeout_ms)
        checks.append(schema.check)

        source_view: Source | None = None
        if source is not None:
            try:
                source_conn = database.connect(source, statement_timeout_ms=statement_timeout_ms)
                source_view = Source(conn=source_conn)
            except Exception as exc:  # noqa: BLE001 - reported on every recency check it prevents
                text = error_text(exc, statement_timeout_ms)
                source_view = Source(error=f"could not connect to the source database {source.describe()}: {text}")

        rules = Recency(recency_column, restore_point, statement_timeout_ms, tolerance_seconds)
        for table in tables:
            if not schema.readable(table):
                checks.append(skipped(f"recency:{table}", schema.why_unreadable(table)))
            else:
                checks.append(check_recency(rules, table, copy_conn, source_view))

        integrity_present = [t for t in integrity_tables if schema.present(t)]
        integrity_indexes = list(integrity_check_indexes)

        def count() -> dict[str, Any]:
            return counts.count_rows(
                copy_conn,
                source_conn,
                [t for t in tables if schema.readable(t)],
                column=recency_column,
                restore_point=restore_point,
                budget_ms=count_budget_ms or statement_timeout_ms,
                required=counts_required,
                source_note=None if source_view is None else source_view.error,
            )

        def verify(conn: Any, spent_ms: float = 0.0) -> dict[str, Any]:
            return integrity.check_integrity(
                conn,
                integrity_present,
                indexes=integrity_indexes,
                timeout_ms=statement_timeout_ms,
                required=integrity_required,
                budget_ms=integrity_budget_ms,
                spent_ms=spent_ms,
            )

        # The index check and the count report each read whole relations and neither needs the
        # other's answer, so the index check runs in a second session on the copy while this one
        # counts: validation costs the longer of the two, not their sum (psycopg2 releases the GIL
        # while a query runs). The report keeps its order.
        to_verify = bool(integrity_present or integrity_indexes)
        integrity_conn, session = _open_integrity_session(copy, to_verify, statement_timeout_ms)
        if integrity_conn is not None or not to_verify:
            with ThreadPoolExecutor(max_workers=1) as pool:
                verified = pool.submit(verify, integrity_conn or copy_conn)
                counted = count()
                checked = verified.result()
        else:
            # One session runs one transaction at a time, and each count and each index check is a
            # time-boxed transaction of its own: interleaved, one would commit or abort the other's.
            # So the index check follows the counts, and its budget runs from when they began: the
            # step then takes no longer than with two sessions.
            phase = time.perf_counter()
            counted = count()
            checked = verify(copy_conn, spent_ms=ms(phase))
        if session is not None:
            checked["values"]["session"] = session
        checks.append(checked)
        checks.append(counted)
        return _finish(checks, restore_point, began)
    finally:
        for conn in (copy_conn, source_conn, integrity_conn):
            if conn is not None:
                with contextlib.suppress(Exception):  # closing must never hide the verdict
                    conn.close()


def _open_integrity_session(copy: DbTarget, to_verify: bool, timeout_ms: int) -> tuple[Any, str | None]:
    """A second session on the copy for the index check, and what the report says of it. When one
    cannot be opened (say the copy is at max_connections) the check shares the first session."""
    if not to_verify:
        return None, None
    try:
        return database.connect(copy, statement_timeout_ms=timeout_ms), "own"
    except Exception as exc:  # noqa: BLE001 - the shared session is the fallback
        return None, f"shared (a second session could not be opened: {error_text(exc, timeout_ms)}); checked after the counts"


def _check_arguments(
    tables: Sequence[str],
    restore_point: datetime,
    timeout_ms: int,
    tolerance_s: float,
    count_budget_ms: int | None,
    integrity_budget_ms: int,
) -> datetime:
    if restore_point.tzinfo is None:
        raise InvalidInput(f"restore point {restore_point.isoformat()} has no UTC offset; pass an aware UTC datetime")
    if not tables:
        raise InvalidInput("no tables to validate; name at least one table")
    if timeout_ms <= 0:
        raise InvalidInput("statement_timeout_ms must be a positive number of milliseconds")
    if tolerance_s < 0:
        raise InvalidInput("tolerance_seconds must be zero or more")
    if count_budget_ms is not None and count_budget_ms <= 0:
        raise InvalidInput("count_budget_ms must be a positive number of milliseconds")
    if integrity_budget_ms <= 0:
        raise InvalidInput("integrity_budget_ms must be a positive number of milliseconds")
    return restore_point.astimezone(timezone.utc)


def _connect_copy(copy: DbTarget, timeout_ms: int) -> tuple[Any, dict[str, Any]]:
    started = time.perf_counter()
    conn = None
    try:
        conn = database.connect(copy, statement_timeout_ms=timeout_ms)
        with conn.cursor() as cur:
            cur.execute("SELECT version(), current_setting('server_version')")
            version, server_version = report.row_of(cur)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the copy is this check's verdict
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        detail = f"could not connect to the restored database {copy.describe()}: {error_text(exc, timeout_ms)}"
        return None, check("connect", FAILED, started, detail, {"target": copy.describe()})
    detail = f"connected to {copy.describe()}, PostgreSQL {server_version}"
    values = {"target": copy.describe(), "server_version": server_version, "version": version}
    return conn, check("connect", PASSED, started, detail, values)


def _finish(checks: list[dict[str, Any]], restore_point: datetime, began: float) -> dict[str, Any]:
    """The report; raises ValidationFailed (report attached) when a check failed or was skipped."""
    failed = [c for c in checks if c["status"] == FAILED]
    skips = [c for c in checks if c["status"] == SKIPPED]
    notes = [c for c in checks if c["status"] == REPORTED]
    passed = not failed and not skips
    if passed:
        gating = [c for c in checks if c["gating"] and c["status"] == PASSED]
        summary = f"all {len(gating)} gating checks passed"
        if notes:
            summary += "; reported: " + "; ".join(f"{label(c['name'])}: {c['detail']}" for c in notes)
    else:
        summary = f"{len(failed)} of {len(checks)} checks failed"
        if skips:
            summary += f" ({len(skips)} skipped)"
        summary += ": " + "; ".join(f"{label(c['name'])}: {c['detail']}" for c in failed)
    report = {
        "passed": passed,
        "summary": summary,
        "checks": checks,
        "restore_point": iso(restore_point),
        "duration_ms": ms(began),
    }
    if not passed:
        raise ValidationFailed(summary, report=report)
    return report
