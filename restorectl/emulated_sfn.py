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
