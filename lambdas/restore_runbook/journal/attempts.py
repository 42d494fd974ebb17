"""How a redriven execution really ended: its first attempt.

Every step of a redriven attempt refuses before it acts (common/redrive.py), so whatever an
execution changed, its first attempt changed, and the journal speaks of that attempt: how it ended
(aborted, timed out, failed) and the last state it entered (the one that says whether it stopped
in the middle of changing production). After a redrive, Step Functions describes the latest
attempt instead, and the newest states in its history are the refusal's own (ReadRedriveRefusal,
RedriveRefused), so the status-change function and the reconciler read the history from the start
up to the first ExecutionRedriven event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restore_runbook.common import aws

# The event that ends an attempt, and the execution status it stands for.
END_EVENTS = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}
REDRIVEN = "ExecutionRedriven"


class FirstAttemptUnknown(RuntimeError):
    """A redriven execution whose history shows no end of its first attempt: nothing true can be journaled."""


@dataclass(frozen=True)
class FirstAttempt:
    status: str | None  # None when its end is not in the history read
    error: str | None
    cause: str | None
    stopped_at: datetime | None
    last_state: str | None


def redrive_count(description: Mapping[str, Any]) -> int:
    count = description.get("redriveCount")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def first_attempt(execution_arn: str) -> FirstAttempt:
    """The first attempt's end and last state, from the history up to the first redrive."""
    sfn = aws.client("stepfunctions")
    request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    status = error = cause = state = None
    stopped_at: datetime | None = None
    while True:
        page = sfn.get_execution_history(**request)
        for event in page.get("events", []):
            kind = str(event.get("type"))
            if kind == REDRIVEN:
                return FirstAttempt(status, error, cause, stopped_at, state)
            entered = event.get("stateEnteredEventDetails")
            if entered and entered.get("name"):
                state = str(entered["name"])
            if kind in END_EVENTS:
                details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
                status, error, cause = END_EVENTS[kind], details.get("error"), details.get("cause")
                stopped_at = event.get("timestamp") if isinstance(event.get("timestamp"), datetime) else None
        if not page.get("nextToken"):
            return FirstAttempt(status, error, cause, stopped_at, state)
        request["nextToken"] = page["nextToken"]


def as_first_attempt(description: Mapping[str, Any], first: FirstAttempt) -> dict[str, Any]:
    """A DescribeExecution answer for the first attempt: its status, error, cause and stop."""
    answer = {k: v for k, v in description.items() if k not in ("output", "error", "cause", "stopDate")}
    answer.update(status=first.status, error=first.error, cause=first.cause, stopDate=first.stopped_at)
    return answer
