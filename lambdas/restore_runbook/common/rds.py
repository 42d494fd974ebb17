"""What the workflows need from RDS: the source, its restore window, snapshots, restored copies.

Every destructive call here checks, in code, that its target is an instance this tool created;
the IAM policy repeats the same fence with a tag condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import (
    InvalidInput,
    RestoreFailed,
    SnapshotNotFound,
    SourceNotFound,
    TargetAlreadyExists,
    UnsafeOperation,
)
from restore_runbook.contract import PROTECTED_ROLES as PROTECTED_ROLES
from restore_runbook.contract import PURPOSE_DRILL as PURPOSE_DRILL
from restore_runbook.contract import ROLE_PRODUCTION as ROLE_PRODUCTION
from restore_runbook.contract import ROLE_REPLACED_PRODUCTION as ROLE_REPLACED_PRODUCTION
from restore_runbook.contract import TAG_EXECUTION as TAG_EXECUTION
from restore_runbook.contract import TAG_PURPOSE as TAG_PURPOSE
from restore_runbook.contract import TAG_RESTORE_POINT as TAG_RESTORE_POINT
from restore_runbook.contract import TAG_ROLE as TAG_ROLE
from restore_runbook.contract import TAG_SOURCE as TAG_SOURCE
from restore_runbook.contract import TAG_WORKFLOW as TAG_WORKFLOW
from restore_runbook.contract import TOOL_TAG_PREFIX as TOOL_TAG_PREFIX

# Statuses from which an instance never becomes available by itself. RDS documents these in
# "Viewing Amazon RDS DB instance status"; anything else is treated as still in progress.
TERMINAL_FAILURE_STATUSES = frozenset(
    {
        "failed",
        "incompatible-restore",
        "incompatible-parameters",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-credentials",
        "storage-full",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "insufficient-capacity",
        "restore-error",
        "deleting",
        "deleted",
        "stopped",
        "stopping",
    }
)
AVAILABLE = "available"


@dataclass(frozen=True)
class RestoreWindow:
    earliest: datetime
    latest: datetime

    def describe(self) -> str:
        return f"[{clock.isoformat(self.earliest)}, {clock.isoformat(self.latest)}]"


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def find_instance(identifier: str) -> dict[str, Any] | None:
    try:
        response = aws.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)
    except Exception as exc:
        if aws.error_code(exc) == "DBInstanceNotFound":
            return None
        raise
    instances: list[dict[str, Any]] = response["DBInstances"]
    return instances[0] if instances else None


def all_instances() -> Iterator[dict[str, Any]]:
    for page in aws.client("rds").get_paginator("describe_db_instances").paginate():
        yield from page["DBInstances"]


def describe_source(identifier: str) -> dict[str, Any]:
    instance = find_instance(identifier)
    if instance is None:
        raise SourceNotFound(
            f"source DB instance {identifier!r} does not exist in this account and region; "
            "check source_instance (default comes from the stack settings)"
        )
    return instance


def tags_of(instance_or_snapshot: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance_or_snapshot.get("TagList", [])}


def restore_window(source: dict[str, Any]) -> RestoreWindow:
    identifier = source["DBInstanceIdentifier"]
    if not source.get("BackupRetentionPeriod"):
        raise InvalidInput(
            f"automated backups are disabled on {identifier!r} (retention 0 days), so there is no "
            "point in time to restore to; use mode 'snapshot' instead"
        )
    backups = aws.client("rds").describe_db_instance_automated_backups(DBInstanceIdentifier=identifier)
    # Retained backups of an earlier, deleted instance of the same name are listed too; only the
    # source's own (same DbiResourceId) describe what can be restored from it.
    resource_id = source.get("DbiResourceId")
    windows = [
        b["RestoreWindow"]
        for b in backups.get("DBInstanceAutomatedBackups", [])
        if b.get("RestoreWindow") and b.get("DbiResourceId", resource_id) == resource_id
    ]
    if not windows or not source.get("LatestRestorableTime"):
        raise InvalidInput(
            f"RDS reports no restore window for {identifier!r} yet (a new instance has none until its first "
            "backup completes); use mode 'snapshot' or try again later"
        )
    earliest = min(_utc(w["EarliestTime"]) for w in windows)
    return RestoreWindow(earliest=earliest, latest=_utc(source["LatestRestorableTime"]))


def snapshot_named(snapshot_id: str) -> dict[str, Any] | None:
    """The snapshot of that id, or None: a retried create looks before it acts."""
    try:
        found = aws.client("rds").describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except Exception as exc:
        if aws.error_code(exc) == "DBSnapshotNotFound":
            return None
        raise
    return dict(found[0]) if found else None


def find_snapshot(source_identifier: str, snapshot_id: str) -> dict[str, Any]:
    """An available snapshot of the source: by id, or the newest one for 'latest'."""
    rds = aws.client("rds")
    if snapshot_id == "latest":
        snapshots: list[dict[str, Any]] = []
        for page in rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source_identifier):
            snapshots.extend(page["DBSnapshots"])
        available = [s for s in snapshots if s.get("Status") == AVAILABLE and s.get("SnapshotCreateTime")]
        if not available:
            raise SnapshotNotFound(
                f"{source_identifier!r} has no available snapshot (automated or manual); "
                "use mode 'point-in-time', or take one with the snapshot workflow"
            )
        return max(available, key=lambda s: _utc(s["SnapshotCreateTime"]))
    try:
        found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    except Exception as exc:
        if aws.error_code(exc) != "DBSnapshotNotFound":
            raise
        found = []
    if not found:
        raise SnapshotNotFound(
            f"snapshot {snapshot_id!r} does not exist; list them with "
            f"`aws rds describe-db-snapshots --db-instance-identifier {source_identifier}` or use 'latest'"
        )
    snapshot: dict[str, Any] = found[0]
    if snapshot.get("DBInstanceIdentifier") != source_identifier:
        raise SnapshotNotFound(
            f"snapshot {snapshot_id!r} was taken of {snapshot.get('DBInstanceIdentifier')!r}, not of the source {source_identifier!r}"
        )
    if snapshot.get("Status") != AVAILABLE:
        raise SnapshotNotFound(
            f"snapshot {snapshot_id!r} is {snapshot.get('Status')!r}, not 'available'; wait for it to finish or choose another"
        )
    return snapshot


def ensure_target_free(target: str, source: str) -> None:
    if target == source:
        raise TargetAlreadyExists(
            f"target_instance {target!r} is the source itself; this workflow restores to a NEW instance "
            "(replacing production in place is the in-place-restore workflow)"
        )
    if find_instance(target) is not None:
        raise TargetAlreadyExists(
            f"an instance named {target!r} already exists; choose another target_instance or omit it to get a unique name"
        )


def restore_settings_from(source: dict[str, Any]) -> dict[str, Any]:
    """The source's network, parameter and storage settings, for the copy to match production."""
    settings: dict[str, Any] = {
        "DBInstanceClass": source["DBInstanceClass"],
        "Port": source.get("Endpoint", {}).get("Port") or source.get("DbInstancePort") or 5432,
        "MultiAZ": bool(source.get("MultiAZ", False)),
        "PubliclyAccessible": bool(source.get("PubliclyAccessible", False)),
        "DeletionProtection": False,  # a copy must stay cheap to throw away
        "CopyTagsToSnapshot": bool(source.get("CopyTagsToSnapshot", False)),
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in source.get("VpcSecurityGroups", [])],
    }
    if source.get("StorageType"):
        settings["StorageType"] = source["StorageType"]
    subnet_group = source.get("DBSubnetGroup", {}).get("DBSubnetGroupName")
    if subnet_group:
        settings["DBSubnetGroupName"] = subnet_group
    parameter_groups = [g["DBParameterGroupName"] for g in source.get("DBParameterGroups", [])]
    if parameter_groups and not parameter_groups[0].startswith("default."):
        settings["DBParameterGroupName"] = parameter_groups[0]
    option_groups = [g["OptionGroupName"] for g in source.get("OptionGroupMemberships", [])]
    if option_groups and not option_groups[0].startswith("default:"):
        settings["OptionGroupName"] = option_groups[0]
    return settings


def copied_tags(source: dict[str, Any], *, management_tag_key: str) -> list[dict[str, str]]:
    """The source's own tags (cost centre, team, ...) for a copy of it: not `aws:` tags (reserved),
    and none of this tool's, which describe the source and would lie about the copy. Production
    after an in-place swap is itself a copy carrying `role=production`: a copy inheriting that
    would be refused by every delete, and a drill's copy of it would be left running."""

    def own(key: str) -> bool:
        return key.startswith(("aws:", TOOL_TAG_PREFIX)) or key == management_tag_key

    return [t for t in source.get("TagList", []) if not own(t["Key"])]


def merge_tags(*groups: list[dict[str, str]]) -> list[dict[str, str]]:
    merged: dict[str, str] = {}
    for group in groups:
        for tag in group:
            merged[tag["Key"]] = tag["Value"]
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def is_managed(instance: dict[str, Any], tag_key: str, tag_value: str) -> bool:
    return tags_of(instance).get(tag_key) == tag_value


def final_snapshot_name(identifier: str, at: datetime | None = None) -> str:
    """`<instance>-final-YYYYMMDD-HHMMSS`: the snapshot kept when a copy that may hold real writes is deleted.

    `at` (default now) is a moment the execution recorded before the delete: a step that runs again
    (its answer lost after RDS took the delete) must look for the snapshot its first attempt named."""
    return f"{identifier}-final-{(at or clock.now()).astimezone(timezone.utc):%Y%m%d-%H%M%S}"


# A snapshot in these statuses holds (or, being taken, is taking) the copy's data; the Deletion names only such a one.
SNAPSHOT_STATUSES_THAT_KEEP = frozenset({"available", "creating"})
SNAPSHOT_STATUSES_LOST = frozenset({"failed", "deleting", "deleted"})


@dataclass(frozen=True)
class Deletion:
    outcome: str  # what happened, in words
    final_snapshot: str | None = None  # the final snapshot keeping the copy's data: being taken, or found


def already_deleted(identifier: str, final_snapshot: str | None, *, deleting: bool = False) -> Deletion:
    """A copy already gone or going (an earlier attempt of this step, or someone else, deleted it):
    the words name its final snapshot only where one exists, since that is where its data now is,
    and never claim more than RDS lists (a snapshot under another name may exist)."""
    state = f"{identifier} is already being deleted" if deleting else f"{identifier} does not exist"
    if not final_snapshot:
        return Deletion(state if deleting else f"{state}; nothing to delete")
    snapshot = snapshot_named(final_snapshot)
    if snapshot is not None:
        status = str(snapshot.get("Status") or "of unknown status")
        keeps = status in SNAPSHOT_STATUSES_THAT_KEEP
        return Deletion(f"{state}; {_what_the_snapshot_keeps(final_snapshot, status)}", final_snapshot if keeps else None)
    look = f"check `aws rds describe-db-snapshots --db-instance-identifier {identifier}` for one under another name"
    if deleting:
        return Deletion(
            f"{state}, and no final snapshot {final_snapshot} is listed (RDS lists it once the deletion takes it; otherwise the "
            f"copy is being deleted without it, or with one under another name): {look}"
        )
    return Deletion(f"{state}, and no snapshot named {final_snapshot} does either (whoever deleted it kept none under this name): {look}")


def _what_the_snapshot_keeps(snapshot_id: str, status: str) -> str:
    if status == "available":
        return f"its final snapshot {snapshot_id} (available) keeps what it held"
    if status == "creating":
        return f"its final snapshot {snapshot_id} is being taken (creating)"
    if status in SNAPSHOT_STATUSES_LOST:
        return f"its final snapshot {snapshot_id} is {status} and does NOT keep what it held: look at the copy's retained automated backups"
    return f"its final snapshot {snapshot_id} is {status}, so it may not keep what it held: look at it before anything else"


def delete_managed_instance(
    identifier: str,
    *,
    source: str,
    tag_key: str,
    tag_value: str,
    execution_id: str | None,
    final_snapshot: str | None = None,
    delete_automated_backups: bool = True,
) -> Deletion:
    """Delete a copy this tool created, and say what happened.

    Refuses (UnsafeOperation) the source, anything without the management tag, and, when an
    execution id is given, a copy created by another execution. By default the copy is a
    never-used throwaway: no final snapshot, automated backups deleted. A copy that may have served
    production (the rollback workflow's) is deleted with `final_snapshot` named and its automated
    backups kept (`delete_automated_backups=False`); if it is already gone or going, the answer
    says whether that snapshot exists.
    """
    if identifier == source:
        raise UnsafeOperation(f"refusing to delete {identifier!r}: it is the source instance")
    instance = find_instance(identifier)
    if instance is None:
        return already_deleted(identifier, final_snapshot, deleting=False)
    tags = tags_of(instance)
    if tags.get(TAG_ROLE) in PROTECTED_ROLES:
        # A copy an in-place swap made production, or the production it replaced, keeps the management tag it was born with.
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it is marked {TAG_ROLE}={tags[TAG_ROLE]}, so it serves or served production"
        )
    if tags.get(tag_key) != tag_value:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it does not carry the tag {tag_key}={tag_value}, so this tool did not create it"
        )
    if execution_id is not None and tags.get(TAG_EXECUTION) != execution_id:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it was created by execution {tags.get(TAG_EXECUTION)!r}, not by this one"
        )
    if instance.get("DBInstanceStatus") in ("deleting", "deleted"):
        return already_deleted(identifier, final_snapshot, deleting=True)
    if final_snapshot:
        snapshot_args: dict[str, Any] = {"SkipFinalSnapshot": False, "FinalDBSnapshotIdentifier": final_snapshot}
    else:
        snapshot_args = {"SkipFinalSnapshot": True}
    try:
        aws.client("rds").delete_db_instance(
            DBInstanceIdentifier=identifier, DeleteAutomatedBackups=delete_automated_backups, **snapshot_args
        )
    except Exception as exc:
        if aws.error_code(exc) == "DBInstanceNotFound":
            return already_deleted(identifier, final_snapshot, deleting=False)
        raise
    if final_snapshot:
        backups = "its automated backups deleted" if delete_automated_backups else "its automated backups kept"
        return Deletion(f"deleted {identifier} (final snapshot {final_snapshot}, {backups})", final_snapshot)
    return Deletion(f"deleted {identifier} (no final snapshot: it was a throwaway copy)")


def classify_status(identifier: str, instance: dict[str, Any] | None) -> str:
    """'available' or 'pending'; raises RestoreFailed for a status that will never recover."""
    if instance is None:
        raise RestoreFailed(f"the restored instance {identifier!r} no longer exists; someone or something deleted it")
    status = instance.get("DBInstanceStatus", "")
    if status == AVAILABLE:
        return "available"
    if status in TERMINAL_FAILURE_STATUSES:
        raise RestoreFailed(
            f"RDS put the restored instance {identifier!r} into status {status!r}, from which it does not "
            "recover by itself; see the instance's events in the RDS console"
        )
    return "pending"


def presence(identifier: str) -> str:
    """What RDS shows of an instance right now, in words: a cause must describe the world as it is."""
    instance = find_instance(identifier)
    if instance is None:
        return f"{identifier} no longer exists"
    status = instance.get("DBInstanceStatus", "unknown")
    if status == "deleting":
        return f"{identifier} is being deleted (status deleting)"
    return f"{identifier} was NOT deleted: it still exists (status {status})"
