"""Every step refuses to act in a redriven execution.

Step Functions' Redrive (a button on every failed, aborted or timed-out execution in the console)
resumes an ended execution at the step that did not finish, with the same ARN and input. These
workflows were not written to be resumed: when an execution ends, its lock is released (or kept,
marked for recovery, if it stopped in the middle of changing production) and its journal record
is closed, and by the time someone presses Redrive another execution may hold the lock, or a
person may be putting production right by hand. A resumed swap would rename or repoint production
with none of the checks its start made.

So every Task passes `$$.Execution.RedriveCount` in its `context` (a Distributed Map child passes
its own and, through the ItemSelector, its parent's) and every handler is wrapped in
`refuses_redrive`, which raises RedriveRefused before the step does anything. Every top-level
Task's first Catch sends RedriveRefused to the workflow's `RedriveRefused` Fail state, so the
redriven attempt ends at the first step it enters (a Map child's refusal ends that child, and the
parent's next step refuses), and the world stays as the first attempt left it.
tests/unit/test_asl_house_pattern.py holds every Task and every handler to this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from restore_runbook.common.errors import RedriveRefused

Handler = TypeVar("Handler", bound=Callable[..., Any])


def redrive_count(event: Any) -> int:
    """How many times the execution this step runs in was redriven (0: never, or not said). A Distributed
    Map child has two counts: its parent's, from when the Map Run started it, and its own (a redriven
    Map Run redrives the children that failed, with their first input)."""
    context = event.get("context") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return 0
    counts = (context.get("redrive_count"), context.get("own_redrive_count"))
    return max((c for c in counts if isinstance(c, int) and not isinstance(c, bool)), default=0)


def refuse_if_redriven(event: Any) -> None:
    count = redrive_count(event)
    if count <= 0:
        return
    context = event["context"]
    execution = str(context.get("execution_id") or "this execution")
    state = str(context.get("state") or "this step")
    workflow = str(context.get("workflow") or "")
    name = execution.rsplit(":", 1)[-1]
    raise RedriveRefused(
        f"execution {name} was redriven ({_times(count)}), and {state} did nothing: the {workflow or 'this'} workflow does "
        "not resume an ended execution. When it ended, its lock was released (or kept for recovery if it stopped in the "
        "middle of changing production) and its journal record closed; the record says how it ended and what it left "
        f"behind (restorectl history{' --workflow ' + workflow if workflow else ''}). Put right what it left, if anything, and "
        "start a new execution"
    )


def refuses_redrive(handler: Handler) -> Handler:
    """Wrap a step's handler so that it raises RedriveRefused, untouched, in a redriven execution."""

    @functools.wraps(handler)
    def guarded(event: Any, context: Any) -> Any:
        refuse_if_redriven(event)
        return handler(event, context)

    guarded.refuses_redrive = True  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
