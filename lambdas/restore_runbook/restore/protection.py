"""The production fence follows a cutover: deletion protection and the production marker on the copy
production now runs on, and, for a rollback only, lifting both once no host uses the copy any more.

Its own step (ProtectNewProduction) with its own role: no health or read step may modify RDS. The marker
(`irisx-restore:role=production`) is what IAM denies every destructive and modifying role by condition
(stacks/permissions/rds.py); the rollback's delete step is the one role that may remove it.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, rds
from restore_runbook.common.errors import UnsafeOperation
from restore_runbook.contract import ROLE_PRODUCTION, TAG_ROLE


def protect_new_production(instance: str | None, source: str | None) -> dict[str, Any]:
    """Turn deletion protection on for the instance production now uses. Never raises: the cutover succeeded.

    Returns {"instance", "enabled", "detail"}; a failure (e.g. missing rds:ModifyDBInstance) is reported, and the
    success record says so, rather than rolling back a healthy cutover.
    """
    if not instance:
        return {"instance": None, "enabled": False, "detail": "not turned on: the cutover record names no target instance"}
    if instance == source:
        return {"instance": instance, "enabled": False, "marked": False, "detail": f"not changed: {instance} is the source instance"}
    try:
        found = rds.find_instance(instance)
        if found is None:
            raise UnsafeOperation(f"{instance} no longer exists")
        # Protection first, then the marker: once marked, IAM denies this role any further change to it,
        # so a retried step that finds both done does nothing.
        if not found.get("DeletionProtection"):
            aws.client("rds").modify_db_instance(DBInstanceIdentifier=instance, DeletionProtection=True, ApplyImmediately=True)
        if rds.tags_of(found).get(TAG_ROLE) != ROLE_PRODUCTION:
            aws.client("rds").add_tags_to_resource(ResourceName=found["DBInstanceArn"], Tags=[{"Key": TAG_ROLE, "Value": ROLE_PRODUCTION}])
    except Exception as exc:  # noqa: BLE001 - reported in the success record and notification
        code = aws.error_code(exc) or type(exc).__name__
        return {
            "instance": instance,
            "enabled": False,
            "marked": False,
            "detail": (
                f"could NOT be turned on, nor the marker {TAG_ROLE}={ROLE_PRODUCTION} confirmed ({code}: {exc}); "
                f"do both by hand: production now uses {instance}"
            ),
        }
    return {
        "instance": instance,
        "enabled": True,
        "marked": True,
        "detail": f"turned on for {instance}, marked {TAG_ROLE}={ROLE_PRODUCTION}",
    }


def unmark_production(identifier: str, revert: dict[str, Any] | None, *, original_endpoint: str, hosts: list[str]) -> str | None:
    """Before the rollback deletes a copy production ran on: drop its production marker, the one named exception to the fence.

    Only when the rollback's own record shows every planned host pointed at the original endpoint (never
    the copy's) and healthy there; else UnsafeOperation, the marker kept and nothing deleted. Never
    touches any other role value (a replaced production stays marked). Returns what was done, or None.
    """
    instance = rds.find_instance(identifier)
    if instance is None or rds.tags_of(instance).get(TAG_ROLE) != ROLE_PRODUCTION:
        return None
    copy_address = str((instance.get("Endpoint") or {}).get("Address") or "").lower()
    still_on_copy = hosts_not_back(revert, original_endpoint=original_endpoint, copy_address=copy_address, hosts=hosts)
    if still_on_copy:
        raise UnsafeOperation(
            f"refusing to unmark and delete {identifier}: it serves production ({TAG_ROLE}={ROLE_PRODUCTION}) and the rollback's "
            f"record does not show every host back on {original_endpoint} and healthy ({'; '.join(still_on_copy)}); "
            "the marker is kept and the copy was not deleted"
        )
    aws.client("rds").remove_tags_from_resource(ResourceName=instance["DBInstanceArn"], TagKeys=[TAG_ROLE])
    return f"removed the marker {TAG_ROLE}={ROLE_PRODUCTION} from {identifier} (every host healthy on {original_endpoint})"


def hosts_not_back(revert: dict[str, Any] | None, *, original_endpoint: str, copy_address: str, hosts: list[str]) -> list[str]:
    """Each planned host the revert record does not show pointed at the original (not the copy) and healthy there."""
    revert = revert or {}
    expect = revert.get("expect") or {}
    health = revert.get("health") or {}
    verdicts = health.get("hosts") or {}
    problems = []
    if not hosts:
        problems.append("the plan names no host")
    for host in hosts:
        target = str(expect.get(host) or "").lower()
        if target != original_endpoint.lower() or (copy_address and target == copy_address):
            problems.append(f"{host} was pointed at {target or 'nothing recorded'}")
        elif health.get("state") != "healthy" or not (verdicts.get(host) or {}).get("healthy"):
            problems.append(f"{host} is not recorded healthy on it")
    return problems


def lift_deletion_protection(identifier: str, *, source: str, tag_key: str, tag_value: str) -> str | None:
    """Before the rollback workflow deletes a copy that was cut over to: turn off the protection the cutover turned on.

    Only for an instance this tool created (management tag), never the source; anything else is left
    as it is, for the deletion's own checks to refuse. Returns what was done, or None.
    """
    if identifier == source:
        raise UnsafeOperation(f"refusing to change {identifier!r}: it is the source instance")
    instance = rds.find_instance(identifier)
    if instance is None or not instance.get("DeletionProtection") or not rds.is_managed(instance, tag_key, tag_value):
        return None
    aws.client("rds").modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    return f"turned off deletion protection on {identifier} (turned on when production was cut over to it)"


def after_successful_cutover(progress: dict[str, Any]) -> dict[str, Any]:
    """Deletion protection on the new production instance, and the words the success record leaves behind."""
    target, source = progress.get("target_instance"), progress.get("source_instance")
    protection = protect_new_production(target, source)
    left_behind = (
        f"production now runs on {target} (DB_HOST={progress.get('target_db_host')} on {', '.join(sorted(progress.get('expect') or {}))}, "
        f"cut over at {progress.get('sent_at')}); deletion protection {protection['detail']}; "
        f"the old instance {source or 'the source'} is untouched and still running. Do NOT delete {target}: "
        "to go back, run the rollback workflow"
    )
    parked = progress.get("ec2_stopped_hosts") or []
    if parked:
        left_behind += (
            f"; WARNING: app host(s) {', '.join(parked)} are stopped in EC2 (a warm pool's, say), so the cutover could not "
            f"reach them: started as they are, they would use the DB_HOST in their own .env, the old database's, and write "
            f"there; set DB_HOST={progress.get('target_db_host')} on them before they start"
        )
    return {"deletion_protection": protection, "left_behind": left_behind, "ec2_stopped_hosts": parked}
