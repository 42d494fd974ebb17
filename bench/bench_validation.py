"""Benchmark: the runbook's own psql validation commands vs. the project's validation, side by side.

For each size (`--sizes`, calls rows; default 1,000,000) it seeds a local PostgreSQL with the IRISX
sample data, makes a point-in-time copy an hour before "now" (the restored database), and measures
both vacuum states: first unvacuumed (autovacuum off on the seeded tables, so the visibility map is
empty and every count reads the heap), then after `VACUUM` of source and copy (a plain `COUNT(*)`
becomes an index-only scan). In each state it alternates, `--repeats` times after one warm-up each:

  (a) the runbook's Validation Steps 1, 2 and 4, run through the real `psql` binary exactly as
      DATABASE_RESTORE.md has them: `SELECT version();`, the row-count UNION ALL, and the two
      MAX(created_at) queries; three psql processes;
  (b) the gating checks alone (connect, schema, recency against the source) without and with
      (c) amcheck's `bt_index_check` of every index: what decides pass or fail; and (c') with it on
      every table but calls, whose indexes grow with the call history; and (c'') with it on the
      primary keys of those tables alone, named in `integrity_check_indexes`;
  (d) the whole `validate_restored_database(copy, source)`, including the row-count report (each
      copy count, and the source's count at the restore point to compare it with); and (e) the
      same with no index integrity check (`integrity_check_tables=[]`), since bt_index_check reads
      every index page and so grows with the tables;
  (f) the floor under (d) and (e): the count report's copy counts alone, one connection, no
      source and no other check. They are the runbook's own counts, so no validation that
      contains them can cost less than this row.

Prints median seconds, seconds per million calls rows, and the ratio to (a), with the targets:
gating at most 0.1x the runbook at 10 M rows, the whole validation at most 0.8x everywhere. The
databases are warm (this machine's page cache): cold-copy behaviour on RDS is argued, not measured,
here. Run from the repository root:

    python bench/bench_validation.py [--sizes 1000000,4000000,10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "lambdas"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from restore_runbook.validation import counts, database  # noqa: E402
from restore_runbook.validation.checks import validate_restored_database  # noqa: E402
from restore_runbook.validation.database import DbTarget  # noqa: E402
from restore_runbook.validation.integrity import check_integrity  # noqa: E402
from restore_runbook.validation.recency import Recency, Source, check_recency  # noqa: E402
from restore_runbook.validation.schema import check_schema  # noqa: E402
from restorectl import sample_data  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402

TABLES = sample_data.TABLES
PSQL = "runbook psql (3 processes)"
GATING = "gating: connect, schema, recency"
GATING_INTEGRITY = "gating + bt_index_check (all indexes)"
GATING_SMALL_INTEGRITY = "gating + bt_index_check (all but calls)"
GATING_PRIMARY_KEYS = "gating + bt_index_check (3 primary keys)"
PRIMARY_KEYS = tuple(f"{t}_pkey" for t in TABLES if t != "calls")
WHOLE = "whole validation with count report"
WHOLE_NO_AMCHECK = "whole, no bt_index_check (tables [])"
COPY_COUNTS = "floor: the copy's counts alone"

# DATABASE_RESTORE.md, "Validation Steps" 1, 2 and 4 (3 is the app's /health, not the database)
RUNBOOK_QUERIES = [
    "SELECT version();",
    """
  SELECT 'tenants' as table_name, COUNT(*) FROM tenants
  UNION ALL
  SELECT 'users', COUNT(*) FROM users
  UNION ALL
  SELECT 'calls', COUNT(*) FROM calls
  UNION ALL
  SELECT 'api_keys', COUNT(*) FROM api_keys;
""",
    """
  SELECT MAX(created_at) as latest_call FROM calls;
  SELECT MAX(created_at) as latest_user FROM users;
""",
]


def run_runbook_psql(psql: str, pg: LocalPostgres, dbname: str) -> None:
    env = dict(os.environ, PGPASSWORD=pg.password)
    for query in RUNBOOK_QUERIES:
        result = subprocess.run(
            [psql, "-h", pg.host, "-p", str(pg.port), "-U", "postgres", "-d", dbname, "-c", query],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"psql failed: {result.stderr.strip()}")


def gating_only(
    copy: DbTarget,
    source: DbTarget,
    restore_point: datetime,
    timeout_ms: int,
    *,
    integrity_tables: list[str] | tuple[str, ...],
    integrity_indexes: tuple[str, ...] = (),
) -> None:
    """What validate_restored_database runs to decide pass or fail, without the count report."""
    copy_conn = database.connect(copy, statement_timeout_ms=timeout_ms)
    source_conn = database.connect(source, statement_timeout_ms=timeout_ms)
    try:
        with copy_conn.cursor() as cur:
            cur.execute("SELECT version(), current_setting('server_version')")
            cur.fetchone()
        schema = check_schema(copy_conn, TABLES, "created_at", timeout_ms)
        assert schema.check["status"] == "passed", schema.check
        rules = Recency("created_at", restore_point, timeout_ms)
        for table in TABLES:
            check = check_recency(rules, table, copy_conn, Source(conn=source_conn))
            assert check["status"] == "passed", check
        if integrity_tables or integrity_indexes:
            check = check_integrity(copy_conn, integrity_tables, indexes=integrity_indexes, timeout_ms=timeout_ms, required=True)
            assert check["status"] == "passed", check
    finally:
        copy_conn.close()
        source_conn.close()


def copy_counts_only(copy: DbTarget, restore_point: datetime, timeout_ms: int) -> None:
    """The count report's own copy counts, nothing beside them: what the runbook's count query does."""
    copy_conn = database.connect(copy, statement_timeout_ms=timeout_ms)
    try:
        check = counts.count_rows(
            copy_conn, None, TABLES, column="created_at", restore_point=restore_point, budget_ms=timeout_ms, required=True
        )
        assert check["status"] == "passed", check
    finally:
        copy_conn.close()


def execute(pg: LocalPostgres, dbname: str, *statements: str) -> None:
    conn = pg.connect(dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def measure(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():  # warm-up: caches, hint bits, first connections
        run()
    for _ in range(repeats):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def bench_size(pg: LocalPostgres, psql: str, rows: int, repeats: int, timeout_ms: int) -> list[tuple[str, dict[str, float], dict]]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    restore_point = now - timedelta(hours=1)
    source_db, copy_db = f"irisx_{rows}", f"irisx_{rows}_restored"
    pg.create_database(source_db)
    conn = pg.connect(source_db)
    try:
        summary = sample_data.seed(conn, rows, now)
    finally:
        conn.close()
    # the unvacuumed state must not be vacuumed behind the benchmark's back
    execute(pg, source_db, *(f"ALTER TABLE {t} SET (autovacuum_enabled = false)" for t in TABLES))
    pg.create_database(copy_db, template=source_db)
    pg.delete_rows_after(copy_db, TABLES, "created_at", restore_point)
    counts = ", ".join(f"{t} {summary['tables'][t]['rows']:,}" for t in TABLES)
    print(f"\n{rows:,} calls rows: seeded {counts} in {summary['seconds']:.1f} s", flush=True)

    def target(dbname: str) -> DbTarget:
        return DbTarget(host=pg.host, port=pg.port, dbname=dbname, user=pg.user, password=pg.password)

    copy, source = target(copy_db), target(source_db)

    def whole(**kwargs: object) -> dict:
        return validate_restored_database(
            copy,
            source,
            tables=TABLES,
            recency_column="created_at",
            restore_point=restore_point,
            statement_timeout_ms=timeout_ms,
            count_budget_ms=timeout_ms,
            **kwargs,
        )

    contenders: dict[str, Callable[[], object]] = {
        PSQL: lambda: run_runbook_psql(psql, pg, copy_db),
        GATING: lambda: gating_only(copy, source, restore_point, timeout_ms, integrity_tables=[]),
        GATING_INTEGRITY: lambda: gating_only(copy, source, restore_point, timeout_ms, integrity_tables=TABLES),
        # The tables that do not grow with the call history: what `integrity_check_tables` narrowed to them costs.
        GATING_SMALL_INTEGRITY: lambda: gating_only(
            copy, source, restore_point, timeout_ms, integrity_tables=[t for t in TABLES if t != "calls"]
        ),
        # `integrity_check_indexes` naming only the primary keys of the tables that do not grow with the calls.
        GATING_PRIMARY_KEYS: lambda: gating_only(
            copy, source, restore_point, timeout_ms, integrity_tables=[], integrity_indexes=PRIMARY_KEYS
        ),
        WHOLE: whole,
        WHOLE_NO_AMCHECK: lambda: whole(integrity_check_tables=[]),
        COPY_COUNTS: lambda: copy_counts_only(copy, restore_point, timeout_ms),
    }
    results = []
    try:
        for state in ("unvacuumed", "vacuumed"):
            if state == "vacuumed":
                for dbname in (source_db, copy_db):
                    execute(pg, dbname, "VACUUM (ANALYZE)")
            medians = measure(contenders, repeats)
            report = whole()
            assert report["passed"] and report["checks"][-1]["status"] == "passed", report["summary"]
            results.append((state, medians, report))
            print_state(rows, state, medians, report)
    finally:
        pg.drop_database(copy_db)
        pg.drop_database(source_db)
    return results


def print_state(rows: int, state: str, medians: dict[str, float], report: dict) -> None:
    baseline = medians[PSQL]
    millions = rows / 1e6
    print(f"  {state}:")
    print(f"    {'what':40} {'median s':>9} {'s per M rows':>13} {'ratio':>7}")
    for name, median in medians.items():
        print(f"    {name:40} {median:9.4f} {median / millions:13.4f} {median / baseline:7.2f}")
    counts = next(c for c in report["checks"] if c["name"] == "row_counts")["values"]["tables"]
    calls = counts["calls"]
    print(f"    count report (last run): calls copy {calls['ms']:.0f} ms + source at restore point {calls['source_ms']:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated calls rows per run (default 1000000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each, alternating (default 3)")
    parser.add_argument("--timeout-ms", type=int, default=120_000, help="statement timeout and count budget (default 120000)")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]

    psql = shutil.which("psql")
    if psql is None:
        with contextlib.suppress(Exception):
            from restorectl.localpg import find_bindir

            candidate = os.path.join(find_bindir(), "psql")
            psql = candidate if os.access(candidate, os.X_OK) else None
    if psql is None:
        raise SystemExit("psql is not on PATH; install the PostgreSQL client to compare with the runbook's commands")

    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    all_results: list[tuple[int, str, dict[str, float]]] = []
    with LocalPostgres() as pg:
        print(f"local PostgreSQL started in {pg.startup_seconds:.2f} s")
        for rows in sizes:
            for state, medians, _report in bench_size(pg, psql, rows, args.repeats, args.timeout_ms):
                all_results.append((rows, state, medians))

    print(f"\ntargets ({args.repeats} alternating runs after one warm-up; ratio = median / runbook psql median)")
    for rows, state, medians in all_results:
        baseline = medians[PSQL]
        gating = medians[GATING_INTEGRITY] / baseline
        gating_plain = medians[GATING] / baseline
        gating_small = medians[GATING_SMALL_INTEGRITY] / baseline
        gating_keys = medians[GATING_PRIMARY_KEYS] / baseline
        whole = medians[WHOLE] / baseline
        plain = medians[WHOLE_NO_AMCHECK] / baseline
        floor = medians[COPY_COUNTS] / baseline
        verdict = "met" if whole <= 0.8 else "MISSED"
        line = f"  {rows:>11,} {state:10} whole {whole:5.2f}x (<= 0.8x: {verdict}; without bt_index_check {plain:4.2f}x"
        line += f"; the copy's counts alone, its floor, {floor:4.2f}x)"
        line += f"; gating {gating_plain:5.3f}x, with bt_index_check {gating:5.3f}x (all but calls {gating_small:5.3f}x"
        line += f", their primary keys {gating_keys:5.3f}x)"
        if rows >= 10_000_000:
            line += (
                f" (<= 0.1x at 10 M: {'met' if gating <= 0.1 else 'MISSED'}; without amcheck {'met' if gating_plain <= 0.1 else 'MISSED'};"
                f" all but calls {'met' if gating_small <= 0.1 else 'MISSED'};"
                f" their primary keys {'met' if gating_keys <= 0.1 else 'MISSED'})"
            )
        print(line)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
