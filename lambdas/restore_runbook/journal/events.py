"""What the journal Tasks receive from the state machines, read into the calls that do the work."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock
from restore_runbook.common.errors import InvalidInput
from restore_runbook.journal.lock import keep_for_recovery, release_lock, take_lock
from restore_runbook.journal.notify import notify
from restore_runbook.journal.records import NOT_GIVEN, finish, record_start
from restore_runbook.journal.table import JournalSettings
from restore_runbook.journal.workflows import traits_of


def _context(event: dict[str, Any]) -> tuple[str, str]:
    context = event.get("context") or {}
    workflow, execution_arn = context.get("workflow"), context.get("execution_id")
    if not workflow or not execution_arn:
        raise InvalidInput("the journal step received no context.workflow/context.execution_id; the state machine definition is broken")
    return str(workflow), str(execution_arn)


def start_from_event(event: dict[str, Any], settings: JournalSettings) -> dict[str, Any]:
    workflow, execution_arn = _context(event)
    return record_start(
        workflow=workflow,
        execution_arn=execution_arn,
        started_at=str(event.get("started_at") or clock.isoformat(clock.now())),
        execution_input=event.get("input"),
        settings=settings,
    )


def lock_from_event(event: dict[str, Any], settings: JournalSettings) -> dict[str, Any]:
    workflow, execution_arn = _context(event)
    lock_on = traits_of(workflow).lock
    if lock_on is None:
        raise InvalidInput(f"workflow {workflow!r} declares no lock (journal/workflows.py), yet its definition takes one")
    plan = event.get("plan")
    if not isinstance(plan, dict):
        raise InvalidInput("the lock step received no plan; the state machine definition is broken")
    return take_lock(
        workflow=workflow,
        execution_arn=execution_arn,
        resource=lock_on.resource(plan),
        requested_by=str(plan.get("requested_by") or NOT_GIVEN),
        settings=settings,
    )


def _planned_lock(workflow: str, plan: Any) -> str | None:
    lock_on = traits_of(workflow).lock
    if lock_on is None or not isinstance(plan, dict):
        return None
    try:
        return lock_on.resource(plan)
    except InvalidInput:
        return None


def finish_from_event(event: dict[str, Any], settings: JournalSettings) -> dict[str, Any]:
    """The finish step's input: `failure` ({error, cause[, cleanup][, recovery]}) on the failure path, `result` on success.

    A failure with `recovery` (words for the person who must put production right) left production
    half-changed: its lock is kept, marked as needing recovery, as for an execution stopped from
    outside mid-change (journal/abandoned.py), and the notice says so."""
    workflow, execution_arn = _context(event)
    failure = event.get("failure")
    lock = event.get("lock") or {}
    recovery = None
    if failure:
        outcome, error, cause = "FAILED", str(failure.get("error") or "States.Runtime"), str(failure.get("cause") or "")
        left_behind = str(failure.get("cleanup") or event.get("left_behind") or "unknown: the cleanup did not report; see the cause")
        recovery = failure.get("recovery")
    else:
        outcome, error, cause = "SUCCEEDED", None, None
        left_behind = str(event.get("left_behind") or "nothing")
    resource = lock.get("resource") if isinstance(lock, dict) else None
    details = event.get("details") or {}
    lock_resource = resource or _planned_lock(workflow, details.get("plan"))
    kept = None
    if recovery and lock_resource:
        # Marked before the record is written: every later writer of this end (a retry, the status-change
        # function's reconciliation if the record write fails) then finds the mark and leaves the lock held.
        kept = keep_for_recovery(execution_arn=execution_arn, resource=lock_resource, why=str(recovery), settings=settings)
        left_behind = f"{left_behind}; {recovery} [{kept}]"
    return finish(
        workflow=workflow,
        execution_arn=execution_arn,
        started_at=str(event.get("started_at") or ""),
        outcome=outcome,
        error=error,
        cause=cause,
        left_behind=left_behind,
        # Who holds the lock decides, not whether the lock step answered: without its answer, the
        # resource comes from the plan and the release stays conditional on this execution holding it.
        lock_resource=lock_resource,
        lock_answered=resource is not None,
        details={k: v for k, v in (event.get("details") or {}).items() if v is not None},
        result=event.get("result"),
        settings=settings,
        lock_kept=kept,
    )


def release_without_record_from_event(event: dict[str, Any], settings: JournalSettings) -> dict[str, Any]:
    """After a success whose end record could not be written: release the lock and notify all the same.

    The record stays RUNNING (unless the end step wrote it and only its publish failed: its notice
    reads failed, and this one is the notice); the status-change function or `restorectl status`
    closes it, and the failure that stopped the record is in this step's output and the notification.
    """
    workflow, execution_arn = _context(event)
    lock = event.get("lock") or {}
    resource = lock.get("resource") if isinstance(lock, dict) else None
    details = event.get("details") or {}
    released = release_lock(
        execution_arn=execution_arn,
        resource=resource or _planned_lock(workflow, details.get("plan")),
        settings=settings,
        answered=resource is not None,
    )
    journal_error = event.get("journal_failure") or {}
    left_behind = str(event.get("left_behind") or "nothing")
    note = (
        f"{left_behind} [the journal's end record could NOT be written ({journal_error.get('Error', 'unknown error')}), "
        "or only its notice failed; a record still RUNNING is closed with the execution's real outcome when the execution "
        "ends, or by restorectl status]"
    )
    notified = notify(
        workflow=workflow, execution_arn=execution_arn, outcome="SUCCEEDED", error=None, cause=None, left_behind=note, settings=settings
    )
    return {"outcome": "SUCCEEDED", "lock": released, "notified": notified, "journal": "end record not written"}
