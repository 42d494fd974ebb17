"""Undoing a swap that failed: the copy away from production's name, the original back to it.

One step, run in a loop by the state machine (Wait -> RenameBack -> Choice): each time it looks at
both instances by resource id and takes the one next action the world needs, or says it is done.
That way it also finishes a swap that was cut off half-way (a rename accepted whose answer was lost,
a copy already holding the name) and is safe to retry. The copy is never deleted here: the app may
have written to it; it is renamed back to its temporary name and unmarked as production.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock, rds
from restore_runbook.common.errors import RenameFailed, RollbackFailed
from restore_runbook.inplace import rename
from restore_runbook.settings import RunbookSettings

ROLE_FAILED_COPY = "failed-copy"


def _settled(instance: dict[str, Any] | None) -> bool:
    return instance is not None and instance.get("DBInstanceStatus") == rds.AVAILABLE and not instance.get("PendingModifiedValues")


def where_instances_stand(plan: dict[str, Any], execution_id: str, settings: RunbookSettings) -> str:
    original = rename.by_resource_id(plan["production_resource_id"])
    copy = rename.find_copy(execution_id, settings)
    holder = rds.find_instance(plan["production_instance"])
    holder_text = "nobody" if holder is None else rename.describe_instance(holder)
    return (
        f"the original production (resource id {plan['production_resource_id']}) is {rename.describe_instance(original)}; "
        f"the restored copy (created as {plan['temporary_instance']}) is {rename.describe_instance(copy)}; "
        f"the name {plan['production_instance']} is held by {holder_text}"
    )


def production_name_put_right(plan: dict[str, Any], execution_id: str, settings: RunbookSettings) -> bool:
    """Whether production's name is on the original production again, settled and not marked as
    replaced, and this execution's copy neither holds it, nor is being renamed, nor is marked as
    production: only then may another workflow act on production's name and find what it expects.
    A swap left any other way keeps production's lock for a person to release."""
    original = rename.by_resource_id(plan["production_resource_id"])
    copy = rename.find_copy(execution_id, settings)
    if original is None or not _settled(original) or original["DBInstanceIdentifier"] != plan["production_instance"]:
        return False
    if rds.tags_of(original).get(rds.TAG_ROLE) == rds.ROLE_REPLACED_PRODUCTION:
        return False
    if copy is None:
        return True
    return (
        copy["DBInstanceIdentifier"] != plan["production_instance"]
        and not rename.rename_requested(copy, plan["production_instance"])
        and rds.tags_of(copy).get(rds.TAG_ROLE) != rds.ROLE_PRODUCTION
    )


def rename_back(plan: dict[str, Any], progress: dict[str, Any] | None, execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    progress = dict(progress or {"attempts": 0, "stable_reads": 0, "actions": [], "started_at": clock.isoformat(clock.now())})
    attempts = int(progress.get("attempts", 0)) + 1
    actions: list[str] = list(progress.get("actions") or [])
    production, temporary = plan["production_instance"], plan["temporary_instance"]
    original = rename.by_resource_id(plan["production_resource_id"])
    copy = rename.find_copy(execution_id, settings)
    if original is None:
        raise RollbackFailed(f"the original production (resource id {plan['production_resource_id']}) no longer exists")

    def pending(note: str, stable: int = 0) -> dict[str, Any]:
        if attempts >= 2 * settings.rename_poll_max_attempts:
            raise RollbackFailed(
                f"renaming back did not finish after {attempts} checks; {where_instances_stand(plan, execution_id, settings)}"
            )
        return {
            **progress,
            "attempts": attempts,
            "stable_reads": stable,
            "actions": actions,
            "state": "pending",
            "note": note,
            "next_wait_seconds": settings.rename_poll_seconds,
        }

    for instance in (original, copy):
        if instance is not None and not _settled(instance):
            if instance.get("DBInstanceStatus") in rds.TERMINAL_FAILURE_STATUSES:
                raise RollbackFailed(
                    f"{rename.describe_instance(instance)} went into a status it does not leave by itself; "
                    f"{where_instances_stand(plan, execution_id, settings)}"
                )
            return pending(f"waiting for {rename.describe_instance(instance)} to settle")
    # One `available` read can precede a rename's reboot: act (and finish) only on several in a row.
    stable = int(progress.get("stable_reads", 0)) + 1
    if stable < settings.rename_stable_reads:
        return pending("checking that both instances have settled", stable)

    try:
        if copy is not None and copy["DBInstanceIdentifier"] == production:
            rename.tag(copy, {rds.TAG_ROLE: ROLE_FAILED_COPY})
            rename.rename(copy, temporary, why="the restored copy out of production's name")
            actions.append(f"renamed the restored copy {production} -> {temporary}")
            return pending("the copy is being renamed away")
        if original["DBInstanceIdentifier"] != production:
            holder = rds.find_instance(production)
            if holder is not None:
                raise RollbackFailed(f"the name {production} is held by {rename.describe_instance(holder)}, not by this execution's copy")
            rename.rename(original, production, why="the original production back to its name")
            actions.append(f"renamed the original production {original['DBInstanceIdentifier']} -> {production}")
            return pending("the original is being renamed back")
    except RenameFailed as exc:
        raise RollbackFailed(f"{exc}; {where_instances_stand(plan, execution_id, settings)}") from exc

    # Production again: the marker says so, and the copy is no longer production.
    rename.tag(original, {rds.TAG_ROLE: rds.ROLE_PRODUCTION})
    if copy is not None and rds.tags_of(copy).get(rds.TAG_ROLE) != ROLE_FAILED_COPY:
        rename.tag(copy, {rds.TAG_ROLE: ROLE_FAILED_COPY})
    return {
        **progress,
        "attempts": attempts,
        "stable_reads": stable,
        "actions": actions,
        "state": "done",
        "finished_at": clock.isoformat(clock.now()),
        "copy": copy["DBInstanceIdentifier"] if copy else None,
        "next_wait_seconds": 0,
    }
