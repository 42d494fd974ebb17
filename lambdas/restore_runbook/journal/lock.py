"""The lock on the resource a workflow changes: a conditional write on one key, taken over from a
holder that no longer runs, released by its holder. A holder that ended in the middle of changing
production keeps it, marked as needing recovery, until a person releases it (`restorectl unlock`).

A recordings lock (`s3:<bucket>/<prefix>`) also has an entry in its bucket's registry of held
prefixes (prefix_registry.py, taken by recordings/locks.py): every release here releases that
entry too, first, so a release that stops half-way leaves the lock, which a retry or the
reconciler finds, rather than an entry nothing points to."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import OperationInProgress
from restore_runbook.journal import prefix_registry
from restore_runbook.journal.table import (
    INDEX_PK,
    INDEX_SK,
    LOCK_KIND,
    PK,
    RUNNING,
    SK,
    JournalSettings,
    console_link,
    execution_name,
    lock_pk,
    table,
)
from restore_runbook.journal.workflows import lock_label


def _holder_is_running(holder: str) -> bool:
    try:
        status = aws.client("stepfunctions").describe_execution(executionArn=holder)["status"]
    except Exception as exc:
        if aws.error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return False
        raise
    return bool(status == RUNNING)


def take_lock(*, workflow: str, execution_arn: str, resource: str, requested_by: str, settings: JournalSettings) -> dict[str, Any]:
    """Take the lock on `resource`, or raise OperationInProgress naming the execution that holds it.

    A lock whose holder is no longer RUNNING (it ended without releasing, or never existed) is
    taken over with a write conditional on that same holder, so two takers cannot both win.
    """
    items = table(settings)
    now = clock.isoformat(clock.now())
    item = {
        PK: lock_pk(resource),
        SK: "LOCK",
        INDEX_PK: LOCK_KIND,
        INDEX_SK: resource,
        "resource": resource,
        "holder": execution_arn,
        "workflow": workflow,
        "acquired_at": now,
        "requested_by": requested_by,
    }
    try:
        items.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR holder = :me",
            ExpressionAttributeValues={":me": execution_arn},
        )
        return {"resource": resource, "holder": execution_arn, "acquired_at": now, "took_over_from": None}
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
    current = items.get_item(Key={PK: lock_pk(resource), SK: "LOCK"}, ConsistentRead=True).get("Item")
    if current is None:  # released between the two calls: try once more, plainly
        return take_lock(workflow=workflow, execution_arn=execution_arn, resource=resource, requested_by=requested_by, settings=settings)
    holder = str(current.get("holder"))
    if current.get("needs_recovery"):
        # The holder ended mid-change (journal/abandoned.py): the resource is in a state no workflow
        # was written to start from, so a person says when it is put right.
        raise OperationInProgress(
            f"{current.get('workflow')} execution {execution_name(holder)} ended in the middle of changing {lock_label(resource)} "
            f"and left it needing recovery: {current['needs_recovery']} Once it is put right, release it with "
            f"`restorectl unlock {resource}`, then start again: {console_link(holder)}"
        )
    if _holder_is_running(holder):
        raise OperationInProgress(
            f"{current.get('workflow')} execution {execution_name(holder)} (started {current.get('acquired_at')}, "
            f"requested by {current.get('requested_by')}) is already working on {lock_label(resource)}; wait for it to finish "
            f"or stop it, then start again: {console_link(holder)}"
        )
    try:
        items.put_item(
            Item=item,
            ConditionExpression="holder = :old",
            ExpressionAttributeValues={":old": holder},
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            raise OperationInProgress(
                f"another execution took the lock on {lock_label(resource)} at the same moment; only one may proceed"
            ) from exc
        raise
    return {"resource": resource, "holder": execution_arn, "acquired_at": now, "took_over_from": holder}


def release_lock(*, execution_arn: str, resource: str | None, settings: JournalSettings, answered: bool = True) -> str:
    """Release the lock only if this execution holds it; say in words what happened.

    `answered=False`: the lock step never reported a lock (it failed, or its answer was lost after
    the write), so whether this execution holds one is asked of the table, not of the step.
    """
    if not resource:
        return "no lock was taken"
    # A lock kept for recovery is released by a person (`restorectl unlock`), never by a second or late
    # writer of this execution's end that did not see where it stopped.
    if _kept_for_recovery(resource, execution_arn, settings):
        return _kept_words(resource)
    registry_entry = prefix_registry.release(resource, execution_arn, settings)
    try:
        table(settings).delete_item(
            Key={PK: lock_pk(resource), SK: "LOCK"},
            ConditionExpression="holder = :me AND attribute_not_exists(needs_recovery)",
            ExpressionAttributeValues={":me": execution_arn},
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            # Marked for recovery by another writer of this end between the read above and this delete.
            if _kept_for_recovery(resource, execution_arn, settings):
                return _kept_words(resource)
            if registry_entry:
                return f"released {lock_label(resource)} from the prefixes held on its bucket (its lock was no longer this execution's)"
            if not answered:
                return "no lock was taken"
            return f"lock on {lock_label(resource)} not held by this execution; left as it is"
        raise
    if not answered:
        return f"released the lock on {lock_label(resource)} (taken, though the lock step's answer was lost)"
    return f"released the lock on {lock_label(resource)}"


def _kept_for_recovery(resource: str, execution_arn: str, settings: JournalSettings) -> bool:
    held = table(settings).get_item(Key={PK: lock_pk(resource), SK: "LOCK"}, ConsistentRead=True).get("Item") or {}
    return bool(held.get("holder") == execution_arn and held.get("needs_recovery"))


def _kept_words(resource: str) -> str:
    return (
        f"KEPT the lock on {lock_label(resource)}: it is marked as needing recovery, so only a person releases it "
        f"(`restorectl unlock {resource}`)"
    )


def keep_for_recovery(*, execution_arn: str, resource: str, why: str, settings: JournalSettings, replaces: str | None = None) -> str:
    """Keep this execution's lock after it ended, marked as needing recovery, so no workflow starts
    on a resource left half-changed (taking the lock is refused until `restorectl unlock`). A lock
    already marked keeps its words (another writer of this end saw where it stopped), unless they
    begin with `replaces`: the words of a writer that could only guess."""
    condition = "holder = :me AND (attribute_not_exists(needs_recovery)" + (" OR begins_with(needs_recovery, :guess))" if replaces else ")")
    try:
        table(settings).update_item(
            Key={PK: lock_pk(resource), SK: "LOCK"},
            UpdateExpression="SET needs_recovery = :why, needs_recovery_since = :now",
            ConditionExpression=condition,
            ExpressionAttributeValues={
                ":why": why,
                ":me": execution_arn,
                ":now": clock.isoformat(clock.now()),
                **({":guess": replaces} if replaces else {}),
            },
        )
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
        if not _kept_for_recovery(resource, execution_arn, settings):
            return f"lock on {lock_label(resource)} not held by this execution; left as it is"
    return (
        f"KEPT the lock on {lock_label(resource)}, marked as needing recovery: no workflow may start on it until a person "
        f"puts it right and runs `restorectl unlock {resource}`"
    )


def unlock(*, resource: str, settings: JournalSettings) -> dict[str, Any]:
    """Release a lock by hand (restorectl unlock): refused while its holder still runs."""
    items = table(settings)
    current = items.get_item(Key={PK: lock_pk(resource), SK: "LOCK"}, ConsistentRead=True).get("Item")
    if current is None:
        return {"resource": resource, "released": False, "detail": f"no lock is held on {lock_label(resource)}"}
    holder = str(current.get("holder"))
    if _holder_is_running(holder):
        raise OperationInProgress(
            f"{current.get('workflow')} execution {execution_name(holder)} still runs and holds {lock_label(resource)}; "
            f"stop it first if it must not go on: {console_link(holder)}"
        )
    prefix_registry.release(resource, holder, settings)
    try:
        items.delete_item(
            Key={PK: lock_pk(resource), SK: "LOCK"}, ConditionExpression="holder = :seen", ExpressionAttributeValues={":seen": holder}
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            raise OperationInProgress(f"the lock on {lock_label(resource)} changed hands while being released; look again") from exc
        raise
    return {
        "resource": resource,
        "released": True,
        "holder": holder,
        "needed_recovery": current.get("needs_recovery"),
        "detail": f"released the lock on {lock_label(resource)} held by {execution_name(holder)}",
    }
