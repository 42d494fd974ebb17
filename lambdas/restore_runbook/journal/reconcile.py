"""RUNNING records of executions that have ended, closed with the execution's real outcome.

A success whose end record could not be written (RecordSuccess failed; ReleaseWithoutRecord
released the lock and notified) and a failure whose RecordFailure failed leave their record
RUNNING although the execution is over. Two places repair such a record, with this same code: the
status-change function, which EventBridge calls whenever an execution of the stack ends, and
`restorectl status`, for a record whose event was lost. Each asks Step Functions
(DescribeExecution) how the execution really ended; a record whose execution still runs is left
alone. The repaired record says it was reconciled, by whom and when, and the lock is released if
that execution still holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import InvalidInput
from restore_runbook.journal import notice
from restore_runbook.journal import table as journal
from restore_runbook.journal.abandoned import (
    ABANDONED_CAUSES,
    ABANDONED_ERRORS,
    ABANDONED_STATUSES,
    find_record,
    iso_millis,
    keep_locks_if_mid_change,
    last_state,
    locks_of,
    record_abandoned,
    workflow_of,
)
from restore_runbook.journal.abandoned import left_behind as abandoned_left_behind
from restore_runbook.journal.attempts import FirstAttemptUnknown, as_first_attempt, first_attempt, redrive_count
from restore_runbook.journal.lock import keep_for_recovery, release_lock
from restore_runbook.journal.notify import worth_telling
from restore_runbook.journal.records import parse_input
from restore_runbook.journal.workflows import traits_of

ENDED_STATUSES = ("SUCCEEDED", "FAILED", *ABANDONED_STATUSES)
# What the rule delivers: every end. TIMED_OUT / ABORTED never reach the workflow's own journal step.
STATUS_CHANGES = ENDED_STATUSES


def describe_execution(execution_arn: str) -> Mapping[str, Any]:
    description: Mapping[str, Any] = aws.client("stepfunctions").describe_execution(executionArn=execution_arn)
    return description


def _iso(moment: Any) -> str | None:
    return clock.isoformat(moment) if isinstance(moment, datetime) else None


def _seconds(description: Mapping[str, Any]) -> int | None:
    start, stop = description.get("startDate"), description.get("stopDate")
    if isinstance(start, datetime) and isinstance(stop, datetime):
        return round((stop - start).total_seconds())
    return None


def _already_notified(output: Any) -> bool:
    """ReleaseWithoutRecord notifies the success itself and says so in the execution's output."""
    release = output.get("journal_release") if isinstance(output, dict) else None
    return bool(isinstance(release, dict) and release.get("notified"))


def reconcile(
    record: Mapping[str, Any],
    *,
    reconciled_by: str,
    settings: journal.JournalSettings,
    describe: Callable[[str], Mapping[str, Any]] | None = None,
    notify_missing: bool = True,
) -> dict[str, Any] | None:
    """Close `record` if it reads RUNNING and its execution has ended; None when there is nothing to do.

    `notify_missing`: send the notification the workflow's own end step could not (never a second
    one for a success that ReleaseWithoutRecord already announced).
    """
    if record.get("outcome") != journal.RUNNING or not record.get("execution_arn"):
        return None
    execution_arn, workflow = str(record["execution_arn"]), str(record.get("workflow") or "")
    description = (describe or describe_execution)(execution_arn)
    # Redriven since: the record is the first attempt's, the only one that acted (journal/attempts.py).
    redrives = redrive_count(description)
    first = first_attempt(execution_arn) if redrives else None
    if first is not None:
        if first.status not in ENDED_STATUSES:
            raise FirstAttemptUnknown(
                f"{execution_arn} was redriven {redrives} time(s), but its history shows no end of its first attempt: its "
                "record is left RUNNING and its lock as it is; look at the execution and release the lock by hand"
            )
        description = as_first_attempt(description, first)
    status = str(description.get("status"))
    if status not in ENDED_STATUSES:
        return None
    output = parse_input(description.get("output"))
    # Stopped from outside: named as the status-change function names it (record_abandoned), whatever StopExecution said.
    error = None if status == "SUCCEEDED" else ABANDONED_ERRORS.get(status) or str(description.get("error") or "States.Runtime")
    cause = None if status == "SUCCEEDED" else str(description.get("cause") or ABANDONED_CAUSES.get(status) or "")
    if redrives:
        cause = f"{cause} [redriven {redrives} time(s) since: each redriven attempt refused to act (RedriveRefused)]"
    resources = locks_of(execution_arn, workflow, dict(record), None, settings)
    left_behind = str((output or {}).get("left_behind") if isinstance(output, dict) else "") or (
        f"not recorded by the workflow (its end record could not be written); check the execution: {journal.console_link(execution_arn)}"
    )
    kept = None
    if status in ABANDONED_STATUSES:
        # Stopped from outside, and its status-change event lost: what it may have left is said from where it
        # stopped, and a lock held half-way through changing production is kept for recovery, as for its own
        # event (journal/abandoned.py).
        state = first.last_state if first else last_state(execution_arn)
        left_behind = abandoned_left_behind(workflow, execution_arn, state)
        kept = keep_locks_if_mid_change(workflow, execution_arn, state, resources, left_behind, settings)
    elif status == "FAILED" and resources and (words := traits_of(workflow).kept_when_failed_with.get(error or "")):
        why = words.format(arn=execution_arn)
        kept = [keep_for_recovery(execution_arn=execution_arn, resource=r, why=why, settings=settings) for r in resources]
        left_behind = f"{left_behind}; {why}"
    if kept is not None:
        released = kept
    else:
        released = [release_lock(execution_arn=execution_arn, resource=r, settings=settings) for r in resources]
    lock = "; ".join(released) or "no lock held by this execution any more"
    now = clock.isoformat(clock.now())
    source = "GetExecutionHistory (the first attempt's end)" if first is not None else "DescribeExecution"
    reconciled = {"by": reconciled_by, "at": now, "was": journal.RUNNING, "source": source}
    worth = notify_missing and not (status == "SUCCEEDED" and _already_notified(output)) and worth_telling(workflow, status)
    marks = notice.opening_marks(worth, settings)
    key = journal.key_of(record)
    try:
        journal.table(settings).update_item(
            Key=key,
            UpdateExpression=(
                "SET outcome = :outcome, finished_at = :finished, duration_seconds = :seconds, #error = :error, "
                "cause = :cause, left_behind = :left, #result = :result, lock_release = :lock, reconciled = :reconciled, "
                "notice = :notice, notice_at = :notice_at, notice_by = :notice_by"
            ),
            # Two reconcilers (the event and a person running status) may meet: the first one closes it.
            ConditionExpression="outcome = :running",
            ExpressionAttributeNames={"#error": "error", "#result": "result"},
            ExpressionAttributeValues=journal.to_item(
                {
                    ":outcome": status,
                    ":finished": _iso(description.get("stopDate")) or now,
                    ":seconds": _seconds(description),
                    ":error": error,
                    ":cause": cause,
                    ":left": left_behind,
                    ":result": output if status == "SUCCEEDED" else None,
                    ":lock": lock,
                    ":reconciled": reconciled,
                    ":running": journal.RUNNING,
                    **marks,
                }
            ),
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    closed = {"workflow": workflow, "execution_arn": execution_arn, "outcome": status, "error": error, "cause": cause}
    message = notice.message_of({**closed, "left_behind": left_behind, "reconciled": reconciled})
    notified = marks[":notice"] == notice.PENDING and notice.send(key, message, settings, claim=marks[":notice_by"])
    return {"execution_arn": execution_arn, "workflow": workflow, "outcome": status, "lock": lock, "notified": notified, **reconciled}


def reconcile_ended(
    event: dict[str, Any],
    settings: journal.JournalSettings,
    state_machine_prefix: str,
    reconciled_by: str,
    describe: Callable[[str], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A SUCCEEDED or FAILED status change (or any end of an execution redriven since): the
    execution's record is closed if it still reads RUNNING."""
    detail = event.get("detail") or {}
    execution_arn = str(detail["executionArn"])
    workflow = workflow_of(str(detail["stateMachineArn"]), state_machine_prefix)
    record = find_record(workflow, execution_arn, iso_millis(detail.get("startDate")), settings)
    done = reconcile(record, reconciled_by=reconciled_by, settings=settings, describe=describe) if record else None
    if done is None:
        why = "no start record" if record is None else f"the record already reads {record.get('outcome')}"
        answer = {"workflow": workflow, "execution_arn": execution_arn, "status": detail.get("status"), "reconciled": False, "why": why}
        if record is None:
            return answer
        # A notice whose publish failed after its write (the end step's, or an earlier invocation's) is sent now,
        # unless ReleaseWithoutRecord announced that success itself.
        output = parse_input((describe or describe_execution)(execution_arn).get("output"))
        key = journal.key_of(record)
        return {**answer, "notice": notice.resend_if_lost(key, settings, announced=_already_notified(output))}
    return {**done, "status": detail.get("status"), "reconciled": True}


def record_status_change(
    event: dict[str, Any], settings: journal.JournalSettings, state_machine_prefix: str, reconciled_by: str
) -> dict[str, Any]:
    """The status-change function: journal an abandoned execution, or repair the record of one that ended.

    An execution redriven since (its first attempt's event may arrive late, or the redriven attempt's
    own end arrives) is journaled as its first attempt ended, once: a record already closed is left
    as it is, and one still RUNNING is closed as `reconcile` closes it, from the first attempt."""
    detail = event.get("detail") or {}
    status = detail.get("status")
    if status not in ENDED_STATUSES or not detail.get("executionArn") or not detail.get("stateMachineArn"):
        raise InvalidInput(f"expected a Step Functions status change to {' or '.join(ENDED_STATUSES)}, got {detail!r}")
    description = describe_execution(str(detail["executionArn"]))
    if status in ABANDONED_STATUSES and not redrive_count(description):
        return record_abandoned(event, settings, state_machine_prefix)
    return reconcile_ended(event, settings, state_machine_prefix, reconciled_by, describe=lambda _arn: description)
