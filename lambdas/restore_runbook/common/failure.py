"""Turning a caught Step Functions error into the error and cause a human reads."""

from __future__ import annotations

import json
from typing import Any

from restore_runbook.common.errors import StepFailed, StepTimedOut

# Step Functions' own error names: a Fail state may not re-raise them (moto refuses any custom error
# named States.*), so a workflow that ends on one fails with the project's name and keeps the original
# at the head of the cause.
RESERVED_PREFIX = "States."
TIMEOUTS = frozenset({"States.Timeout", "States.HeartbeatTimeout"})


def reportable(error: str, cause: str) -> tuple[str, str]:
    """The error a workflow may end with for a caught `error`, and the cause that still names the original."""
    if not error.startswith(RESERVED_PREFIX):
        return error, cause
    if error in TIMEOUTS:
        # Step Functions gives a Task timeout no cause; the history's TaskTimedOut event names the state.
        plain = cause or "a step ran past its TimeoutSeconds and was cut off; it may have acted before that (see the execution's history)"
        return StepTimedOut.__name__, f"{error}: {plain}"
    return StepFailed.__name__, f"{error}: {cause or 'Step Functions reported no cause'}"


def explain(failure: dict[str, Any] | None) -> tuple[str, str]:
    """The original error name, and its cause in plain words.

    A Lambda error's Cause is the JSON the runtime wrote (errorMessage, errorType, stackTrace);
    the message alone is what the on-call engineer needs to read.
    """
    failure = failure or {}
    error = str(failure.get("Error") or "States.Runtime")
    cause = failure.get("Cause") or ""
    try:
        document = json.loads(cause)
    except (TypeError, ValueError):
        document = None
    if isinstance(document, dict) and document.get("errorMessage"):
        cause = str(document["errorMessage"])
    return error, str(cause)


def outcome_of(failure: dict[str, Any] | None) -> tuple[str, str]:
    """The error and cause a workflow fails with after a caught `failure`: explained, and never a States.* name."""
    return reportable(*explain(failure))
