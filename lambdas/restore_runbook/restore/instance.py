"""Starting a restore to a new instance, and following it until it is available."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import RestoreFailed, RestoreTimedOut, TargetAlreadyExists
from restore_runbook.restore.request import RestorePlan
from restore_runbook.settings import RunbookSettings


def next_wait_seconds(elapsed_seconds: float, settings: RunbookSettings) -> int:
    """How long to wait before the next look at a restore that is still in progress.

    Sparse while the restore is far from its expected end, dense around it: waiting half the
    remaining expected time (capped) keeps state transitions few, while the floor near and past
    the expected end bounds how late the workflow notices the instance became available.
    """
    floor, cap = settings.restore_poll_initial_seconds, settings.restore_poll_max_seconds
    remaining = settings.expected_restore_minutes * 60 - elapsed_seconds
    if remaining > 0:
        return int(min(cap, max(floor, remaining / 2)))
    # Past the expected end: wait an eighth of the overrun, so a restore running late is noticed
    # within about 12% of its lateness and a very slow one is not polled hundreds of times.
    return int(min(cap, max(floor, -remaining / 8)))


def management_tags(plan: RestorePlan, execution_id: str, settings: RunbookSettings) -> list[dict[str, str]]:
    drill = plan.purpose == rds.PURPOSE_DRILL
    return [
        {"Key": settings.management_tag_key, "Value": settings.management_tag_value},
        {"Key": rds.TAG_WORKFLOW, "Value": "drill" if drill else "restore"},
        {"Key": rds.TAG_EXECUTION, "Value": execution_id},
        {"Key": rds.TAG_SOURCE, "Value": plan.source_instance},
        {"Key": rds.TAG_RESTORE_POINT, "Value": plan.restore_point},
        # The marker cutover, rollback and the drill's teardown and sweep read; IAM can scope on it too.
        *([{"Key": rds.TAG_PURPOSE, "Value": rds.PURPOSE_DRILL}] if drill else []),
    ]


def start_restore(plan: RestorePlan, execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    existing = rds.find_instance(plan.target_instance)
    restore_point = plan.restore_point
    if existing is not None:
        tags = rds.tags_of(existing)
        if tags.get(rds.TAG_EXECUTION) != execution_id or tags.get(settings.management_tag_key) != settings.management_tag_value:
            raise TargetAlreadyExists(
                f"{plan.target_instance!r} appeared after the input check and was not created by this execution; refusing to touch it"
            )
        # A retry of this step after RDS accepted the first call: carry on with our own restore.
        already_started = True
        restore_point = tags.get(rds.TAG_RESTORE_POINT, restore_point)
        status = existing.get("DBInstanceStatus", "creating")
    else:
        already_started = False
        source = rds.describe_source(plan.source_instance)
        if plan.use_latest_restorable_time and source.get("LatestRestorableTime"):
            # RDS restores to the latest restorable time as of this call; record that, not the check's.
            restore_point = clock.precise(source["LatestRestorableTime"])
        plan_now = RestorePlan(**{**plan.to_state(), "restore_point": restore_point})
        parameters: dict[str, Any] = {
            **rds.restore_settings_from(source),
            "Tags": rds.merge_tags(
                rds.copied_tags(source, management_tag_key=settings.management_tag_key), management_tags(plan_now, execution_id, settings)
            ),
        }
        client = aws.client("rds")
        if plan.mode == "point-in-time":
            if plan.use_latest_restorable_time:
                parameters["UseLatestRestorableTime"] = True
            else:
                parameters["RestoreTime"] = clock.parse_utc(plan.restore_time or "")
            response = client.restore_db_instance_to_point_in_time(
                SourceDBInstanceIdentifier=plan.source_instance,
                TargetDBInstanceIdentifier=plan.target_instance,
                **parameters,
            )
        else:
            response = client.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=plan.target_instance,
                DBSnapshotIdentifier=plan.snapshot_id,
                **parameters,
            )
        status = response["DBInstance"].get("DBInstanceStatus", "creating")

    return {
        "target_instance": plan.target_instance,
        "restore_point": restore_point,
        "started_at": clock.isoformat(clock.now()),
        "already_started": already_started,
        "status": status,
        "state": "pending",
        "attempts": 0,
        "next_wait_seconds": next_wait_seconds(0, settings),
    }


def describe_restore(progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    target = progress["target_instance"]
    attempts = int(progress.get("attempts", 0)) + 1
    instance = rds.find_instance(target)
    state = rds.classify_status(target, instance)
    if instance is None:  # classify_status names a vanished copy; this keeps that promise in the types too
        raise RestoreFailed(f"the restored instance {target} no longer exists; nothing is left to validate")
    now = clock.now()
    elapsed = (now - clock.parse_utc(progress["started_at"])).total_seconds()
    updated = {**progress, "attempts": attempts, "status": instance.get("DBInstanceStatus"), "state": state}
    if state == "available":
        endpoint = instance.get("Endpoint", {})
        updated.update(
            endpoint={"address": endpoint.get("Address"), "port": endpoint.get("Port")},
            available_at=clock.isoformat(now),
            restore_seconds=round(elapsed),
            next_wait_seconds=0,
        )
        return updated
    if attempts >= settings.restore_poll_max_attempts:
        raise RestoreTimedOut(
            f"the restored instance {target!r} is still {instance.get('DBInstanceStatus')!r} after "
            f"{attempts} checks over {round(elapsed / 60)} minutes, the limit set by restore_poll_max_attempts; "
            "RDS restores of this size usually finish within 10-30 minutes, so look at the instance's events"
        )
    updated["next_wait_seconds"] = next_wait_seconds(elapsed, settings)
    return updated


NOTHING_CREATED = "nothing was created"


def clean_up_failed_restore(
    plan: dict[str, Any] | None,
    execution_id: str,
    settings: RunbookSettings,
    *,
    reverted_cutover: dict[str, Any] | None = None,
    restore_started: bool = False,
    retried: bool = False,
) -> str:
    """Remove what this execution created, and say in words what was done.

    `reverted_cutover` is the record of the revert that put the API hosts back after this
    execution's cutover: the app ran on the copy, if only for moments, so it is no throwaway and
    goes with a final snapshot, its automated backups kept. An in-place restore's plan also names
    its final snapshot of production, which is kept: the words say whether it exists (its start
    step may have failed after RDS accepted it). `restore_started` (StartRestore answered) tells a
    copy deleted since, by an earlier attempt of this cleanup say, from one never made; `retried`
    (this is a retry of the cleanup) says a missing copy may be one an earlier attempt deleted."""
    done = _clean_up_copy(plan, execution_id, settings, reverted_cutover, restore_started, retried)
    final_snapshot = (plan or {}).get("final_snapshot")
    if not final_snapshot:
        return done
    if done == NOTHING_CREATED:
        done = "no restored copy was created"
    return f"{done}; {_final_snapshot_left(str(final_snapshot), execution_id)}"


def _final_snapshot_left(snapshot_id: str, execution_id: str) -> str:
    snapshot = rds.snapshot_named(snapshot_id)
    if snapshot is None:
        return f"no final snapshot was taken ({snapshot_id} does not exist)"
    if rds.tags_of(snapshot).get(rds.TAG_EXECUTION) != execution_id:
        return f"left snapshot {snapshot_id} untouched: this execution did not take it"
    return f"kept the final snapshot {snapshot_id} of production ({snapshot.get('Status')}): production as it was before this restore"


def _clean_up_copy(
    plan: dict[str, Any] | None,
    execution_id: str,
    settings: RunbookSettings,
    reverted_cutover: dict[str, Any] | None,
    restore_started: bool,
    retried: bool,
) -> str:
    target = (plan or {}).get("target_instance")
    if not target:
        return NOTHING_CREATED
    served = reverted_cutover is not None
    final_snapshot = _final_snapshot_of_served_copy(str(target), reverted_cutover) if served else None
    instance = rds.find_instance(target)
    if instance is None:
        # A copy the cutover ran the app on, or one StartRestore answered for, existed: it was deleted since
        # (by an earlier attempt of this step, or by someone else), so the words say so, not "nothing was created".
        if final_snapshot:
            return _served(rds.already_deleted(target, final_snapshot).outcome, reverted_cutover)
        if restore_started:
            return (
                f"{target} no longer exists: this execution created it, and an earlier attempt of this cleanup (or someone else) deleted it"
            )
        if retried:
            # No restore answered (StartRestore failed or never ran): a copy its request made may be one an attempt of this
            # cleanup then deleted, which a retry cannot tell from none.
            return (
                f"{target} does not exist, so nothing is left to delete; an earlier attempt of this cleanup may have deleted it "
                "(if this execution's restore request ever reached RDS)"
            )
        return NOTHING_CREATED
    if rds.tags_of(instance).get(rds.TAG_EXECUTION) != execution_id:
        return f"left {target} untouched: this execution did not create it"
    if (plan or {}).get("keep_on_failure"):
        return f"kept {target} for inspection (keep_on_failure); delete it when done"
    done = rds.delete_managed_instance(
        target,
        source=str((plan or {}).get("source_instance")),
        tag_key=settings.management_tag_key,
        tag_value=settings.management_tag_value,
        execution_id=execution_id,
        final_snapshot=final_snapshot,
        delete_automated_backups=not served,
    ).outcome
    return _served(done, reverted_cutover) if served else done


def _final_snapshot_of_served_copy(target: str, reverted_cutover: dict[str, Any] | None) -> str:
    """Named by when the revert pointed the hosts back (the copy as the app left it): the same name
    in every attempt of the cleanup, so a retry finds the snapshot the first attempt's delete took."""
    sent_at = (reverted_cutover or {}).get("sent_at")
    return rds.final_snapshot_name(target, clock.parse_utc(str(sent_at)) if sent_at else None)


def _served(done: str, reverted_cutover: dict[str, Any] | None) -> str:
    hosts = ", ".join(sorted((reverted_cutover or {}).get("hosts") or [])) or "the API hosts"
    return f"{done}: this execution's cutover ran the app on it until {hosts} were pointed back, so it may hold what the app wrote"
