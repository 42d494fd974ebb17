"""Gating check `index_integrity`: amcheck's `bt_index_check` on the critical indexes.

The critical indexes are every btree index of the tables `integrity_check_tables` lists (default:
every validation table) and the indexes `integrity_check_indexes` names, checked first: say only
the primary keys of a table too large to check whole within the budget. A named index the copy
does not have, or one that is not a btree (bt_index_check checks btree indexes only), could not be
checked: reported, failing only with `integrity_required`.

`bt_index_check` verifies each index page's order and its links to its neighbours under an
AccessShareLock, reading the index only (never the heap), so a read-only session can run it while
the copy serves. A corrupted index fails the restore whatever the settings say.

amcheck must already be installed in the copy: `CREATE EXTENSION` needs a privileged role and the
validate session is read-only. A copy inherits the extensions of the database it was restored from,
so it is created once in the source (`CREATE EXTENSION amcheck`, by rds_superuser on RDS; the local
rehearsal seeds it). The validate role needs EXECUTE on `bt_index_check` (revoked from PUBLIC by
default). Where amcheck is missing or not executable, or an index cannot be checked within the
statement timeout, the check is reported as not available rather than failed, unless
`integrity_required` makes it fail.

On a large cold copy every index is read from S3 block by block, so one index can take most of a
statement timeout and a dozen of them more than the validate step's function has. The whole check
therefore has a budget (`integrity_budget_seconds`): no index is started once it is spent, and each
runs under the statement timeout or what is left of the budget, whichever is less. The indexes it
did not reach, or cut off, are "not checked": reported, failing only with `integrity_required`. The
smallest indexes of each table go first, so the budget verifies as many as it can.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection

from restore_runbook.settings import INTEGRITY_BUDGET_DEFAULT_SECONDS
from restore_runbook.validation import report
from restore_runbook.validation.report import FAILED, PASSED, REPORTED

NAME = "index_integrity"

INDEXES_SQL = """
SELECT t.name, i.indexrelid, i.indexrelid::regclass::text, pg_relation_size(i.indexrelid)
  FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, position)
  JOIN pg_index i ON i.indrelid = to_regclass(quote_ident(t.name))
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
 WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready
 ORDER BY t.position, pg_relation_size(i.indexrelid), i.indexrelid
"""


# The named indexes as the copy has them, in the order given; a name the copy lacks has no oid.
NAMED_INDEXES_SQL = """
SELECT n.name, ic.oid, ic.relkind::text, i.indrelid::regclass::text, am.amname, pg_relation_size(ic.oid),
       i.indisvalid AND i.indisready
  FROM unnest(%s::text[]) WITH ORDINALITY AS n(name, position)
  LEFT JOIN pg_class ic ON ic.oid = to_regclass(quote_ident(n.name))
  LEFT JOIN pg_index i ON i.indexrelid = ic.oid
  LEFT JOIN pg_am am ON am.oid = ic.relam
 ORDER BY n.position
"""


def check_integrity(
    conn: connection,
    tables: Sequence[str],
    *,
    timeout_ms: int,
    required: bool,
    budget_ms: int = INTEGRITY_BUDGET_DEFAULT_SECONDS * 1000,
    spent_ms: float = 0.0,
    indexes: Sequence[str] = (),
) -> dict[str, Any]:
    """`budget_ms` bounds the whole check; `spent_ms` of it is already gone when the check had to wait its turn."""
    started = time.perf_counter()
    deadline = started + (budget_ms - spent_ms) / 1000
    spent = f"{budget_ms / 1000:g} s budget spent"
    values: dict[str, Any] = {
        "tables": list(tables),
        "named_indexes": list(indexes),
        "required": required,
        "budget_ms": budget_ms,
        "indexes": {},
        "budget_spent": [],
    }
    if not tables and not indexes:
        return report.check(NAME, PASSED, started, "no tables or indexes configured for an index check", values)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'amcheck'")
            found = cur.fetchone()
            if found is None:
                return _unavailable(
                    started,
                    values,
                    required,
                    "the amcheck extension is not installed in the restored database (create it once in the source with "
                    "CREATE EXTENSION amcheck, so every copy inherits it)",
                )
            schema = found[0]
            cur.execute(NAMED_INDEXES_SQL, (list(indexes),))
            named = cur.fetchall()
            cur.execute(INDEXES_SQL, (list(tables),))
            of_tables = cur.fetchall()
    except psycopg2.Error as exc:
        return report.check(NAME, FAILED, started, f"listing the indexes failed: {report.error_text(exc, timeout_ms)}", values)

    corrupted: list[str] = []
    unchecked: list[str] = []
    out_of_budget: list[str] = []
    to_check: list[tuple[str, int, str, int]] = []
    for name, oid, kind, table, method, size, usable in named:
        why = _why_not_checkable(oid, kind, method, usable)
        if why is None:
            to_check.append((table, oid, name, size))
        else:
            values["indexes"][name] = {"table": table, "status": "not checked", "why": why}
            unchecked.append(f"index {name} named in integrity_check_indexes could not be checked: {why}")
    listed = {oid for _, oid, *_ in to_check}
    to_check += [row for row in of_tables if row[1] not in listed]
    statement = sql.SQL("SELECT {}.bt_index_check(%s::oid::regclass)").format(sql.Identifier(schema))

    def out_of_time(entry: dict[str, Any], index: str, where: str) -> None:
        entry.update(status="not checked", why=spent)
        values["budget_spent"].append(index)
        out_of_budget.append(where)

    with conn.cursor() as cur:
        for table, oid, index, size in to_check:
            entry: dict[str, Any] = {"table": table, "bytes": size}
            values["indexes"][index] = entry
            left_ms = (deadline - time.perf_counter()) * 1000
            if left_ms < 1:
                out_of_time(entry, index, f"{index} on {table}")
                continue
            box_ms = int(min(timeout_ms, left_ms))
            began = time.perf_counter()
            try:
                report.time_boxed(cur, statement, (oid,), box_ms)
                entry["status"] = "ok"
            except psycopg2.errors.InsufficientPrivilege as exc:
                entry["status"] = "not available"
                return _unavailable(
                    started, values, required, f"the validate role may not run bt_index_check ({report.error_text(exc, timeout_ms)})"
                )
            except psycopg2.errors.IndexCorrupted as exc:
                entry["status"] = "corrupted"
                corrupted.append(f"index {index} on {table} is corrupted: {report.error_text(exc, timeout_ms)}")
            except psycopg2.errors.QueryCanceled as exc:
                if box_ms < timeout_ms:  # the budget, not the statement timeout, stopped it
                    out_of_time(entry, index, f"{index} on {table} (cut off after {report.ms(began):,.0f} ms)")
                else:
                    entry["status"] = "not checked"
                    unchecked.append(f"index {index} on {table} could not be checked: {report.error_text(exc, timeout_ms)}")
            except psycopg2.Error as exc:
                entry["status"] = "not checked"
                unchecked.append(f"index {index} on {table} could not be checked: {report.error_text(exc, timeout_ms)}")
            entry["ms"] = report.ms(began)

    checked = sum(1 for e in values["indexes"].values() if e["status"] == "ok")
    problems = corrupted + unchecked + ([f"not checked ({spent}): {', '.join(out_of_budget)}"] if out_of_budget else [])
    if corrupted:
        return report.check(NAME, FAILED, started, "; ".join(problems), values)
    if problems:
        verified = f"{checked} of {len(values['indexes'])} indexes verified; " + "; ".join(problems)
        if required:
            return report.check(NAME, FAILED, started, f"index integrity is required, but only {verified}", values)
        return report.check(NAME, REPORTED, started, verified, values)
    megabytes = sum(size for *_, size in to_check) / 1e6
    scope = " and ".join(
        part for part in (f"named {', '.join(indexes)}" if indexes else "", f"of {', '.join(tables)}" if tables else "") if part
    )
    return report.check(
        NAME, PASSED, started, f"{checked} btree indexes {scope} verified with bt_index_check ({megabytes:,.1f} MB)", values
    )


def _why_not_checkable(oid: int | None, kind: str | None, method: str | None, usable: bool | None) -> str | None:
    """Why bt_index_check cannot check a named relation; None when it can."""
    if oid is None:
        return "the restored database has no such index (names are case-sensitive)"
    if kind in ("r", "p"):
        return "it is a table, not an index: list it in integrity_check_tables"
    if kind == "I":
        return "it is a partitioned index: name its partitions' indexes"
    if kind != "i":
        return "it is not an index"
    if method != "btree":
        return f"it is a {method} index, and bt_index_check checks btree indexes only"
    if not usable:
        return "it is not valid (a failed CREATE INDEX CONCURRENTLY, say)"
    return None


def _unavailable(started: float, values: dict[str, Any], required: bool, why: str) -> dict[str, Any]:
    values["available"] = False
    if required:
        return report.check(NAME, FAILED, started, f"index integrity is required, but {why}", values)
    return report.check(NAME, REPORTED, started, f"not available: {why}; not required, so the restore is not failed for it", values)
