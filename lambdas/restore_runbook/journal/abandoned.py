"""Executions that ended without reaching their own journal step: TIMED_OUT or ABORTED.

A workflow records its end, releases its lock and notifies from its last Task; an execution that
times out or is stopped never gets there. EventBridge delivers Step Functions' "Execution Status
Change" event for those two statuses to one function, which does the same from outside: the end
record (outcome TIMED_OUT / ABORTED), the lock released if that execution holds it, the
notification, and what may be left behind, from the last state the execution entered.

An execution stopped half-way through changing production (the app stopped, an instance renamed,
hosts half switched: the workflow's `mid_change` states in journal/workflows.py) keeps its lock,
marked as needing recovery, and says what a person must check; no workflow starts on that
resource until someone has put it right and run `restorectl unlock`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from restore_runbook.common import aws
from restore_runbook.common.errors import InvalidInput
from restore_runbook.journal import notice, prefix_registry
from restore_runbook.journal import table as journal
from restore_runbook.journal.attempts import REDRIVEN, first_attempt
from restore_runbook.journal.lock import keep_for_recovery, release_lock
from restore_runbook.journal.records import finish, parse_input
from restore_runbook.journal.workflows import traits_of

ABANDONED_STATUSES = ("TIMED_OUT", "ABORTED")
# The error and cause journaled for an execution stopped from outside when Step Functions gives none.
ABANDONED_ERRORS = {"TIMED_OUT": "States.Timeout", "ABORTED": "ExecutionAborted"}
ABANDONED_CAUSES = {
    "TIMED_OUT": "the execution ran past its TimeoutSeconds",
    "ABORTED": "the execution was stopped (StopExecution: console, CLI or API)",
}


def workflow_of(state_machine_arn: str, prefix: str) -> str:
    name = state_machine_arn.rsplit(":", 1)[-1]
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def iso_millis(epoch_ms: Any) -> str | None:
    if not isinstance(epoch_ms, (int, float)):
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def find_record(workflow: str, execution_arn: str, start: str | None, settings: journal.JournalSettings) -> dict[str, Any] | None:
    """The execution's start record, whatever exact form its start time key took."""
    from boto3.dynamodb.conditions import Attr, Key

    condition: Any = Key(journal.PK).eq(journal.execution_pk(workflow))
    if start:
        condition = condition & Key(journal.SK).begins_with(start[:10])
    query: dict[str, Any] = {"KeyConditionExpression": condition, "FilterExpression": Attr("execution_arn").eq(execution_arn)}
    table = journal.table(settings)
    while True:
        page = table.query(**query)
        if page.get("Items"):
            return dict(page["Items"][0])
        if "LastEvaluatedKey" not in page:
            return None
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def locks_held_by(execution_arn: str, candidates: list[str], settings: journal.JournalSettings) -> list[str]:
    """The resources, among `candidates`, whose lock this execution holds (one consistent read each)."""
    table = journal.table(settings)
    held = []
    for resource in dict.fromkeys(c for c in candidates if c):
        item = table.get_item(Key={journal.PK: journal.lock_pk(resource), journal.SK: "LOCK"}, ConsistentRead=True).get("Item")
        if item and item.get("holder") == execution_arn:
            held.append(resource)
    return held


def locks_of_holder(execution_arn: str, settings: journal.JournalSettings) -> list[str]:
    """The resources whose lock names this execution as holder, found through the index of locks: a
    lock derived from the plan (recordings' lock_scope) cannot be rebuilt from the input alone."""
    from boto3.dynamodb.conditions import Attr, Key

    query: dict[str, Any] = {
        "IndexName": journal.INDEX,
        "KeyConditionExpression": Key(journal.INDEX_PK).eq(journal.LOCK_KIND),
        "FilterExpression": Attr("holder").eq(execution_arn),
    }
    found: list[str] = []
    while True:
        page = journal.table(settings).query(**query)
        found += [str(item["resource"]) for item in page.get("Items", []) if item.get("resource")]
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def locks_in_registries(execution_arn: str, workflow: str, given: Any, settings: journal.JournalSettings) -> list[str]:
    """A recordings lock (`s3:<bucket>/<prefix>`) is derived from the plan, but its bucket is one the
    input names: that bucket's registry of held prefixes, read consistently, names it at once, where
    the locks index may not list a lock taken a moment ago."""
    lock_on = traits_of(workflow).lock
    if lock_on is None or lock_on.kind != "s3" or not isinstance(given, dict):
        return []
    buckets = dict.fromkeys(b for b in (given.get("bucket"), given.get("target_bucket")) if isinstance(b, str) and b)
    return [
        resource
        for bucket in buckets
        for resource, entry in prefix_registry.read(bucket, settings).holders.items()
        if entry.get("holder") == execution_arn
    ]


def locks_of(
    execution_arn: str, workflow: str, record: dict[str, Any] | None, raw_input: Any, settings: journal.JournalSettings
) -> list[str]:
    """Every lock this execution holds: the ones its input names or its buckets' registries list (read
    consistently), and any other the index lists."""
    given = record.get("input") if record else parse_input(raw_input)
    candidates = lock_candidates(workflow, given, settings.defaults())
    candidates += locks_in_registries(execution_arn, workflow, given, settings)
    named = locks_held_by(execution_arn, candidates, settings)
    return list(dict.fromkeys(named + locks_of_holder(execution_arn, settings)))


def lock_candidates(workflow: str, given: Any, configured: Mapping[str, str]) -> list[str]:
    """The resources the workflow's lock may be on: its lock derived from the input as given and
    from the configured defaults (the plan is not known here; it fills a missing field from them)."""
    lock_on = traits_of(workflow).lock
    if lock_on is None:
        return []
    fields = given if isinstance(given, dict) else {}
    # A field the input leaves out comes from the setting of the same name (SOURCE_INSTANCE), as in the input check.
    defaults = {field: configured.get(field, "") for field in lock_on.fields}
    candidates = []
    for plan in ({**defaults, **{k: v for k, v in fields.items() if v}}, defaults):
        try:
            candidates.append(lock_on.resource(plan))
        except InvalidInput:
            continue
    return candidates


def last_state(execution_arn: str) -> str | None:
    """The last state the execution entered (one GetExecutionHistory page, newest first), or, once it
    has been redriven, the last one its first attempt entered (journal/attempts.py); None if unknown."""
    try:
        events = aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=50)["events"]
        if any(event.get("type") == REDRIVEN for event in events):
            # Redriven since the status was read: the newest states are the refusal's, which changed nothing.
            return first_attempt(execution_arn).last_state
    except Exception:  # noqa: BLE001 - the record and the notification matter more than this detail
        return None
    for event in events:
        details = event.get("stateEnteredEventDetails")
        if details and details.get("name"):
            return str(details["name"])
    return None


# How the words begin of a writer that could not read where the execution stopped: a writer that could replaces them.
UNKNOWN_STATE = "its last state is unknown"
# The failure path's end step: stopped while it ran, it may not yet have kept a lock its failure asked to keep.
FAILURE_END_STEP = "RecordFailure"


def recovery_being_recorded(execution_arn: str, state: str | None) -> str | None:
    """Stopped in the failure end step, whose input carried `outcome.recovery` (production left half-changed,
    journal/events.py): those words, for the lock that step would have kept; else None."""
    if state != FAILURE_END_STEP:
        return None
    try:
        events = aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=50)["events"]
    except Exception:  # noqa: BLE001 - unread, the state alone decides, as before
        return None
    for event in events:
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") == FAILURE_END_STEP:
            try:
                state_input = json.loads(details.get("input") or "{}")
            except ValueError:
                return None
            recovery = ((state_input.get("outcome") or {}) if isinstance(state_input, dict) else {}).get("recovery")
            return str(recovery) if recovery else None
    return None


def left_behind(workflow: str, execution_arn: str, state: str | None) -> str:
    where = f"it stopped in state {state}" if state else UNKNOWN_STATE
    traits = traits_of(workflow)
    mid_change = traits.mid_change_at(state)
    recovery = None if mid_change else recovery_being_recorded(execution_arn, state)
    if recovery:
        hint = f"{recovery} (its end step was recording this failure when the execution stopped)"
    else:
        hint = (mid_change.what if mid_change else traits.abandoned_words(state)).format(arn=execution_arn)
    if mid_change and state is None:
        hint += f"; otherwise: {traits.left_behind_when_abandoned.format(arn=execution_arn)}"
    return f"{where}, without its own cleanup or journal step: {hint}; check the execution: {journal.console_link(execution_arn)}"


def keep_locks_if_mid_change(
    workflow: str, execution_arn: str, state: str | None, resources: list[str], why: str, settings: journal.JournalSettings
) -> list[str] | None:
    """Stopped half-way through changing production: every lock stays, marked as needing recovery, so
    nothing starts from a state no workflow was written for; a person releases it once production is
    put right. The words for each lock kept, or None when the execution was not mid-change."""
    if not resources or not (traits_of(workflow).mid_change_at(state) or recovery_being_recorded(execution_arn, state)):
        return None
    replaces = UNKNOWN_STATE if state else None
    return [keep_for_recovery(execution_arn=execution_arn, resource=r, why=why, settings=settings, replaces=replaces) for r in resources]


def record_abandoned(event: dict[str, Any], settings: journal.JournalSettings, state_machine_prefix: str) -> dict[str, Any]:
    detail = event.get("detail") or {}
    status, execution_arn = detail.get("status"), detail.get("executionArn")
    if status not in ABANDONED_STATUSES or not execution_arn or not detail.get("stateMachineArn"):
        raise InvalidInput(f"expected a Step Functions status change to {' or '.join(ABANDONED_STATUSES)}, got {detail!r}")
    workflow = workflow_of(str(detail["stateMachineArn"]), state_machine_prefix)
    start = iso_millis(detail.get("startDate"))
    record = find_record(workflow, str(execution_arn), start, settings)
    if record is not None and record.get("outcome") != journal.RUNNING:
        # EventBridge delivers at least once, and Lambda retries: this end is journaled and its lock seen
        # to already; only its notice may still be owed, by an invocation whose publish failed.
        why = f"the record already reads {record.get('outcome')}"
        owed = notice.resend_if_lost(journal.key_of(record), settings)
        return {"workflow": workflow, "execution_arn": execution_arn, "recorded": False, "why": why, "locks": [], "notice": owed}
    started_at = str((record or {}).get("execution_start_time") or start or "")
    error, cause = ABANDONED_ERRORS[str(status)], detail.get("cause") or ABANDONED_CAUSES[str(status)]
    state = last_state(str(execution_arn))
    resources = locks_of(str(execution_arn), workflow, record, detail.get("input"), settings)
    left = left_behind(workflow, str(execution_arn), state)
    kept_words = keep_locks_if_mid_change(workflow, str(execution_arn), state, resources, left, settings)
    kept = "; ".join(kept_words) if kept_words is not None else None
    # Every lock is seen to before the record is closed: a retry finds the record closed and looks no further.
    others = [] if kept else [release_lock(execution_arn=str(execution_arn), resource=r, settings=settings) for r in resources[1:]]
    finished = finish(
        workflow=workflow,
        execution_arn=str(execution_arn),
        started_at=started_at,
        outcome=str(status),
        error=error,
        cause=str(cause),
        left_behind=left,
        lock_resource=resources[0] if resources else None,
        lock_kept=kept,
        details={},
        result=None,
        settings=settings,
        only_while_running=True,
    )
    if not finished["recorded"]:
        # Another delivery of this event (or a reconciler) closed the record between our read and our write.
        return {**finished, "workflow": workflow, "execution_arn": execution_arn, "locks": [], "other_locks": others}
    answer = {**finished, "workflow": workflow, "last_state": state, "had_start_record": record is not None, "locks": resources}
    return {**answer, "other_locks": others}
