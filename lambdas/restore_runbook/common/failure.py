"""Turning a caught Step Functions error into the error and cause a human reads."""

from __future__ import annotations

import json
from typing import Any


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
