"""Deletion protection for the instance production runs on after a cutover, and lifting it for a rollback.

Its own step (ProtectNewProduction) with its own role: no health or read step may modify RDS.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, rds
from restore_runbook.common.errors import UnsafeOperation


def protect_new_production(instance: str | None, source: str | None) -> dict[str, Any]:
    """Turn deletion protection on for the instance production now uses. Never raises: the cutover succeeded.

    Returns {"instance", "enabled", "detail"}; a failure (e.g. missing rds:ModifyDBInstance) is reported, and the
    success record says so, rather than rolling back a healthy cutover.
    """
    if not instance:
        return {"instance": None, "enabled": False, "detail": "not turned on: the cutover record names no target instance"}
    if instance == source:
        return {"instance": instance, "enabled": False, "detail": f"not changed: {instance} is the source instance"}
    try:
        aws.client("rds").modify_db_instance(DBInstanceIdentifier=instance, DeletionProtection=True, ApplyImmediately=True)
    except Exception as exc:  # noqa: BLE001 - reported in the success record and notification
        code = aws.error_code(exc) or type(exc).__name__
        return {
            "instance": instance,
            "enabled": False,
            "detail": f"could NOT be turned on ({code}: {exc}); turn it on by hand: production now uses {instance}",
        }
    return {"instance": instance, "enabled": True, "detail": f"turned on for {instance}"}


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
    return {"deletion_protection": protection, "left_behind": left_behind}
