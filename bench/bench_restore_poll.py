"""How promptly and how cheaply the restore workflow follows a long RDS restore.

For simulated restores of several lengths (the runbook's 10-30 minutes), rehearses the real
`restore` workflow and reports: the delay between the emulated instance becoming available and
the workflow noticing it, the state transitions and the Lambda invocations of the execution.
Targets for a 20-minute restore: delay <= 15 s, transitions <= 150.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from restore_runbook import clock  # noqa: E402
from restorectl.harness import Rehearsal, RehearsalOptions  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402


def measure(pg: LocalPostgres, restore_minutes: float, rows: int) -> dict[str, float]:
    with Rehearsal(pg, RehearsalOptions(calls_rows=rows, restore_minutes=restore_minutes)) as rehearsal:
        result = rehearsal.run("restore", {"mode": "snapshot", "target_instance": "irisx-bench"})
        if result.status != "SUCCEEDED":
            raise SystemExit(f"restore failed in the benchmark: {result.error}: {result.cause}")
        progress_started = clock.parse_utc(result.output["timings"]["restore_started_at"])
        available = progress_started.timestamp() + restore_minutes * 60
        noticed = clock.parse_utc(result.output["timings"]["available_at"]).timestamp()
        return {
            "restore_minutes": restore_minutes,
            "notice_delay_s": noticed - available,
            "transitions": len(result.path),
            "invocations": len(result.invocations),
            "polls": result.states().count("DescribeRestore"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--minutes", type=float, nargs="*", default=[10, 20, 30, 45])
    args = parser.parse_args()
    with LocalPostgres() as pg:
        rows = [measure(pg, minutes, args.rows) for minutes in args.minutes]
    print("restore poll loop (simulated restores; expected restore time setting: 20 min)")
    print(f"{'restore':>8} {'notice delay':>13} {'transitions':>12} {'invocations':>12} {'polls':>6}")
    for row in rows:
        print(
            f"{row['restore_minutes']:>6g} m {row['notice_delay_s']:>11.0f} s {row['transitions']:>12} "
            f"{row['invocations']:>12} {row['polls']:>6}"
        )


if __name__ == "__main__":
    main()
