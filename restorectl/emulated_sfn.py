"""Where moto's Step Functions differs from AWS in ways the handlers depend on.

moto answers GetExecutionHistory with every event, oldest first, whatever `reverseOrder`,
`maxResults` and `nextToken` say. The abandoned-execution function asks for the newest events
first (one page, to find the last state entered), so the emulation honours the three parameters
the way AWS documents them: newest first when asked, pages of at most `maxResults` (default and
maximum 1000), and an opaque `nextToken` to the next page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

MAX_RESULTS = 1000


def page_of_history(events: list[dict[str, Any]], *, reverse: bool, max_results: int | None, token: str | None) -> dict[str, Any]:
    ordered = list(reversed(events)) if reverse else list(events)
    size = max_results if max_results and 0 < max_results <= MAX_RESULTS else MAX_RESULTS
    start = int(token) if token and token.isdigit() else 0
    page: dict[str, Any] = {"events": ordered[start : start + size]}
    if start + size < len(ordered):
        page["nextToken"] = str(start + size)
    return page


@contextlib.contextmanager
def installed() -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.get_execution_history

    def get_execution_history(self: Any) -> Any:
        result = original(self)
        history = getattr(result, "result", None)
        if not isinstance(history, dict) or "events" not in history:
            return result
        page = page_of_history(
            list(history["events"]),
            reverse=bool(self._get_param("reverseOrder")),
            max_results=self._get_param("maxResults"),
            token=self._get_param("nextToken"),
        )
        return ActionResult(page)

    with mock.patch.object(StepFunctionResponse, "get_execution_history", get_execution_history):
        yield


# ---------------------------------------------------------------------- the harness's own reads
# The harness follows every execution it starts and keeps its whole history for the result. Through
# the API that costs moto a deep copy and a walk of botocore's shape model for each of hundreds of
# events, on every call; the suite spends minutes there. The harness, in the same process, reads
# moto's execution instead. The steps' own calls (the status-change function's, the journal's) go
# through the API as in AWS. tests/workflow/test_harness_reads.py holds the two readings equal.


def execution_in_process(execution_arn: str) -> Any | None:
    """moto's Execution for `execution_arn`, or None when moto's internals are not where they were."""
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        region, account = execution_arn.split(":")[3:5]
        execution = stepfunctions_parser_backends[account][region].describe_execution(execution_arn=execution_arn)
        return execution if hasattr(execution, "exec_worker") and hasattr(execution, "exec_status") else None
    except (ImportError, AttributeError, KeyError):
        return None


def status_in_process(execution_arn: str) -> str | None:
    execution = execution_in_process(execution_arn)
    status = getattr(execution, "exec_status", None)
    return str(status.value) if status is not None else None


def history_in_process(execution_arn: str) -> list[dict[str, Any]] | None:
    """The execution's events as GetExecutionHistory answers them (a timestamp, a plain string type)."""
    from datetime import datetime

    execution = execution_in_process(execution_arn)
    worker = getattr(execution, "exec_worker", None)
    if execution is None or worker is None:
        return None
    env = worker.env
    events: list[dict[str, Any]] = list(env.event_manager.get_event_history()) if env is not None else []
    for event in events:
        event["type"] = str(getattr(event["type"], "value", event["type"]))
        if isinstance(event.get("timestamp"), str):
            event["timestamp"] = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    return events
