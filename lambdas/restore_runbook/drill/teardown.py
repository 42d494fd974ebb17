"""Deleting a drill's temporary copy: on every path, tag-guarded, no final snapshot, automated backups deleted.

One idempotent step, called in a Wait loop until the copy is gone: it deletes the copy when it
exists and is not already being deleted (again, if RDS refused while the copy was still being
created), and reports `done` once RDS no longer knows the name. It refuses, in code, the source,
an instance without the management tag, one not marked as a drill, and one another execution
created; the IAM policy repeats the fence with tag conditions.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import TeardownFailed, UnsafeOperation
from restore_runbook.settings import RunbookSettings

POLL_SECONDS = 60
# RDS refuses to delete in these states for a while; the next look tries again.
RETRY_LATER_CODES = ("InvalidDBInstanceState", "InvalidDBInstanceStateFault")


def guard(instance: dict[str, Any], *, source: str, settings: RunbookSettings, execution_id: str | None) -> None:
    """Raise UnsafeOperation unless `instance` is a drill copy this tool made (and, given an id, this execution's)."""
    identifier = instance.get("DBInstanceIdentifier")
    if identifier == source:
        raise UnsafeOperation(f"refusing to delete {identifier!r}: it is the source instance")
    tags = rds.tags_of(instance)
    if tags.get(rds.TAG_ROLE) in rds.PROTECTED_ROLES:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it is marked {rds.TAG_ROLE}={tags[rds.TAG_ROLE]}, so it serves or served production"
        )
    if tags.get(settings.management_tag_key) != settings.management_tag_value:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it does not carry the tag {settings.management_tag_key}="
            f"{settings.management_tag_value}, so this tool did not create it"
        )
    if tags.get(rds.TAG_PURPOSE) != rds.PURPOSE_DRILL:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it is not tagged {rds.TAG_PURPOSE}={rds.PURPOSE_DRILL}, so it is no drill's copy"
        )
    if execution_id is not None and tags.get(rds.TAG_EXECUTION) != execution_id:
        raise UnsafeOperation(
            f"refusing to delete {identifier!r}: it was created by execution {tags.get(rds.TAG_EXECUTION)!r}, not by this drill"
        )


def delete_drill_copy(instance: dict[str, Any], *, source: str, settings: RunbookSettings, execution_id: str | None) -> tuple[bool, str]:
    """One guarded delete call; returns whether RDS accepted a deletion now, and what happened, in words."""
    guard(instance, source=source, settings=settings, execution_id=execution_id)
    identifier = str(instance["DBInstanceIdentifier"])
    if instance.get("DBInstanceStatus") in ("deleting", "deleted"):
        return False, f"{identifier} is being deleted"
    try:
        aws.client("rds").delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    except Exception as exc:
        code = aws.error_code(exc)
        if code == "DBInstanceNotFound":
            return False, f"{identifier} disappeared before deletion"
        if code in RETRY_LATER_CODES:
            return False, f"RDS cannot delete {identifier} yet ({instance.get('DBInstanceStatus')}); trying again at the next look"
        raise
    return True, f"deletion of {identifier} started (no final snapshot, automated backups deleted: it was a throwaway copy)"


def tear_down(plan: dict[str, Any] | None, progress: dict[str, Any] | None, execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    now = clock.now()
    progress = dict(progress or {})
    target = (plan or {}).get("target_instance")
    source = str((plan or {}).get("source_instance") or settings.source_instance)
    attempts = int(progress.get("attempts", 0)) + 1
    started_at = progress.get("started_at") or clock.isoformat(now)
    progress.update(target_instance=target, started_at=started_at, attempts=attempts)
    instance = rds.find_instance(target) if target else None
    if instance is None:
        detail = progress.get("detail")
        gone = (
            f"{target} deleted"
            if detail
            else (f"{target} does not exist (never created, or already gone)" if target else "nothing was created")
        )
        return {**progress, "state": "done", "finished_at": clock.isoformat(now), "detail": gone, "next_wait_seconds": 0}
    requested, detail = delete_drill_copy(instance, source=source, settings=settings, execution_id=execution_id)
    if requested and not progress.get("delete_requested_at"):
        # From here on the copy is going away: the end of its time alive beyond the restore.
        progress["delete_requested_at"] = clock.isoformat(now)
    max_attempts = max(1, settings.drill_teardown_minutes * 60 // POLL_SECONDS)
    if attempts > max_attempts:
        raise TeardownFailed(
            f"the drill's copy {target} still exists ({instance.get('DBInstanceStatus')}) {settings.drill_teardown_minutes} minutes "
            f"after its deletion was asked for ({detail}); the daily sweep deletes it, or delete it by hand "
            f"(no final snapshot needed: it is a throwaway copy)"
        )
    return {**progress, "state": "pending", "detail": detail, "next_wait_seconds": POLL_SECONDS}
