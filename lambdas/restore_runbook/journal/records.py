"""The journal: one DynamoDB record per execution of every workflow, and the lock on the resource a workflow changes.

Table layout (one table, two item kinds, one index):

    execution   pk = WORKFLOW#<workflow>   sk = <start time>#<execution name>
    lock        pk = LOCK#<resource>       sk = LOCK      (resource: rds:<instance>, s3:<bucket>/<prefix>)
    index gsi1  gsi1pk = EXECUTION | LOCK, gsi1sk = <start time>#<name> | <resource>

so "the last runs of one workflow" is one Query on pk, "the last runs of all workflows" and "all
locks held" are one Query each on the index, and the lock is a conditional write on one key.

The workflows write it themselves: a start Task records who started what with which input, a lock
Task (mutating workflows only) takes the lock on the resource the workflow changes (workflows.py), and a finish Task on both the success and
the failure path records the outcome, releases the lock and notifies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from restore_runbook.common import aws, clock, failure
from restore_runbook.common.errors import InvalidInput, OperationInProgress
from restore_runbook.journal.workflows import WORKFLOWS, lock_label, traits_of

PK, SK = "pk", "sk"
INDEX, INDEX_PK, INDEX_SK = "gsi1", "gsi1pk", "gsi1sk"
EXECUTION_KIND, LOCK_KIND = "EXECUTION", "LOCK"
RUNNING = "RUNNING"
# Workflows whose success is worth a message to people; every workflow's failure is.
NOTIFY_ON_SUCCESS = frozenset(name for name, traits in WORKFLOWS.items() if traits.notify_on_success)
NOT_GIVEN = "not given (console or schedule: CloudTrail's StartExecution event names the principal)"


@dataclass(frozen=True)
class JournalSettings:
    table_name: str
    topic_arn: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> JournalSettings:
        env = dict(os.environ if env is None else env)
        table = env.get("JOURNAL_TABLE_NAME", "").strip()
        if not table:
            raise InvalidInput("setting JOURNAL_TABLE_NAME is not set on this function; redeploy the stack")
        return cls(table_name=table, topic_arn=env.get("NOTIFY_TOPIC_ARN", "").strip())


def execution_pk(workflow: str) -> str:
    return f"WORKFLOW#{workflow}"


def execution_sk(started_at: str, execution_arn: str) -> str:
    return f"{started_at}#{execution_name(execution_arn)}"


def lock_pk(resource: str) -> str:
    return f"LOCK#{resource}"


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def console_link(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 4 else "us-east-1"
    return f"https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def _table(settings: JournalSettings) -> Any:
    import boto3

    # boto3's resource layer converts Python values to DynamoDB's; the client config keeps standard retries.
    return boto3.resource("dynamodb", config=aws._RETRY_CONFIG).Table(settings.table_name)


def _to_item(value: Any) -> Any:
    """JSON-safe and DynamoDB-safe: floats become Decimals by going through JSON."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def from_item(value: Any) -> Any:
    """A journal item as plain JSON types again: DynamoDB hands numbers back as Decimals."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_item(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_item(v) for v in value]
    return value


def _parse_input(raw: Any) -> Any:
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


# ---------------------------------------------------------------------------------------- start


def record_start(*, workflow: str, execution_arn: str, started_at: str, execution_input: Any, settings: JournalSettings) -> dict[str, Any]:
    """The execution's first record. Idempotent: a retried step overwrites its own record only."""
    parsed = _parse_input(execution_input)
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
        "input": _to_item(parsed),
        "outcome": RUNNING,
        "console_link": console_link(execution_arn),
        **who,
    }
    _table(settings).put_item(Item=item)
    return {"pk": item[PK], "sk": item[SK], "recorded_at": clock.isoformat(clock.now()), **who}


# ---------------------------------------------------------------------------------------- lock


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
    table = _table(settings)
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
        table.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR holder = :me",
            ExpressionAttributeValues={":me": execution_arn},
        )
        return {"resource": resource, "holder": execution_arn, "acquired_at": now, "took_over_from": None}
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
    current = table.get_item(Key={PK: lock_pk(resource), SK: "LOCK"}, ConsistentRead=True).get("Item")
    if current is None:  # released between the two calls: try once more, plainly
        return take_lock(workflow=workflow, execution_arn=execution_arn, resource=resource, requested_by=requested_by, settings=settings)
    holder = str(current.get("holder"))
    if _holder_is_running(holder):
        raise OperationInProgress(
            f"{current.get('workflow')} execution {execution_name(holder)} (started {current.get('acquired_at')}, "
            f"requested by {current.get('requested_by')}) is already working on {lock_label(resource)}; wait for it to finish "
            f"or stop it, then start again: {console_link(holder)}"
        )
    try:
        table.put_item(
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


def release_lock(*, execution_arn: str, resource: str | None, settings: JournalSettings) -> str:
    """Release the lock only if this execution holds it; say in words what happened."""
    if not resource:
        return "no lock was taken"
    try:
        _table(settings).delete_item(
            Key={PK: lock_pk(resource), SK: "LOCK"},
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": execution_arn},
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return f"lock on {lock_label(resource)} not held by this execution; left as it is"
        raise
    return f"released the lock on {lock_label(resource)}"


# ---------------------------------------------------------------------------------------- finish


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
    result: Any,
    settings: JournalSettings,
) -> dict[str, Any]:
    """The end record, the lock released (if ours), and the notification. Returns what was done."""
    finished_at = clock.isoformat(clock.now())
    key = {PK: execution_pk(workflow), SK: execution_sk(started_at, execution_arn)}
    recorded = _table(settings).get_item(Key=key, ConsistentRead=True).get("Item") or {}
    began = str(recorded.get("started_at") or started_at)
    try:
        seconds: int | None = round((clock.parse_utc(finished_at) - clock.parse_utc(began)).total_seconds())
    except ValueError:
        seconds = None
    lock = release_lock(execution_arn=execution_arn, resource=lock_resource, settings=settings)
    validation = details.get("validation")
    # A failed step's report (e.g. the check that failed, with its measured values) rides at the end of the cause.
    _text, failure_report = failure.split_report(cause or "")
    _table(settings).update_item(
        Key=key,
        UpdateExpression=(
            "SET outcome = :outcome, finished_at = :finished, duration_seconds = :seconds, #error = :error, "
            "cause = :cause, left_behind = :left, phases = :phases, validation = :validation, #result = :result, "
            "lock_release = :lock, workflow = :workflow, execution_arn = :arn, started_at = :started, "
            "execution_start_time = :start_time, execution_name = :name, console_link = :link, "
            "gsi1pk = :kind, gsi1sk = :sk, failure_report = :report"
        ),
        ExpressionAttributeNames={"#error": "error", "#result": "result"},
        ExpressionAttributeValues=_to_item(
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
            }
        ),
    )
    notified = notify(
        workflow=workflow,
        execution_arn=execution_arn,
        outcome=outcome,
        error=error,
        cause=cause,
        left_behind=left_behind,
        settings=settings,
    )
    return {"outcome": outcome, "finished_at": finished_at, "lock": lock, "notified": notified, "failure_report": failure_report}


def notification(
    *, workflow: str, execution_arn: str, outcome: str, error: str | None, cause: str | None, left_behind: str
) -> tuple[str, str]:
    """Subject and body a human understands at a glance."""
    headline = f"{workflow} {outcome}" + (f": {error}" if error else "")
    subject = f"[irisx-restore] {headline}"[:100]
    lines = [
        f"Workflow:    {workflow}",
        f"Outcome:     {outcome}",
    ]
    if error:
        text, report = failure.split_report(cause or "")
        lines += [f"Error:       {error}", f"Cause:       {text or '(none given)'}"]
        lines += report_lines(report)
    lines += [
        f"Left behind: {left_behind}",
        f"Execution:   {execution_name(execution_arn)}",
        "",
        f"Open it in the console: {console_link(execution_arn)}",
    ]
    return subject, "\n".join(lines)


def report_lines(report: dict[str, Any] | None) -> list[str]:
    """A failed step's report for people: each check that did not pass with its measured values."""
    if not report:
        return []
    failed = report.get("failed")
    if not isinstance(failed, list):
        return [f"Report:      {json.dumps(report, default=str)}"]
    lines = ["Not passed:"]
    for check in failed:
        if isinstance(check, dict):
            values = json.dumps(check.get("values") or {}, default=str, sort_keys=True)
            lines.append(f"  - {check.get('name')} ({check.get('status')}): {check.get('detail')}; measured {values}")
        else:
            lines.append(f"  - {check}")
    if report.get("truncated"):
        lines.append(f"  ({report['truncated']})")
    return lines


def notify(
    *, workflow: str, execution_arn: str, outcome: str, error: str | None, cause: str | None, left_behind: str, settings: JournalSettings
) -> bool:
    if not settings.topic_arn:
        return False
    if outcome == "SUCCEEDED" and not traits_of(workflow).notify_on_success:
        return False
    subject, body = notification(
        workflow=workflow, execution_arn=execution_arn, outcome=outcome, error=error, cause=cause, left_behind=left_behind
    )
    aws.client("sns").publish(
        TopicArn=settings.topic_arn,
        Subject=subject,
        Message=body,
        MessageAttributes={
            "workflow": {"DataType": "String", "StringValue": workflow},
            "outcome": {"DataType": "String", "StringValue": outcome},
        },
    )
    return True


# ---------------------------------------------------------------------------------------- step input


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


def finish_from_event(event: dict[str, Any], settings: JournalSettings) -> dict[str, Any]:
    """The finish step's input: `failure` ({error, cause[, cleanup]}) on the failure path, `result` on success."""
    workflow, execution_arn = _context(event)
    failure = event.get("failure")
    lock = event.get("lock") or {}
    if failure:
        outcome, error, cause = "FAILED", str(failure.get("error") or "States.Runtime"), str(failure.get("cause") or "")
        left_behind = str(failure.get("cleanup") or event.get("left_behind") or "unknown: the cleanup did not report; see the cause")
    else:
        outcome, error, cause = "SUCCEEDED", None, None
        left_behind = str(event.get("left_behind") or "nothing")
    return finish(
        workflow=workflow,
        execution_arn=execution_arn,
        started_at=str(event.get("started_at") or ""),
        outcome=outcome,
        error=error,
        cause=cause,
        left_behind=left_behind,
        lock_resource=lock.get("resource") if isinstance(lock, dict) else None,
        details={k: v for k, v in (event.get("details") or {}).items() if v is not None},
        result=event.get("result"),
        settings=settings,
    )
