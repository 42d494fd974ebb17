"""The swap's two renames, and following a renamed instance by its DbiResourceId until it has settled.

A rename is asynchronous and reboots the instance: looked up by name it can be "not found" (old and
new), and it can read `available` just before its reboot (boto3#609, #2613). So an instance is
found by the resource id a rename does not change, and a rename is done only when the instance
carries the new name and reads `available` several times in a row (settings.rename_stable_reads).

Marks go on BEFORE each rename, so an instance never holds the production name unmarked: the old
production is tagged `replaced-production` (and keeps deletion protection on), the copy `production`.
The delete fences (common/rds.py) refuse both.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import RenameFailed, RenameTimedOut, UnsafeOperation
from restore_runbook.hosts import ssm
from restore_runbook.settings import RunbookSettings

TAG_SWAPPED_BY = "irisx-restore:swapped-by"
TAG_SWAPPED_AT = "irisx-restore:swapped-at"
SETTLING = frozenset({"renaming", "rebooting", "modifying", "backing-up", "configuring-enhanced-monitoring", "configuring-log-exports"})


def by_resource_id(resource_id: str) -> dict[str, Any] | None:
    found = aws.client("rds").describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [resource_id]}])["DBInstances"]
    return found[0] if found else None


def find_copy(execution_id: str, settings: RunbookSettings) -> dict[str, Any] | None:
    """The copy this execution restored, whatever its name is now (a rename changes the name, not the tags)."""
    for instance in rds.all_instances():
        tags = rds.tags_of(instance)
        if tags.get(rds.TAG_EXECUTION) == execution_id and tags.get(settings.management_tag_key) == settings.management_tag_value:
            return dict(instance)
    return None


def describe_instance(instance: dict[str, Any] | None) -> str:
    if instance is None:
        return "not found"
    return f"{instance['DBInstanceIdentifier']} ({instance.get('DBInstanceStatus')})"


def tag(instance: dict[str, Any], tags: dict[str, str]) -> None:
    aws.client("rds").add_tags_to_resource(ResourceName=instance["DBInstanceArn"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def rename(instance: dict[str, Any], new_name: str, *, why: str, **changes: Any) -> None:
    """One ModifyDBInstance with NewDBInstanceIdentifier and ApplyImmediately; RDS's refusal becomes RenameFailed."""
    current = instance["DBInstanceIdentifier"]
    try:
        aws.client("rds").modify_db_instance(
            DBInstanceIdentifier=current, NewDBInstanceIdentifier=new_name, ApplyImmediately=True, **changes
        )
    except Exception as exc:
        code = aws.error_code(exc)
        if not code:
            raise
        raise RenameFailed(f"RDS refused to rename {current} to {new_name} ({why}): {code}: {exc}") from exc


def new_wait(instance: dict[str, Any], expected_name: str, role: str, settings: RunbookSettings, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "role": role,
        "resource_id": instance["DbiResourceId"],
        "from_name": instance["DBInstanceIdentifier"],
        "expected_name": expected_name,
        "started_at": clock.isoformat(clock.now()),
        "attempts": 0,
        "stable_reads": 0,
        "state": "pending",
        "status": instance.get("DBInstanceStatus"),
        "next_wait_seconds": settings.rename_poll_seconds,
    }


def rename_requested(instance: dict[str, Any], new_name: str) -> bool:
    """Whether RDS already took a rename of `instance` to `new_name`: it reads `renaming`, or, in the
    moments after the call was accepted and before the status moves, still `available` with the new
    name pending. A retry that missed the second case would send a second rename, which RDS refuses,
    and that refusal would cost a whole rename-back."""
    pending = (instance.get("PendingModifiedValues") or {}).get("DBInstanceIdentifier")
    return instance.get("DBInstanceStatus") == "renaming" or (pending is not None and str(pending).lower() == new_name.lower())


def rename_production_away(
    plan: dict[str, Any], execution_id: str, settings: RunbookSettings, *, stopped_hosts: list[str], ec2_stopped_hosts: list[str]
) -> dict[str, Any]:
    """Rename production to `<name>-replaced-<time>`, deletion protection on, tagged as the replaced production.

    `stopped_hosts` are the hosts whose app was stopped: a host tagged since (an autoscaling group's,
    a warm pool's) was never read or stopped, and writes to production whatever its name, so the
    rename is refused (before anything changes) rather than split its writes between two instances.
    `ec2_stopped_hosts` were stopped in EC2 when the hosts were read: one of them counts only once it
    runs again."""
    production, replaced = plan["production_instance"], plan["replaced_instance"]
    instance = by_resource_id(plan["production_resource_id"])
    if instance is None:
        raise RenameFailed(f"production {production!r} (resource id {plan['production_resource_id']}) no longer exists")
    name, status = instance["DBInstanceIdentifier"], instance.get("DBInstanceStatus")
    already = name == replaced or (name == production and rename_requested(instance, replaced))
    if not already:
        if name != production or status != rds.AVAILABLE:
            raise RenameFailed(f"production is {describe_instance(instance)}, not {production} (available); it was not renamed")
        appeared = ssm.appeared_since(stopped_hosts, settings, known_stopped=ec2_stopped_hosts)
        if appeared:
            raise UnsafeOperation(
                f"production {production} was not renamed: app host(s) {', '.join(appeared)} appeared since the app was stopped on "
                f"{', '.join(stopped_hosts) or 'no host'}, and were never read or stopped, so they may be writing to "
                "production; check their DB_HOST, then run the in-place restore again"
            )
        tag(
            instance,
            {rds.TAG_ROLE: rds.ROLE_REPLACED_PRODUCTION, TAG_SWAPPED_BY: execution_id, TAG_SWAPPED_AT: clock.isoformat(clock.now())},
        )
        rename(instance, replaced, why="production out of the way of the restored copy", DeletionProtection=True)
    return new_wait(instance, replaced, "production-away", settings, already_started=already)


def rename_copy_to_production(plan: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    """Rename the validated copy to the production name, marked as production first."""
    production = plan["production_instance"]
    copy = find_copy(execution_id, settings)
    if copy is None:
        raise RenameFailed(f"the restored copy {plan['temporary_instance']!r} of this execution no longer exists")
    name, status = copy["DBInstanceIdentifier"], copy.get("DBInstanceStatus")
    already = name == production or (name == plan["temporary_instance"] and rename_requested(copy, production))
    if not already:
        if name != plan["temporary_instance"] or status != rds.AVAILABLE:
            raise RenameFailed(f"the restored copy is {describe_instance(copy)}, not {plan['temporary_instance']} (available)")
        holder = rds.find_instance(production)
        if holder is not None:
            raise RenameFailed(f"the name {production} is still held by {describe_instance(holder)}; the copy was not renamed")
        tag(copy, {rds.TAG_ROLE: rds.ROLE_PRODUCTION, TAG_SWAPPED_BY: execution_id, TAG_SWAPPED_AT: clock.isoformat(clock.now())})
        rename(copy, production, why="the validated copy into production's name")
    return new_wait(copy, production, "copy-to-production", settings, already_started=already)


def check_rename(progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """One look by resource id: 'done' after N consecutive available reads under the expected name."""
    attempts = int(progress.get("attempts", 0)) + 1
    instance = by_resource_id(progress["resource_id"])
    expected = progress["expected_name"]
    if instance is None:
        raise RenameFailed(f"the instance being renamed to {expected} (resource id {progress['resource_id']}) no longer exists")
    status = str(instance.get("DBInstanceStatus", ""))
    if status in rds.TERMINAL_FAILURE_STATUSES:
        raise RenameFailed(f"the instance being renamed to {expected} went into status {status!r} (now {describe_instance(instance)})")
    settled = instance["DBInstanceIdentifier"] == expected and status == rds.AVAILABLE and not instance.get("PendingModifiedValues")
    stable = int(progress.get("stable_reads", 0)) + 1 if settled else 0
    now = clock.now()
    updated = {**progress, "attempts": attempts, "stable_reads": stable, "status": status, "seen_as": instance["DBInstanceIdentifier"]}
    if stable >= settings.rename_stable_reads:
        endpoint = instance.get("Endpoint") or {}
        elapsed = (now - clock.parse_utc(progress["started_at"])).total_seconds()
        return {
            **updated,
            "state": "done",
            "finished_at": clock.isoformat(now),
            "seconds": round(elapsed),
            "endpoint": {"address": endpoint.get("Address"), "port": endpoint.get("Port")},
            "next_wait_seconds": 0,
        }
    if attempts >= settings.rename_poll_max_attempts:
        raise RenameTimedOut(
            f"{progress.get('from_name')} has not settled as {expected} after {attempts} checks "
            f"(about {round(attempts * settings.rename_poll_seconds / 60)} minutes); it is now {describe_instance(instance)}"
        )
    return {**updated, "state": "pending", "next_wait_seconds": settings.rename_poll_seconds}
