"""Warm a restored copy before cutover: read the critical tables' indexes and heaps, within a budget.

A copy restored from a snapshot loads each block from S3 the first time it is read, so the first
users after a cutover would pay for every cold block they touch. Reading the blocks once, here,
moves that cost before the cutover. Per table its indexes come first (what the app's lookups
touch), then its heap.

- With `pg_prewarm` installed (created in the source, so copies inherit it), every relation,
  indexes included, is read with `pg_prewarm(rel, 'read', 'main', first, last)`: a plain read,
  which on RDS pulls the block from S3 onto the volume without filling shared buffers.
- Without it, each heap is read with a TID range scan (`ctid >= '(first,0)' AND ctid < ...`,
  PostgreSQL 14 and later), which reads exactly those blocks; indexes are reported not warmed.

Reads go in chunks (64 MB by default), each under a statement timeout of the budget still left,
so the step stops cleanly at its budget and reports what it warmed, how fast (MB/s), and what it
did not reach. Warming is an optimisation: a read that fails is reported, never raised; only a copy
that cannot be reached at all raises, since nothing should be cut over to it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection, cursor

from restore_runbook.common.errors import ValidationFailed
from restore_runbook.settings import RunbookSettings
from restore_runbook.validation import database, report, secrets
from restore_runbook.validation.database import DbTarget

CHUNK_BYTES = 64 * 1024 * 1024
WARMED, PARTLY, NOT_WARMED = "warmed", "partly warmed", "not warmed"

PREWARM_SQL = (
    "SELECT current_setting('block_size')::int, (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_prewarm')"
)
RELATIONS_SQL = """
SELECT t.name, c.oid, c.oid::regclass::text, CASE WHEN c.relkind = 'i' THEN 'index' ELSE 'table' END,
       pg_relation_size(c.oid) / current_setting('block_size')::int
  FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, position)
  JOIN pg_class base ON base.oid = to_regclass(quote_ident(t.name)) AND base.relkind IN ('r', 'm')
  JOIN pg_class c ON c.oid = base.oid OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = base.oid)
 ORDER BY t.position, c.relkind = 'i' DESC, c.oid
"""


def warm_restored_copy(target: DbTarget, tables: Sequence[str], *, budget_seconds: float, statement_timeout_ms: int) -> dict[str, Any]:
    """Read `tables` and their indexes in `target` for at most `budget_seconds`; return the report."""
    try:
        conn = database.connect(target, statement_timeout_ms=statement_timeout_ms)
    except Exception as exc:  # whatever stops the connection is the cause reported
        raise ValidationFailed(
            f"could not connect to the restored database {target.describe()} to warm it before cutover: "
            f"{report.error_text(exc, statement_timeout_ms)}"
        ) from exc
    try:
        return warm_relations(conn, tables, budget_seconds=budget_seconds)
    finally:
        with contextlib.suppress(Exception):  # closing must never hide the report
            conn.close()


def warm_relations(conn: connection, tables: Sequence[str], *, budget_seconds: float, chunk_bytes: int = CHUNK_BYTES) -> dict[str, Any]:
    began = time.perf_counter()
    deadline = began + budget_seconds
    with conn.cursor() as cur:
        cur.execute(PREWARM_SQL)
        block_size, prewarm_schema = report.row_of(cur)
        cur.execute(RELATIONS_SQL, (list(tables),))
        relations = cur.fetchall()
        reader = _Reader(cur, block_size, prewarm_schema, max(1, chunk_bytes // block_size))
        entries = [reader.warm(table, oid, name, kind, blocks, deadline) for table, oid, name, kind, blocks in relations]
    found = {table for table, *_ in relations}
    elapsed = time.perf_counter() - began
    read_mb = sum(e["mb_read"] for e in entries)
    not_warmed = [e["relation"] for e in entries if e["status"] != WARMED]
    return {
        "method": "pg_prewarm" if prewarm_schema else "sequential read (pg_prewarm not installed: indexes are not warmed)",
        "budget_seconds": budget_seconds,
        "seconds": round(elapsed, 3),
        "mb_read": round(read_mb, 3),
        "mb_per_s": round(read_mb / elapsed, 1) if elapsed > 0 else None,
        "stopped_at_budget": any(e.get("stopped_at_budget") for e in entries),
        "relations": entries,
        "not_warmed": not_warmed,
        "not_warmed_mb": round(sum(e["mb"] - e["mb_read"] for e in entries), 3),
        "missing_tables": [t for t in tables if t not in found],
        "summary": _summary(entries, read_mb, elapsed, budget_seconds),
    }


class _Reader:
    """Reads one relation in chunks until it is done or the budget is spent."""

    def __init__(self, cur: cursor, block_size: int, prewarm_schema: str | None, chunk_blocks: int) -> None:
        self.cur = cur
        self.block_size = block_size
        self.prewarm = (
            sql.SQL("SELECT {}.pg_prewarm(%s::oid::regclass, 'read', 'main', %s, %s)").format(sql.Identifier(prewarm_schema))
            if prewarm_schema
            else None
        )
        self.chunk_blocks = chunk_blocks

    def warm(self, table: str, oid: int, relation: str, kind: str, blocks: int, deadline: float) -> dict[str, Any]:
        began = time.perf_counter()
        entry: dict[str, Any] = {"relation": relation, "table": table, "kind": kind, "blocks": blocks, "blocks_read": 0}
        if kind == "index" and self.prewarm is None:
            entry["detail"] = "pg_prewarm is not installed in the copy; an index is only read by the queries that use it"
        else:
            self._read(entry, table, oid, kind, blocks, deadline)
        seconds = time.perf_counter() - began
        entry["mb"] = round(blocks * self.block_size / 1e6, 3)
        entry["mb_read"] = round(entry["blocks_read"] * self.block_size / 1e6, 3)
        entry["seconds"] = round(seconds, 4)
        entry["mb_per_s"] = round(entry["mb_read"] / seconds, 1) if entry["blocks_read"] and seconds > 0 else None
        done = entry["blocks_read"] >= blocks and "detail" not in entry
        entry["status"] = WARMED if done else PARTLY if entry["blocks_read"] else NOT_WARMED
        return entry

    def _read(self, entry: dict[str, Any], table: str, oid: int, kind: str, blocks: int, deadline: float) -> None:
        first = 0
        while first < blocks:
            left_ms = int((deadline - time.perf_counter()) * 1000)
            if left_ms <= 0:
                entry["stopped_at_budget"] = True
                entry["detail"] = f"the warm-up budget ran out before block {first:,} of {blocks:,}"
                return
            last = min(first + self.chunk_blocks, blocks) - 1
            try:
                report.time_boxed(self.cur, *self._chunk(table, oid, first, last), left_ms)
            except psycopg2.errors.QueryCanceled:
                entry["stopped_at_budget"] = True
                entry["detail"] = f"the warm-up budget ran out while reading blocks {first:,}-{last:,} of {blocks:,}"
                return
            except psycopg2.Error as exc:
                entry["detail"] = f"reading {kind} {entry['relation']} failed at block {first:,}: {report.error_text(exc, left_ms)}"
                return
            entry["blocks_read"] += last - first + 1
            first = last + 1

    def _chunk(self, table: str, oid: int, first: int, last: int) -> tuple[sql.Composable, tuple[Any, ...]]:
        if self.prewarm is not None:
            return self.prewarm, (oid, first, last)
        # the TID range scan reads exactly these heap blocks (PostgreSQL 14+), whatever the planner's statistics
        statement = sql.SQL("SELECT count(*) FROM {} WHERE ctid >= %s::tid AND ctid < %s::tid").format(sql.Identifier(table))
        return statement, (f"({first},0)", f"({last + 1},0)")


def _summary(entries: list[dict[str, Any]], read_mb: float, elapsed: float, budget_seconds: float) -> str:
    total_mb = sum(e["mb"] for e in entries)
    warmed = sum(1 for e in entries if e["status"] == WARMED)
    rate = f" at {read_mb / elapsed:,.1f} MB/s" if elapsed > 0 and read_mb else ""
    text = f"warmed {warmed} of {len(entries)} relations: {read_mb:,.1f} of {total_mb:,.1f} MB in {elapsed:.2f} s{rate}"
    left = [e["relation"] for e in entries if e["status"] != WARMED]
    if left:
        text += f"; not warmed within the {budget_seconds:g} s budget or without pg_prewarm: {', '.join(left)}"
    return text


def warm_step(progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """The warm-up step: log in to the restored copy (`progress["endpoint"]`) and warm the configured tables."""
    user, password = secrets.database_credentials(settings.db_secret_arn)
    return warm_restored_copy(
        database.target_at(progress["endpoint"], settings, user, password),
        settings.warm_up_tables,
        budget_seconds=settings.warm_budget_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
