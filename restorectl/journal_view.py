"""`restorectl history` and `restorectl status`: the journal as tables for people, JSON for scripts.

The journal table is found by the stack's output `JournalTableName`, or by its name
`<name_prefix>-journal`. Reads are Queries on the table's keys (see lambdas/restore_runbook/journal/).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable
from typing import Any

from restore_runbook.contract import SNAPSHOT_REASONS
from restore_runbook.journal.table import from_item
from restorectl.start import EXIT_SUCCEEDED, Deployment, UsageError, aws_errors_as_exit_codes, client, stack_outputs


def find_table(deployment: Deployment, region: str | None) -> Any:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    name = stack_outputs(deployment, region).get("JournalTableName") or f"{deployment.name_prefix}-journal"
    try:
        client("dynamodb", region).describe_table(TableName=name)
    except ClientError as exc:
        raise UsageError(
            f"the journal table {name!r} was not found in this account and region; deploy the stack, or check AWS_REGION / AWS_PROFILE"
        ) from exc
    config = Config(retries={"mode": "standard", "max_attempts": 8})
    return boto3.resource("dynamodb", region_name=region, config=config).Table(name)


def _query(table: Any, limit: int | None, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = table.query(ScanIndexForward=False, **({"Limit": limit - len(items)} if limit else {}), **kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page or (limit and len(items) >= limit):
            return [from_item(i) for i in items]
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def history(table: Any, workflow: str | None, limit: int) -> list[dict[str, Any]]:
    from boto3.dynamodb.conditions import Key

    if workflow:
        return _query(table, limit, KeyConditionExpression=Key("pk").eq(f"WORKFLOW#{workflow}"))
    return _query(table, limit, IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq("EXECUTION"))


# How many of the newest executions `status` looks at for records left RUNNING.
RECONCILE_LOOKBACK = 200


def reconcile_running(table: Any, describe: Callable[[str], Any], *, reconciled_by: str, source_instance: str = "") -> list[dict[str, Any]]:
    """Close the records among the newest executions that read RUNNING though their execution has
    ended (the status-change event that would have closed them was lost or failed). A record whose
    execution still runs, or that Step Functions does not know, is left as it is."""
    from botocore.exceptions import ClientError

    from restore_runbook.journal.attempts import FirstAttemptUnknown
    from restore_runbook.journal.reconcile import reconcile
    from restore_runbook.journal.table import RUNNING, JournalSettings

    # No topic: the person running status reads what was repaired; the notification was the workflow's to send.
    settings = JournalSettings(table_name=table.name, topic_arn="", source_instance=source_instance)
    done = []
    for record in history(table, None, RECONCILE_LOOKBACK):
        if record.get("outcome") != RUNNING or not record.get("execution_arn"):
            continue
        try:
            closed = reconcile(record, reconciled_by=reconciled_by, settings=settings, describe=describe)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ExecutionDoesNotExist":
                continue
            # One record Step Functions will not tell about (AccessDenied, throttling) does not stop the report.
            done.append({**_about(record), "not_reconciled": f"{code}: {exc}"})
            continue
        except FirstAttemptUnknown as exc:
            done.append({**_about(record), "not_reconciled": str(exc)})
            continue
        if closed is not None:
            done.append(closed)
    return done


def _about(record: Any) -> dict[str, Any]:
    return {"workflow": record.get("workflow"), "execution_arn": record.get("execution_arn")}


def status(table: Any, workflows: list[str], reconciled: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    from boto3.dynamodb.conditions import Key

    locks = _query(table, None, IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq("LOCK"))
    last_runs = {}
    for workflow in workflows:
        runs = history(table, workflow, 1)
        if runs:
            last_runs[workflow] = runs[0]
    snapshots: dict[str, dict[str, Any]] = {}
    for run in history(table, "snapshot", 500):
        reason = (run.get("result") or {}).get("reason")
        if run.get("outcome") == "SUCCEEDED" and reason and reason not in snapshots:
            snapshots[reason] = run
    return {
        "locks": locks,
        "last_runs": last_runs,
        "last_snapshot_by_reason": snapshots,
        "reconciled": reconciled or [],
        "notices_not_sent": notices_not_sent(table),
    }


def notices_not_sent(table: Any) -> list[dict[str, Any]]:
    """Ended executions, among the newest, whose end notice no writer has marked sent
    (journal/notice.py): failed, owed, or pending (being sent, or lost with its writer)."""
    from restore_runbook.journal.notice import FAILED, OWED, PENDING

    return [run for run in history(table, None, RECONCILE_LOOKBACK) if run.get("notice") in (FAILED, OWED, PENDING)]


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _run_row(run: dict[str, Any]) -> list[str]:
    return [
        str(run.get("started_at", "-")),
        str(run.get("workflow", "-")),
        str(run.get("outcome", "-")),
        _duration(run.get("duration_seconds")),
        str(run.get("requested_by", "-"))[:30],
        str(run.get("error") or ""),
        str(run.get("execution_name", "-")),
    ]


RUN_HEADERS = ["STARTED", "WORKFLOW", "OUTCOME", "DURATION", "REQUESTED BY", "ERROR", "EXECUTION"]


def print_history(runs: list[dict[str, Any]]) -> None:
    if not runs:
        print("the journal holds no executions yet")
        return
    print(_table(RUN_HEADERS, [_run_row(r) for r in runs]))


def print_status(state: dict[str, Any]) -> None:
    for closed in state.get("reconciled") or []:
        name = str(closed["execution_arn"]).rsplit(":", 1)[-1]
        if "not_reconciled" in closed:
            print(f"NOT reconciled: {closed['workflow']} execution {name} reads RUNNING and was left so: {closed['not_reconciled']}")
            continue
        print(
            f"reconciled: {closed['workflow']} execution {name} read RUNNING but ended {closed['outcome']}; record closed, {closed['lock']}"
        )
    for run in state.get("notices_not_sent") or []:
        why = f": {run['notice_failure']}" if run.get("notice_failure") else ""
        print(
            f"end notice NOT sent: {run.get('workflow')} execution {run.get('execution_name')} ended {run.get('outcome')}; "
            f"its notice reads {run.get('notice')} since {run.get('notice_at')}{why}"
        )
    print("Locks held")
    rows = [
        [
            # locks taken before locks named their resource carry only the source instance
            str(lock.get("resource") or f"rds:{lock.get('source_instance')}"),
            str(lock.get("workflow")),
            str(lock.get("holder", "")).rsplit(":", 1)[-1],
            str(lock.get("acquired_at")),
            str(lock.get("requested_by"))[:30],
        ]
        for lock in state["locks"]
    ]
    print(_table(["RESOURCE", "WORKFLOW", "EXECUTION", "SINCE", "REQUESTED BY"], rows) if rows else "  none")
    print("\nLast run of each workflow")
    runs = list(state["last_runs"].values())
    print(_table(RUN_HEADERS, [_run_row(r) for r in runs]) if runs else "  none")
    print("\nLast successful snapshot per reason")
    rows = []
    for reason in SNAPSHOT_REASONS:
        run = state["last_snapshot_by_reason"].get(reason)
        result = (run or {}).get("result") or {}
        rows.append([reason, str(result.get("snapshot_id", "none")), str((run or {}).get("finished_at", "-"))])
    print(_table(["REASON", "SNAPSHOT", "TAKEN"], rows))


@aws_errors_as_exit_codes
def run_history(args: argparse.Namespace) -> int:
    table = find_table(Deployment.from_cdk_json(args.stack), args.region)
    runs = history(table, args.workflow, args.limit)
    if args.json:
        print(json.dumps(runs, indent=2, default=str))
    else:
        print_history(runs)
    return EXIT_SUCCEEDED


@aws_errors_as_exit_codes
def run_status(args: argparse.Namespace) -> int:
    from restorectl.harness import available_workflows

    deployment = Deployment.from_cdk_json(args.stack)
    table = find_table(deployment, args.region)
    reconciled = []
    if not args.no_reconcile:
        if args.region:
            # The reconciler's journal and lock calls build their own clients from the environment's region.
            os.environ["AWS_DEFAULT_REGION"] = args.region
        sfn = client("stepfunctions", args.region)
        reconciled = reconcile_running(
            table,
            lambda arn: sfn.describe_execution(executionArn=arn),
            reconciled_by=f"restorectl status ({getpass.getuser()})",
            source_instance=deployment.source_instance,
        )
    state = status(table, available_workflows(), reconciled)
    if args.json:
        print(json.dumps(state, indent=2, default=str))
    else:
        print_status(state)
    return EXIT_SUCCEEDED


def add_parsers(commands: Any, positive_int: Any) -> None:
    history_parser = commands.add_parser("history", help="the journal's last executions, newest first")
    history_parser.add_argument("--workflow", help="only this workflow, e.g. restore")
    history_parser.add_argument("--limit", type=positive_int, default=20, help="how many executions (default 20)")
    status_parser = commands.add_parser(
        "status",
        help="locks held, the last run of each workflow, the last snapshot per reason; closes records left RUNNING by ended executions",
    )
    status_parser.add_argument(
        "--no-reconcile", action="store_true", help="only read: leave records of ended executions that still read RUNNING as they are"
    )
    for parser in (history_parser, status_parser):
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        parser.add_argument("--stack", help="the stack's name (default: <name_prefix>-runbook from cdk.json)")
        parser.add_argument("--region", help="AWS region (default: the environment's)")
