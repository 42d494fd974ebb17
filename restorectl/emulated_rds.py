"""Emulated RDS for rehearsals: moto's RDS, made to behave like the real one where it matters.

moto creates every instance `available` at once and has no restore window or data. Here:
- each emulated instance and snapshot is backed by a database in a throwaway local PostgreSQL,
  so the validate step runs its real queries against real rows;
- a restore takes simulated time (`creating` until the clock passes its end), then becomes
  `available` or the terminal status a scenario asks for;
- a point-in-time restore copies the source and removes rows created after the restore time;
  a snapshot restore copies the snapshot's database (`CREATE DATABASE ... TEMPLATE`);
- copies are made only for what a workflow uses: the seeded history's snapshots are recipes
  (the seeded source, cut at the snapshot's time) that become a database only when an instance is
  restored from them; a snapshot the workflow takes is copied when taken, since the instance may
  change afterwards. `copies_made` counts every database copy;
- automated backups report a restore window, and LatestRestorableTime lags `now` by five minutes
  as on RDS.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

from restorectl import sample_data
from restorectl.localpg import LocalPostgres
from restorectl.simclock import SimulatedClock

RESTORABLE_LAG = timedelta(minutes=5)
SOURCE_AGE = timedelta(days=30)
MANUAL_SNAPSHOT_AGE = timedelta(days=2, hours=3)


@dataclass(frozen=True)
class SnapshotData:
    """What restoring a snapshot yields: `template` as it was at `cut_at` (None: all of it)."""

    template: str
    cut_at: datetime | None = None


@dataclass
class PendingRestore:
    ready_at: datetime
    outcome: str


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _aware(value).astimezone(timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


def _pg_name(*parts: str) -> str:
    """A PostgreSQL database name for an RDS identifier (hyphens and colons are not welcome)."""
    raw = "_".join(parts)
    cleaned = re.sub(r"[^a-z0-9_]", "_", raw.lower())
    if len(cleaned) > 60:
        cleaned = cleaned[:50] + "_" + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:9]
    return cleaned


class EmulatedRds:
    def __init__(
        self,
        pg: LocalPostgres,
        clock: SimulatedClock,
        *,
        run_id: str,
        restore_minutes: float,
        restore_outcome: str = "available",
        snapshot_minutes: float = 8.0,
        snapshot_outcome: str = "available",
        delete_minutes: float = 0.0,
        tables: tuple[str, ...] = sample_data.TABLES,
        recency_column: str = "created_at",
    ) -> None:
        self.pg = pg
        self.clock = clock
        self.run_id = run_id
        self.restore_duration = timedelta(minutes=restore_minutes)
        self.restore_outcome = restore_outcome
        self.tables = tables
        self.recency_column = recency_column
        self.instance_db: dict[str, str] = {}
        self.snapshot_data: dict[str, SnapshotData] = {}
        self.copies_made = 0
        self.pending: dict[str, PendingRestore] = {}
        # Manual snapshots taken through the API are `creating` for a while, with PercentProgress growing.
        self.snapshot_duration = timedelta(minutes=snapshot_minutes)
        self.snapshot_outcome = snapshot_outcome
        self.pending_snapshots: dict[str, tuple[datetime, datetime, str]] = {}
        # RDS lists a deleted instance as `deleting` for minutes; moto drops it at once (0 here: as moto does).
        self.delete_duration = timedelta(minutes=delete_minutes)
        self.pending_deletes: dict[str, datetime] = {}
        self.seeding = False
        self.run_databases: list[str] = []

    # ------------------------------------------------------------------ the world at the start

    def golden_database(self, calls_rows: int, retention_days: int) -> tuple[str, list[tuple[str, str, datetime]]]:
        """The seeded source (built once per cluster, then only ever a template) and its snapshot history."""
        now = self.clock.now()
        source_db = _pg_name("golden", str(calls_rows), now.strftime("%Y%m%d%H%M%S"), str(retention_days)) + "_src"
        snapshots: list[tuple[str, str, datetime]] = []
        for days_ago in range(1, retention_days + 1):
            taken = (now - timedelta(days=days_ago)).replace(hour=3, minute=7, second=0, microsecond=0)
            snapshots.append((f"rds:irisx-prod-rds-postgres-{taken:%Y-%m-%d-%H-%M}", "automated", taken))
        manual_at = (now - MANUAL_SNAPSHOT_AGE).replace(microsecond=0)
        snapshots.append((f"irisx-pre-migration-{manual_at:%Y%m%d-%H%M%S}", "manual", manual_at))
        if not self.pg.database_exists(source_db):
            self.pg.create_database(source_db)
            conn = self.pg.connect(source_db)
            try:
                sample_data.seed(conn, calls_rows=calls_rows, now=now, retention_days=retention_days)
            finally:
                conn.close()
        return source_db, snapshots

    def seed(self, source_id: str, *, calls_rows: int, retention_days: int = 7) -> None:
        """IRISX as it stands: the production instance, its network, backups and data."""
        self.seeding = True
        try:
            self._seed(source_id, calls_rows=calls_rows, retention_days=retention_days)
        finally:
            self.seeding = False

    def _seed(self, source_id: str, *, calls_rows: int, retention_days: int) -> None:
        import boto3
        from moto.rds import models as rds_models

        golden_source, snapshots = self.golden_database(calls_rows, retention_days)
        ec2 = boto3.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
            for i, zone in ((1, "a"), (2, "b"))
        ]
        security_group = ec2.create_security_group(GroupName="irisx-rds", Description="IRISX database", VpcId=vpc)["GroupId"]
        rds = boto3.client("rds")
        rds.create_db_subnet_group(
            DBSubnetGroupName="default-vpc-xxxxxx", DBSubnetGroupDescription="IRISX database subnets", SubnetIds=subnets
        )
        rds.create_db_parameter_group(
            DBParameterGroupName="irisx-postgres15", DBParameterGroupFamily="postgres15", Description="IRISX tuning"
        )
        self._attach(source_id, golden_source)
        rds.create_db_instance(
            DBInstanceIdentifier=source_id,
            Engine="postgres",
            EngineVersion="15.5",
            DBInstanceClass="db.t3.medium",
            AllocatedStorage=100,
            StorageType="gp3",
            MasterUsername="postgres",
            MasterUserPassword="not-used-by-the-rehearsal",
            DBName="irisx",
            BackupRetentionPeriod=retention_days,
            PreferredBackupWindow="03:00-04:00",
            DBSubnetGroupName="default-vpc-xxxxxx",
            VpcSecurityGroupIds=[security_group],
            DBParameterGroupName="irisx-postgres15",
            DeletionProtection=True,
            Tags=[{"Key": "app", "Value": "irisx"}, {"Key": "env", "Value": "prod"}],
        )
        backend = rds_models.rds_backends["123456789012"]["us-east-1"]
        source = backend.databases[source_id]
        source.created = self.clock.naive_utcnow() - SOURCE_AGE
        source.instance_create_time = source.created
        # moto takes one automated snapshot at creation; the real history is the daily ones.
        for snapshot_id in [s for s, snap in backend.database_snapshots.items() if snap.db_instance_identifier == source_id]:
            del backend.database_snapshots[snapshot_id]
        for snapshot_id, snapshot_type, taken in snapshots:
            snapshot = backend.create_db_snapshot(source_id, snapshot_id, snapshot_type=snapshot_type)
            snapshot.created = taken.replace(tzinfo=None)
            snapshot.original_snapshot_create_time = snapshot.created
            # the golden source is only ever a template, so cut back to `taken` it is exactly the snapshot
            self.snapshot_data[snapshot_id] = SnapshotData(golden_source, taken)

    def _copy(self, dbname: str, template: str, cut_at: datetime | None = None) -> str:
        self.pg.drop_database(dbname)
        self.pg.create_database(dbname, template=template)
        self.copies_made += 1
        self.run_databases.append(dbname)
        if cut_at is not None:
            self.pg.delete_rows_after(dbname, self.tables, self.recency_column, cut_at)
        return dbname

    def _attach(self, instance_id: str, template: str, cut_at: datetime | None = None) -> str:
        dbname = self._copy(_pg_name(self.run_id, instance_id), template, cut_at)
        self.instance_db[instance_id] = dbname
        return dbname

    # ------------------------------------------------------------------ behaviour moto lacks

    def _begin_restore(self, instance: Any, overrides: dict[str, Any], template: str, cut_at: datetime | None) -> None:
        # moto copies the source's deletion protection and ignores an explicit False; RDS does not.
        instance.deletion_protection = bool(overrides.get("deletion_protection"))
        self._attach(instance.db_instance_identifier, template, cut_at)
        instance.status = "creating"
        self.pending[instance.db_instance_identifier] = PendingRestore(
            ready_at=self.clock.now() + self.restore_duration, outcome=self.restore_outcome
        )

    def _advance_restores(self, backend: Any) -> None:
        now = self.clock.now()
        for identifier, pending in list(self.pending.items()):
            if now >= pending.ready_at and identifier in backend.databases:
                backend.databases[identifier].status = pending.outcome
                del self.pending[identifier]

    def _advance_deletes(self, backend: Any) -> None:
        now = self.clock.now()
        for identifier, gone_at in list(self.pending_deletes.items()):
            if now >= gone_at:
                backend.databases.pop(identifier, None)
                del self.pending_deletes[identifier]

    def _begin_snapshot(self, snapshot: Any) -> None:
        if self.seeding or self.snapshot_duration.total_seconds() <= 0:
            snapshot.percent_progress = 100
            return
        started = self.clock.now()
        snapshot.status = "creating"
        snapshot.percent_progress = 0
        self.pending_snapshots[snapshot.db_snapshot_identifier] = (started, started + self.snapshot_duration, self.snapshot_outcome)

    def _advance_snapshots(self, backend: Any) -> None:
        now = self.clock.now()
        for identifier, (started, ready_at, outcome) in list(self.pending_snapshots.items()):
            snapshot = backend.database_snapshots.get(identifier)
            if snapshot is None:
                del self.pending_snapshots[identifier]
                continue
            if now >= ready_at:
                snapshot.status = outcome
                snapshot.percent_progress = 100 if outcome == "available" else snapshot.percent_progress
                del self.pending_snapshots[identifier]
            else:
                snapshot.percent_progress = int(100 * (now - started) / (ready_at - started))

    def latest_restorable(self) -> datetime:
        return self.clock.now() - RESTORABLE_LAG

    def resolve(self, host: str) -> str:
        """The local database behind an emulated endpoint, as DNS plus RDS would route it."""
        from moto.rds import models as rds_models

        instance_id = host.split(".", 1)[0]
        backend = rds_models.rds_backends["123456789012"]["us-east-1"]
        instance = backend.databases.get(instance_id)
        if instance is None or instance_id not in self.instance_db or instance.status != "available":
            raise ConnectionError(f"could not connect to {host}: no available RDS instance answers there")
        return self.instance_db[instance_id]

    @contextlib.contextmanager
    def installed(self) -> Iterator[EmulatedRds]:
        from moto.rds import models as rds_models
        from moto.rds.exceptions import RDSClientError

        world = self
        backend_class = rds_models.RDSBackend
        original_pitr = backend_class.restore_db_instance_to_point_in_time
        original_from_snapshot = backend_class.restore_db_instance_from_db_snapshot
        original_describe = backend_class.describe_db_instances
        original_delete = backend_class.delete_db_instance
        original_snapshot = backend_class.create_db_snapshot
        original_describe_snapshots = backend_class.describe_db_snapshots

        def restore_pitr(backend: Any, source_id: str, target_id: str, overrides: dict[str, Any]) -> Any:
            world._advance_deletes(backend)
            if overrides.get("use_latest_restorable_time"):
                cut_at = world.latest_restorable()
            else:
                cut_at = _parse_time(overrides["restore_time"])
            instance = original_pitr(backend, source_id, target_id, overrides)
            world._begin_restore(instance, overrides, world.instance_db[source_id], cut_at)
            return instance

        def restore_from_snapshot(backend: Any, snapshot_id: str, overrides: dict[str, Any]) -> Any:
            world._advance_deletes(backend)
            instance = original_from_snapshot(backend, snapshot_id, overrides)
            data = world.snapshot_data[snapshot_id.rsplit(":snapshot:", 1)[-1]]
            world._begin_restore(instance, overrides, data.template, data.cut_at)
            return instance

        def describe(backend: Any, *args: Any, **kwargs: Any) -> Any:
            world._advance_restores(backend)
            world._advance_deletes(backend)
            return original_describe(backend, *args, **kwargs)

        def delete(backend: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
            world._advance_deletes(backend)
            if db_instance_identifier in world.pending_deletes:
                raise RDSClientError("InvalidDBInstanceState", f"Instance {db_instance_identifier} is already being deleted.")
            instance = original_delete(backend, db_instance_identifier, *args, **kwargs)
            if world.delete_duration.total_seconds() > 0:
                # Still listed, `deleting`, until RDS is done; it answers no connection (resolve wants `available`).
                backend.databases[db_instance_identifier] = instance
                world.pending_deletes[db_instance_identifier] = world.clock.now() + world.delete_duration
            world.pending.pop(db_instance_identifier, None)
            dbname = world.instance_db.pop(db_instance_identifier, None)
            if dbname:
                world.pg.drop_database(dbname)
            return instance

        def create_snapshot(backend: Any, db_instance_identifier: str, db_snapshot_identifier: str, *args: Any, **kwargs: Any) -> Any:
            snapshot = original_snapshot(backend, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
            # While seeding, moto's own creation snapshot and the history are recipes (set by _seed).
            taken_now = not world.seeding and db_snapshot_identifier not in world.snapshot_data
            if taken_now and db_instance_identifier in world.instance_db:
                dbname = world._copy(_pg_name(world.run_id, "snap", db_snapshot_identifier), world.instance_db[db_instance_identifier])
                world.snapshot_data[db_snapshot_identifier] = SnapshotData(dbname)
            world._begin_snapshot(snapshot)
            return snapshot

        def describe_snapshots(backend: Any, *args: Any, **kwargs: Any) -> Any:
            world._advance_snapshots(backend)
            return original_describe_snapshots(backend, *args, **kwargs)

        def restore_window(automated_backup: Any) -> dict[str, datetime]:
            instance = automated_backup.backend.databases.get(automated_backup.db_instance_identifier)
            now = world.clock.naive_utcnow()
            retention = timedelta(days=instance.backup_retention_period if instance else 0)
            earliest = max(now - retention, instance.created if instance else now)
            return {"EarliestTime": earliest, "LatestTime": world.latest_restorable().replace(tzinfo=None)}

        with contextlib.ExitStack() as stack:
            patch = stack.enter_context
            patch(mock.patch.object(backend_class, "restore_db_instance_to_point_in_time", restore_pitr))
            patch(mock.patch.object(backend_class, "restore_db_instance_from_db_snapshot", restore_from_snapshot))
            patch(mock.patch.object(backend_class, "describe_db_instances", describe))
            patch(mock.patch.object(backend_class, "delete_db_instance", delete))
            patch(mock.patch.object(backend_class, "create_db_snapshot", create_snapshot))
            patch(mock.patch.object(backend_class, "describe_db_snapshots", describe_snapshots))
            latest = property(lambda _instance: world.latest_restorable().replace(tzinfo=None))
            patch(mock.patch.object(rds_models.DBInstance, "latest_restorable_time", latest))
            patch(mock.patch.object(rds_models.DBInstanceAutomatedBackup, "restore_window", property(restore_window), create=True))
            dbi_resource_id = property(
                lambda backup: getattr(backup.backend.databases.get(backup.db_instance_identifier), "dbi_resource_id", None)
            )
            patch(mock.patch.object(rds_models.DBInstanceAutomatedBackup, "dbi_resource_id", dbi_resource_id, create=True))
            yield self

    def teardown(self) -> None:
        self.pg.drop_databases(self.run_databases)
        self.run_databases.clear()

    # ------------------------------------------------------------------ reporting

    def describe_world(self) -> dict[str, Any]:
        import boto3

        rds = boto3.client("rds")
        instances = [
            {
                "id": i["DBInstanceIdentifier"],
                "status": i["DBInstanceStatus"],
                "endpoint": (i.get("Endpoint") or {}).get("Address"),
                "tags": {t["Key"]: t["Value"] for t in i.get("TagList", [])},
            }
            for i in rds.describe_db_instances()["DBInstances"]
        ]
        snapshots = [
            {
                "id": s["DBSnapshotIdentifier"],
                "type": s["SnapshotType"],
                "status": s["Status"],
                "created": s["SnapshotCreateTime"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "tags": {t["Key"]: t["Value"] for t in s.get("TagList", [])},
            }
            for s in rds.describe_db_snapshots()["DBSnapshots"]
        ]
        return {"db_instances": instances, "db_snapshots": snapshots}
