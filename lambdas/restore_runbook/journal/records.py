"""The execution records: the start record a workflow writes first, and the end record its last
Task (or, for an execution stopped from outside, abandoned.py) writes, releasing the lock and
notifying on the way. The table's layout is in table.py."""

from __future__ import annotations

import json
from typing import Any

from restore_runbook.common import aws, clock, failure
from restore_runbook.journal import notice
from restore_runbook.journal.lock import release_lock
from restore_runbook.journal.notify import worth_telling
from restore_runbook.journal.table import (
    EXECUTION_KIND,
    INDEX_PK,
    INDEX_SK,
    PK,
    RUNNING,
    SK,
    JournalSettings,
    console_link,
    execution_name,
    execution_pk,
    execution_sk,
    table,
    to_item,
)

NOT_GIVEN = "not given (console or schedule: CloudTrail's StartExecution event names the principal)"


def parse_input(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def starter(execution_input: Any) -> dict[str, str]:
    """Who or what started the execution, from the input's requested_by / pipeline_run."""
    fields = execution_input if isinstance(execution_input, dict) else {}
    requested_by = fields.get("requested_by")
    pipeline_run = fields.get("pipeline_run")
    return {
        "requested_by": str(requested_by)[:256] if requested_by else NOT_GIVEN,
        "pipeline_run": str(pipeline_run)[:512] if pipeline_run else "",
    }


def record_start(*, workflow: str, execution_arn: str, started_at: str, execution_input: Any, settings: JournalSettings) -> dict[str, Any]:
    """The execution's first record. Idempotent: a retried step overwrites its own record only."""
    parsed = parse_input(execution_input)
    who = starter(parsed)
    item = {
        PK: execution_pk(workflow),
        SK: execution_sk(started_at, execution_arn),
        INDEX_PK: EXECUTION_KIND,
        INDEX_SK: execution_sk(started_at, execution_arn),
        "workflow": workflow,
        "execution_arn": execution_arn,
        "execution_name": execution_name(execution_arn),
        # The key uses Step Functions' StartTime (both journal steps see the same value); the times a
        # human reads come from the project's clock, like every other timestamp the steps record.
        "execution_start_time": started_at,
        "started_at": clock.isoformat(clock.now()),
        "input": to_item(parsed),
        "outcome": RUNNING,
        "console_link": console_link(execution_arn),
        **who,
    }
    table(settings).put_item(Item=item)
    return {"pk": item[PK], "sk": item[SK], "recorded_at": clock.isoformat(clock.now()), **who}


def phases_of(details: dict[str, Any]) -> list[dict[str, Any]]:
    """Each phase that reports its own start and end (restore, snapshot, validation timings)."""
    phases: list[dict[str, Any]] = []
    for name, value in details.items():
        if isinstance(value, dict) and value.get("started_at"):
            end = value.get("available_at") or value.get("finished_at")
            phases.append({"phase": name, "start": value["started_at"], "end": end})
    return phases


def finish(
    *,
    workflow: str,
    execution_arn: str,
    started_at: str,
    outcome: str,
    error: str | None,
    cause: str | None,
    left_behind: str,
    lock_resource: str | None,
    details: dict[str, Any],
    lock_answered: bool = True,
    result: Any,
    settings: JournalSettings,
    lock_kept: str | None = None,
    only_while_running: bool = False,
) -> dict[str, Any]:
    """The end record, the lock released (if ours), and the notification. Returns what was done.

    `lock_kept`: what was done with a lock deliberately not released (journal/lock.py `keep_for_recovery`).
    `only_while_running`: write (and notify) only while the record reads RUNNING or does not exist, for a
    writer that may meet another one closing the same record; the loser returns `recorded` False.
    Every writer marks the notice, so that the status-change function sends one lost (journal/notice.py)."""
    finished_at = clock.isoformat(clock.now())
    key = {PK: execution_pk(workflow), SK: execution_sk(started_at, execution_arn)}
    recorded = table(settings).get_item(Key=key, ConsistentRead=True).get("Item") or {}
    began = str(recorded.get("started_at") or started_at)
    try:
        seconds: int | None = round((clock.parse_utc(finished_at) - clock.parse_utc(began)).total_seconds())
    except ValueError:
        seconds = None
    lock = lock_kept or release_lock(execution_arn=execution_arn, resource=lock_resource, settings=settings, answered=lock_answered)
    validation = details.get("validation")
    # A failed step's report (e.g. the check that failed, with its measured values) rides at the end of the cause.
    _text, failure_report = failure.split_report(cause or "")
    guard: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(outcome) OR outcome = :running"} if only_while_running else {}
    message = {
        "workflow": workflow,
        "execution_arn": execution_arn,
        "outcome": outcome,
        "error": error,
        "cause": cause,
        "left_behind": left_behind,
    }
    # Written unconditionally by the workflow's own end step: a mark left by an earlier writer of this end is replaced too.
    marks = notice.opening_marks(worth_telling(workflow, outcome), settings)
    try:
        table(settings).update_item(
            Key=key,
            UpdateExpression=(
                "SET outcome = :outcome, finished_at = :finished, duration_seconds = :seconds, #error = :error, "
                "cause = :cause, left_behind = :left, phases = :phases, validation = :validation, #result = :result, "
                "lock_release = :lock, workflow = :workflow, execution_arn = :arn, started_at = :started, "
                "execution_start_time = :start_time, execution_name = :name, console_link = :link, "
                "gsi1pk = :kind, gsi1sk = :sk, failure_report = :report, notice = :notice, notice_at = :notice_at, notice_by = :notice_by "
                "REMOVE notice_failure"
            ),
            ExpressionAttributeNames={"#error": "error", "#result": "result"},
            ExpressionAttributeValues=to_item(
                {
                    ":outcome": outcome,
                    ":finished": finished_at,
                    ":seconds": seconds,
                    ":error": error,
                    ":cause": cause,
                    ":left": left_behind,
                    ":phases": phases_of(details),
                    ":validation": validation,
                    ":result": result,
                    ":lock": lock,
                    ":workflow": workflow,
                    ":arn": execution_arn,
                    ":started": began,
                    ":start_time": started_at,
                    ":name": execution_name(execution_arn),
                    ":link": console_link(execution_arn),
                    ":kind": EXECUTION_KIND,
                    ":sk": execution_sk(started_at, execution_arn),
                    ":report": failure_report,
                    **({":running": RUNNING} if only_while_running else {}),
                    **marks,
                }
            ),
            **guard,
        )
    except Exception as exc:
        if not only_while_running or aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
        closed = table(settings).get_item(Key=key, ConsistentRead=True).get("Item") or {}
        why = f"the record already reads {closed.get('outcome')}: another writer closed it at the same moment"
        done = {"outcome": outcome, "finished_at": finished_at, "lock": lock, "notified": False, "recorded": False, "why": why}
        return {**done, "notice": notice.resend_if_lost(key, settings)}
    notified = marks[":notice"] == notice.PENDING and notice.send(key, message, settings, claim=marks[":notice_by"])
    done = {"outcome": outcome, "finished_at": finished_at, "lock": lock, "notified": notified, "recorded": True}
    return {**done, "failure_report": failure_report}
