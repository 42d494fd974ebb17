"""Telling people: one SNS message per finished execution that is worth one (every failure; the
success of the workflows that declare it, see workflows.py)."""

from __future__ import annotations

import json
from typing import Any

from restore_runbook.common import aws, failure
from restore_runbook.journal.table import JournalSettings, console_link, execution_name
from restore_runbook.journal.workflows import WORKFLOWS, traits_of

# Workflows whose success is worth a message to people; every workflow's failure is.
NOTIFY_ON_SUCCESS = frozenset(name for name, traits in WORKFLOWS.items() if traits.notify_on_success)


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


def worth_telling(workflow: str, outcome: str) -> bool:
    return outcome != "SUCCEEDED" or traits_of(workflow).notify_on_success


def is_due(workflow: str, outcome: str, settings: JournalSettings) -> bool:
    """Whether this end is worth a message and there is a topic to send it to."""
    return bool(settings.topic_arn) and worth_telling(workflow, outcome)


def notify(
    *, workflow: str, execution_arn: str, outcome: str, error: str | None, cause: str | None, left_behind: str, settings: JournalSettings
) -> bool:
    if not is_due(workflow, outcome, settings):
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
