"""What a monthly drill costs and how quickly it cleans up after itself.

Rehearses the real `drill` workflow for simulated restores of several lengths and reports, per run:
the drill's RTO, the copy's time alive beyond the restore (available until its deletion was
accepted) and the teardown, the state transitions and the Lambda invocations of the execution.
Target for a 20-minute restore with keep_minutes 0: time alive beyond the restore <= 5 minutes.
A run with keep_minutes set shows that the Wait, not extra polling, holds the copy. The simulated
clock stands still while a step runs, so the validation's own (real) seconds are shown beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from restorectl.harness import Rehearsal, RehearsalOptions  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402

TARGET_ALIVE_SECONDS = 5 * 60


def measure(pg: LocalPostgres, restore_minutes: float, keep_minutes: int, rows: int) -> dict[str, float]:
    with Rehearsal(pg, RehearsalOptions(calls_rows=rows, restore_minutes=restore_minutes)) as rehearsal:
        result = rehearsal.run("drill", {"keep_minutes": keep_minutes})
        if result.status != "SUCCEEDED":
            raise SystemExit(f"the drill failed in the benchmark: {result.error}: {result.cause}")
        measures = result.output["measures"]
        return {
            "restore_minutes": restore_minutes,
            "keep_minutes": keep_minutes,
            "rto_s": measures["rto"]["seconds"],
            "alive_s": measures["alive_beyond_restore"]["seconds"],
            "teardown_s": measures["teardown"]["seconds"],
            "validation_s": measures["rto"]["phases"]["validation_seconds"],
            "transitions": len(result.path),
            "invocations": len(result.invocations),
            "polls": result.states().count("DescribeRestore"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--minutes", type=float, nargs="*", default=[10, 20, 30])
    parser.add_argument("--keep", type=int, default=15, help="keep_minutes of the extra 20-minute run")
    args = parser.parse_args()
    runs = [(minutes, 0) for minutes in args.minutes] + [(20.0, args.keep)]
    with LocalPostgres() as pg:
        rows = [measure(pg, minutes, keep, args.rows) for minutes, keep in runs]
    print("drill workflow (simulated restores; objectives: RTO 30 min, alive beyond restore keep + 5 min)")
    header = f"{'restore':>8} {'keep':>5} {'RTO':>8} {'alive beyond':>13} {'validation':>11} {'teardown':>9} {'transitions':>12}"
    print(f"{header} {'invocations':>12} {'polls':>6}")
    for row in rows:
        print(
            f"{row['restore_minutes']:>6g} m {row['keep_minutes']:>3} m {row['rto_s'] / 60:>6.1f} m {row['alive_s']:>11.0f} s "
            f"{row['validation_s']:>9.1f} s {row['teardown_s']:>7.0f} s {row['transitions']:>12} {row['invocations']:>12} {row['polls']:>6}"
        )
    twenty = next(r for r in rows if r["restore_minutes"] == 20 and r["keep_minutes"] == 0)
    verdict = "met" if twenty["alive_s"] <= TARGET_ALIVE_SECONDS else "MISSED"
    print(f"20-minute restore, keep 0: alive beyond the restore {twenty['alive_s']:.0f} s (target <= {TARGET_ALIVE_SECONDS} s: {verdict})")


if __name__ == "__main__":
    main()
