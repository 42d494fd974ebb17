"""The validation report: check records, the verdict, and the wording shared by every check.

A check is gating (its failure fails the restore) or reporting (it informs and never fails the
restore unless a setting makes it required). Statuses:

- `passed`, `failed`: the check ran and judged;
- `skipped`: an earlier failure made it impossible to run (only after a failure, so never alone);
- `reported`: a reporting check that could not finish or found something worth saying that is
  not a failure (a count not measured within its time box, amcheck not installed, a count that
  differs from the source's for a reason that is not the copy's fault).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor

PASSED, FAILED, SKIPPED, REPORTED = "passed", "failed", "skipped", "reported"


def check(name: str, status: str, started: float, detail: str, values: dict[str, Any], *, gating: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "passed": status == PASSED,
        "gating": gating,
        "detail": detail,
        "values": values,
        "duration_ms": ms(started),
    }


def skipped(name: str, reason: str, *, gating: bool = True) -> dict[str, Any]:
    return {"name": name, "status": SKIPPED, "passed": False, "gating": gating, "detail": reason, "values": {}, "duration_ms": 0.0}


def label(name: str) -> str:
    kind, _, table = name.partition(":")
    return f"{kind}({table})" if table else kind


def error_text(exc: BaseException, timeout_ms: int) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        text += f" (the statement timeout is {timeout_ms} ms)"
    return text


def ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a timestamp without time zone column: read as UTC
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    spec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def seconds(delta: timedelta) -> float:
    return round(delta.total_seconds(), 6)


def span(delta: timedelta) -> str:
    total = abs(delta.total_seconds())
    if total < 1:
        return f"{total * 1000:.0f} milliseconds"
    for unit, size, limit in (("second", 1, 120), ("minute", 60, 7200), ("hour", 3600, 172800), ("day", 86400, None)):
        if limit is None or total < limit:
            amount = round(total / size)
            return f"{amount} {unit}{'' if amount == 1 else 's'}"
    raise AssertionError("unreachable")


def row_of(cur: cursor) -> tuple[Any, ...]:
    """The row an aggregate query always returns (count, max, version): its absence is a broken server, not data."""
    row = cur.fetchone()
    if row is None:
        raise psycopg2.ProgrammingError("the query returned no row where one is always expected")
    return tuple(row)


def time_boxed(cur: cursor, statement: str | sql.Composable, params: Sequence[Any], budget_ms: int) -> tuple[Any, ...] | None:
    """Run one read under its own statement timeout (its transaction's), return the first row.

    The session is autocommit; an explicit read-only transaction scopes `SET LOCAL`, so the box
    never leaks into the next statement, and a cancelled statement is rolled back at once.
    """
    cur.execute("BEGIN READ ONLY")
    try:
        cur.execute("SELECT set_config('statement_timeout', %s, true)", (f"{max(int(budget_ms), 1)}ms",))
        cur.execute(statement, params)
        row = cur.fetchone()
    except BaseException:
        with contextlib.suppress(psycopg2.Error):  # a lost connection must not hide the statement's own error
            cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
    return row
