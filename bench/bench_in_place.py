"""Downtime and total time of an emergency in-place restore: this project's swap vs the runbook's delete-first.

Both run on the same emulated world (a 20-minute restore, 10-minute renames, an 8-minute snapshot,
two API hosts whose app really connects through the production endpoint):

- `in-place-restore` (this project): the real workflow. Final snapshot, restore alongside while
  production serves, validate, stop the app, two renames followed by resource id, settings, start,
  health. Downtime is measured by the workflow itself, from the stop to healthy.
- the same workflow when RDS fails the restore (status `failed`): the app is never stopped;
- the runbook's Scenario 3, emulated step by step with the same emulated RDS and hosts: snapshot
  (waited, as `aws rds wait` polls: every 30 s), delete production, restore under its name from that
  snapshot, wait, `pm2 restart`, health. Downtime runs from the delete to healthy: the deletion
  (`--delete-minutes`, RDS takes minutes to free a name) plus the whole restore.

Simulated minutes are the timing model (Wait states and RDS durations); real seconds are this
machine running it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from restorectl.harness import Rehearsal, RehearsalOptions  # noqa: E402
from restorectl.localpg import LocalPostgres  # noqa: E402

SOURCE = "irisx-prod-rds-postgres"
POLL = 30  # seconds between looks, as `aws rds wait` polls


def options(args: argparse.Namespace) -> RehearsalOptions:
    return RehearsalOptions(
        calls_rows=args.rows, restore_minutes=args.restore_minutes, rename_minutes=args.rename_minutes, snapshot_minutes=8.0, app_hosts=2
    )


def in_place(pg: LocalPostgres, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    with Rehearsal(pg, options(args)) as world:
        result = world.run("in-place-restore", {"confirm": SOURCE, "mode": "point-in-time", "reason": "benchmark"})
        healthy = [h["health"] for h in result.world["app_hosts"]]
    if result.status != "SUCCEEDED":
        raise RuntimeError(f"in-place-restore {result.status}: {result.error}: {result.cause}")
    return {
        "procedure": "in-place-restore (swap, never delete first)",
        "downtime_min": result.output["downtime_seconds"] / 60,
        "total_min": result.output["timings"]["total_seconds"] / 60,
        "production_exists_throughout": "yes",
        "if_the_restore_fails": "production untouched, still serving",
        "hosts": ",".join(healthy),
        "real_s": time.monotonic() - started,
    }


def in_place_when_the_restore_fails(pg: LocalPostgres, args: argparse.Namespace) -> dict[str, Any]:
    """The same workflow when RDS fails the restore: measured, not assumed, that the app never stopped."""
    started = time.monotonic()
    opts = options(args)
    opts.restore_outcome = "failed"
    with Rehearsal(pg, opts) as world:
        result = world.run("in-place-restore", {"confirm": SOURCE, "mode": "point-in-time", "reason": "benchmark"})
        stops = [c for c in world.app_hosts.commands_run if c["parameters"].get("Action") == ["stop"]]
        healthy = [h["health"] for h in result.world["app_hosts"]]
    if (result.status, result.error) != ("FAILED", "RestoreFailed") or stops:
        raise RuntimeError(f"expected RestoreFailed with the app never stopped, got {result.status} {result.error}, {len(stops)} stops")
    return {
        "procedure": "  the same, when RDS fails the restore",
        "downtime_min": 0.0,
        "total_min": result.simulated_seconds / 60,
        "production_exists_throughout": "yes",
        "if_the_restore_fails": f"{result.error}; the app was never stopped",
        "hosts": ",".join(healthy),
        "real_s": time.monotonic() - started,
    }


def delete_first(pg: LocalPostgres, args: argparse.Namespace) -> dict[str, Any]:
    """The runbook's Scenario 3 commands, in order, on the emulated world."""
    import boto3

    started = time.monotonic()
    with Rehearsal(pg, options(args)) as world:
        rds, ssm, clock = boto3.client("rds"), boto3.client("ssm"), world.clock
        t0 = clock.now()

        # 1. aws rds create-db-snapshot ... irisx-pre-restore-<time>, waited to available
        snapshot_id = f"irisx-pre-restore-{t0:%Y%m%d-%H%M%S}"
        rds.create_db_snapshot(DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier=snapshot_id)
        while rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]["Status"] != "available":
            clock.advance(POLL)

        # 2. aws rds delete-db-instance --skip-final-snapshot (deletion protection has to go first)
        rds.modify_db_instance(DBInstanceIdentifier=SOURCE, DeletionProtection=False, ApplyImmediately=True)
        down_at = clock.now()
        rds.delete_db_instance(DBInstanceIdentifier=SOURCE, SkipFinalSnapshot=True)
        clock.advance(args.delete_minutes * 60)  # RDS frees the name only once the deletion is done

        # 3. aws rds restore-db-instance-from-db-snapshot under the original name, 4. wait for it
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier=snapshot_id, DBSubnetGroupName="default-vpc-xxxxxx"
        )
        while rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DBInstanceStatus"] != "available":
            clock.advance(POLL)

        # ... then pm2 restart irisx-api on the host, until the app answers healthy again
        hosts = [h.instance_id for h in world.app_hosts.hosts]
        ssm.send_command(
            DocumentName="irisx-restore-app-control",
            InstanceIds=hosts,
            Parameters={
                "Action": ["restart"],
                "AppName": ["irisx-api"],
                "HealthUrl": ["http://localhost:3000/health"],
                "EnvFile": ["/home/ubuntu/irisx-backend/.env"],
            },
        )
        while any(world.app_hosts.health_of(h) != "connected" for h in world.app_hosts.hosts):
            clock.advance(5)
        healthy_at = clock.now()
        healthy = [world.app_hosts.health_of(h) for h in world.app_hosts.hosts]
    return {
        "procedure": "runbook Scenario 3 (delete first)",
        "downtime_min": (healthy_at - down_at).total_seconds() / 60,
        "total_min": (healthy_at - t0).total_seconds() / 60,
        "production_exists_throughout": "no",
        "if_the_restore_fails": "no database at all",
        "hosts": ",".join(healthy),
        "real_s": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000, help="calls rows in the emulated production database")
    parser.add_argument("--restore-minutes", type=float, default=20.0)
    parser.add_argument("--rename-minutes", type=float, default=10.0)
    parser.add_argument("--delete-minutes", type=float, default=5.0, help="how long RDS takes to delete production and free its name")
    args = parser.parse_args()
    with LocalPostgres() as pg:
        rows = [delete_first(pg, args), in_place(pg, args), in_place_when_the_restore_fails(pg, args)]
    print(
        f"\nEmergency in-place restore: {args.restore_minutes:g}-minute restore, {args.rename_minutes:g}-minute renames, "
        f"{args.delete_minutes:g}-minute deletion (simulated minutes)\n"
    )
    header = (
        f"{'procedure':46} {'downtime':>9} {'total':>7}  {'prod exists':11}  {'if the restore fails':42} {'hosts after':22} {'real s':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['procedure']:46} {row['downtime_min']:8.1f}m {row['total_min']:6.1f}m  {row['production_exists_throughout']:11}  "
            f"{row['if_the_restore_fails']:42} {row['hosts']:22} {row['real_s']:6.1f}"
        )
    runbook, swap, _ = rows
    print(
        f"\ndowntime: swap {swap['downtime_min']:.1f} min vs delete-first {runbook['downtime_min']:.1f} min "
        f"({runbook['downtime_min'] / swap['downtime_min']:.2f}x); total: swap {swap['total_min']:.1f} min vs "
        f"delete-first {runbook['total_min']:.1f} min; a failed restore: swap 0 min down, delete-first has no database left"
    )


if __name__ == "__main__":
    main()
