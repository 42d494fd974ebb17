"""Benchmark: the runbook's own psql validation commands vs. validate_restored_database, side by side.

Seeds a local PostgreSQL with the IRISX sample data (`--rows` calls, default 1,000,000), makes a
point-in-time copy an hour before "now" (the restored database), then alternates, `--repeats`
times after one warm-up each:

  (a) the runbook's Validation Steps 1, 2 and 4, run through the real `psql` binary exactly as
      DATABASE_RESTORE.md has them (PGPASSWORD in the environment): `SELECT version();`, the
      row-count UNION ALL, and the two MAX(created_at) queries; three psql processes;
  (b) validate_restored_database(copy, source): connect, exact row counts, and per-table recency
      compared with the source at the restore point (the check (a) leaves to a human's eyes);
  (c) the same without a source, for reference.

Prints median and fastest seconds and the ratio to (a). Run from the repository root:

    python bench/bench_validation.py [--rows 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "lambdas"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from restore_runbook.validation.checks import validate_restored_database  # noqa: E402
from restore_runbook.validation.database import DbTarget  # noqa: E402
from restorectl import sample_data  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402

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


def run_runbook_psql(psql: str, pg: LocalPostgres, dbname: str) -> str:
    env = dict(os.environ, PGPASSWORD=pg.password)
    outputs = []
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
        outputs.append(result.stdout)
    return "".join(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="calls rows to seed (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each, alternating (default 5)")
    parser.add_argument("--timeout-ms", type=int, default=15_000, help="statement timeout for the validation (default 15000)")
    args = parser.parse_args()

    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql is not on PATH; install the PostgreSQL client to compare with the runbook's commands")

    now = datetime.now(timezone.utc).replace(microsecond=0)
    restore_point = now - timedelta(hours=1)
    with LocalPostgres() as pg:
        print(f"local PostgreSQL started in {pg.startup_seconds:.2f} s")
        pg.create_database("irisx")
        conn = pg.connect("irisx")
        try:
            summary = sample_data.seed(conn, args.rows, now)
        finally:
            conn.close()
        counts = ", ".join(f"{t} {summary['tables'][t]['rows']:,}" for t in sample_data.TABLES)
        print(f"seeded {counts} in {summary['seconds']:.2f} s")
        began = time.monotonic()
        pg.create_database("irisx_restored", template="irisx")
        deleted = pg.delete_rows_after("irisx_restored", sample_data.TABLES, "created_at", restore_point)
        print(
            f"point-in-time copy at {restore_point:%Y-%m-%dT%H:%M:%SZ} in {time.monotonic() - began:.2f} s "
            f"({deleted['calls']:,} newer calls removed)"
        )

        def target(dbname: str) -> DbTarget:
            return DbTarget(host=pg.host, port=pg.port, dbname=dbname, user=pg.user, password=pg.password)

        copy, source = target("irisx_restored"), target("irisx")

        def ours_with_source() -> dict:
            return validate_restored_database(
                copy,
                source,
                tables=sample_data.TABLES,
                recency_column="created_at",
                restore_point=restore_point,
                statement_timeout_ms=args.timeout_ms,
            )

        def ours_copy_only() -> dict:
            return validate_restored_database(
                copy,
                None,
                tables=sample_data.TABLES,
                recency_column="created_at",
                restore_point=restore_point,
                statement_timeout_ms=args.timeout_ms,
            )

        contenders = {
            "runbook psql (3 processes)": lambda: run_runbook_psql(psql, pg, "irisx_restored"),
            "validate_restored_database + source": ours_with_source,
            "validate_restored_database, copy only": ours_copy_only,
        }
        timings: dict[str, list[float]] = {name: [] for name in contenders}
        for run in contenders.values():  # warm-up: caches, first connections
            run()
        for _ in range(args.repeats):
            for name, run in contenders.items():
                started = time.perf_counter()
                run()
                timings[name].append(time.perf_counter() - started)

        report = ours_with_source()
        assert report["passed"], report["summary"]

    baseline = statistics.median(timings["runbook psql (3 processes)"])
    print()
    print(f"{'what':40} {'median s':>10} {'fastest s':>10} {'ratio':>8}")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:40} {median:10.4f} {min(values):10.4f} {median / baseline:8.2f}")
    print()
    print(f"{args.repeats} alternating runs each after one warm-up; ratio = median / runbook psql median")
    print("runbook psql: prints counts and maxima for a human to judge; nothing compared with the source")
    print(f"ours: {report['summary']}; per check (last run):")
    for check in report["checks"]:
        print(f"  {check['name']:18} {check['duration_ms']:9.2f} ms  {check['detail'][:100]}")


if __name__ == "__main__":
    main()
