"""Turning a caught Step Functions error into the error and cause a human reads, and carrying a
failed step's report across the Lambda boundary.

A Lambda error reaches Step Functions as errorType and errorMessage only, so a report (which
check failed, with its measured values) survives only inside the message. It rides at the end of
the message, after REPORT_MARKER, as compact JSON bounded to MAX_REPORT_CHARS: the cause stays a
sentence a human reads first, and the journal's finish step parses the report back out.
"""

from __future__ import annotations

import json
from typing import Any

# Step Functions' own error names: a Fail state may not re-raise them (moto refuses any custom error
# named States.*), so a workflow that ends on one fails with the project's name and keeps the original
# at the head of the cause.
RESERVED_PREFIX = "States."
TIMEOUTS = frozenset({"States.Timeout", "States.HeartbeatTimeout"})


def reportable(error: str, cause: str) -> tuple[str, str]:
    """The error a workflow may end with for a caught `error`, and the cause that still names the original."""
    if not error.startswith(RESERVED_PREFIX):
        return error, cause
    from restore_runbook.common.errors import StepFailed, StepTimedOut  # errors.py imports this module

    if error in TIMEOUTS:
        # Step Functions gives a Task timeout no cause; the history's TaskTimedOut event names the state.
        plain = cause or "a step ran past its TimeoutSeconds and was cut off; it may have acted before that (see the execution's history)"
        return StepTimedOut.__name__, f"{error}: {plain}"
    return StepFailed.__name__, f"{error}: {cause or 'Step Functions reported no cause'}"


REPORT_MARKER = " | report: "
# Far below Step Functions' 32 KB cause limit (which would cut the JSON mid-way) and short
# enough to read in a notification.
MAX_REPORT_CHARS = 3000
MAX_TEXT_CHARS = 200
TERSE_TEXT_CHARS = 40
MAX_ITEMS = 10
TRUNCATED_NOTE = "report shortened to fit {limit} characters: long texts cut, long lists and entries left out"


def explain(failure: dict[str, Any] | None) -> tuple[str, str]:
    """The original error name, and its cause in plain words.

    A Lambda error's Cause is the JSON the runtime wrote (errorMessage, errorType, stackTrace);
    the message alone is what the on-call engineer needs to read. A report at its end is kept
    when it parses and dropped when something cut it, so the cause never ends in broken JSON.
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
    text, report = split_report(str(cause))
    return error, str(cause) if report is not None else text


def outcome_of(failure: dict[str, Any] | None) -> tuple[str, str]:
    """The error and cause a workflow fails with after a caught `failure`: explained, and never a States.* name."""
    return reportable(*explain(failure))


def with_report(message: str, report: dict[str, Any] | None) -> str:
    """`message`, followed by the bounded JSON summary of `report` when there is one."""
    if not report:
        return message
    return f"{message}{REPORT_MARKER}{encode_report(report)}"


def split_report(cause: str) -> tuple[str, dict[str, Any] | None]:
    """The cause without its report, and the report; text appended after the report (a cleanup
    step adds `[cleanup: ...]`) stays with the text. An unreadable report is dropped."""
    at = cause.find(REPORT_MARKER)
    if at < 0:
        return cause, None
    head, tail = cause[:at], cause[at + len(REPORT_MARKER) :]
    try:
        report, end = json.JSONDecoder().raw_decode(tail)
    except ValueError:
        return head, None
    if not isinstance(report, dict):
        return head, None
    return head + tail[end:], report


def encode_report(report: dict[str, Any], limit: int = MAX_REPORT_CHARS) -> str:
    """Compact JSON of what a reader needs from `report`, never longer than `limit`, always valid."""
    summary = summarize(report)
    text = _dumps(summary)
    if len(text) <= limit:
        return text
    shortened = {"truncated": TRUNCATED_NOTE.format(limit=limit), **_shorten(summary)}
    text = _dumps(shortened)
    if len(text) <= limit:
        return text
    return _dumps(_fit(shortened, limit))


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """A check report reduced to the checks that did not pass, in full (name, status, detail,
    measured values), and the names of those that did; the summary sentence is the message."""
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key == "summary":
            continue
        if key == "checks" and isinstance(value, list):
            checks = [c for c in value if isinstance(c, dict)]
            out["failed"] = [{k: c.get(k) for k in ("name", "status", "detail", "values") if k in c} for c in checks if not c.get("passed")]
            out["passed"] = [c.get("name") for c in checks if c.get("passed")]
        elif not (key == "passed" and isinstance(value, bool)):  # a failed report's verdict is the error itself
            out[key] = value
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _shorten(value: Any, max_text: int = MAX_TEXT_CHARS) -> Any:
    if isinstance(value, str):
        return value if len(value) <= max_text else value[: max_text - 1] + "…"
    if isinstance(value, dict):
        return {str(k): _shorten(v, max_text) for k, v in value.items()}
    if isinstance(value, list):
        kept = [_shorten(v, max_text) for v in value[:MAX_ITEMS]]
        return kept + ([f"… {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    return value


def _fit(shortened: dict[str, Any], limit: int) -> dict[str, Any]:
    """Whole entries, in order, while they fit; a list is cut item by item."""
    kept: dict[str, Any] = {"truncated": shortened["truncated"]}
    for key, value in shortened.items():
        if key == "truncated":
            continue
        if len(_dumps({**kept, key: value})) <= limit:
            kept[key] = value
        elif isinstance(value, list):
            items: list[Any] = []
            for item in value:
                # a check's name and values matter more than the whole of its detail
                item = next(
                    (i for i in (item, _shorten(item, TERSE_TEXT_CHARS)) if len(_dumps({**kept, key: [*items, i, "… more"]})) <= limit),
                    None,
                )
                if item is None:
                    break
                items.append(item)
            if items and len(_dumps({**kept, key: [*items, "… more"]})) <= limit:
                kept[key] = [*items, "… more"]
    if len(_dumps(kept)) > limit:  # even the note does not fit: a limit this small says only that
        return {"truncated": True}
    return kept
