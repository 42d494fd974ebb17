"""A step of a redriven execution refuses before it acts (common/redrive.py), and the emulated redrive
resumes where AWS would (restorectl/emulated_redrive.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restore_runbook.common.errors import RedriveRefused
from restore_runbook.common.redrive import redrive_count, refuses_redrive
from restorectl.emulated_redrive import NotRedrivable, entered_with, unsuccessful_state

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-in-place-restore:swap-0412"


def event(**context: Any) -> dict[str, Any]:
    return {"context": {"execution_id": ARN, "state": "RenameProductionAway", "workflow": "in-place-restore", **context}}


def test_a_step_of_an_execution_never_redriven_runs():
    acted: list[str] = []

    @refuses_redrive
    def handler(_event: dict[str, Any], _context: Any) -> str:
        acted.append("renamed")
        return "done"

    assert handler(event(redrive_count=0), None) == "done"
    # A handler called without the count (a unit test, an older definition) is not taken for a redriven one
    assert handler({"context": {"execution_id": ARN}}, None) == "done"
    assert handler({}, None) == "done"
    assert acted == ["renamed"] * 3


def test_a_step_of_a_redriven_execution_refuses_before_it_acts_and_says_what_to_do():
    acted: list[str] = []

    @refuses_redrive
    def handler(_event: dict[str, Any], _context: Any) -> None:
        acted.append("renamed")

    with pytest.raises(RedriveRefused) as refused:
        handler(event(redrive_count=1), None)
    assert acted == []
    cause = str(refused.value)
    assert cause.startswith("execution swap-0412 was redriven (once), and RenameProductionAway did nothing")
    assert "the in-place-restore workflow does not resume an ended execution" in cause
    assert "restorectl history --workflow in-place-restore" in cause
    assert "start a new execution" in cause
    with pytest.raises(RedriveRefused, match=r"was redriven \(3 times\)"):
        handler(event(redrive_count=3), None)


@pytest.mark.parametrize(
    ("context", "count"),
    [
        ({"redrive_count": 0, "own_redrive_count": 1}, 1),  # a Map child redriven with its Map Run: its own count
        ({"redrive_count": 2, "own_redrive_count": 0}, 2),  # a child a redriven parent started anew: the parent's
        ({"redrive_count": True}, 0),  # not a count
        ({"redrive_count": "1"}, 0),
        ({"redrive_count": None}, 0),
    ],
)
def test_a_map_child_counts_its_own_redrives_and_its_parents(context, count):
    assert redrive_count(event(**context)) == count


def test_the_wrapped_handler_keeps_its_name_and_says_it_refuses():
    @refuses_redrive
    def handler(_event: dict[str, Any], _context: Any) -> None:
        """Rename production away."""

    assert handler.__name__ == "handler" and handler.__doc__ == "Rename production away."
    assert getattr(handler, "refuses_redrive", False)


# ---------------------------------------------------------------------------------------- emulated redrive

DEFINITION = {
    "StartAt": "Start",
    "States": {
        "Start": {"Type": "Task", "Resource": "x", "Next": "Poll"},
        "Poll": {"Type": "Task", "Resource": "x", "Next": "Done"},
        "Failed": {"Type": "Fail", "Error": "E"},
        "Done": {"Type": "Succeed"},
    },
}


def entered(name: str, data: Any, kind: str = "Task") -> dict[str, Any]:
    return {"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name, "input": json.dumps(data)}}


def exited(name: str, data: Any, kind: str = "Task") -> dict[str, Any]:
    return {"type": f"{kind}StateExited", "stateExitedEventDetails": {"name": name, "output": json.dumps(data)}}


def test_a_redrive_resumes_at_the_state_the_execution_stopped_in_with_the_input_it_had():
    history = [entered("Start", {"a": 1}), exited("Start", {"a": 2}), entered("Poll", {"a": 2}), {"type": "ExecutionAborted"}]
    assert unsuccessful_state(DEFINITION, history) == ("Poll", {"a": 2})


def test_a_redrive_of_an_execution_that_ended_in_a_fail_state_resumes_at_it():
    history = [entered("Start", {}), exited("Start", {"b": 1}), entered("Failed", {"b": 1}, "Fail"), {"type": "ExecutionFailed"}]
    assert unsuccessful_state(DEFINITION, history) == ("Failed", {"b": 1})


def test_a_redrive_of_an_execution_that_ended_between_states_resumes_at_the_next_one():
    history = [entered("Start", {"a": 1}), exited("Start", {"a": 2}), {"type": "ExecutionTimedOut"}]
    assert unsuccessful_state(DEFINITION, history) == ("Poll", {"a": 2})


def test_a_history_with_no_state_to_resume_is_not_redrivable():
    with pytest.raises(NotRedrivable, match="no state it stopped in"):
        unsuccessful_state(DEFINITION, [{"type": "ExecutionStarted"}])
    with pytest.raises(NotRedrivable, match="never entered Poll"):
        entered_with([entered("Start", {})], "Poll")


def test_resuming_at_a_named_state_takes_its_last_input():
    history = [entered("Poll", {"n": 1}), exited("Poll", {"n": 1}), entered("Poll", {"n": 2})]
    assert entered_with(history, "Poll") == ("Poll", {"n": 2})


# ---------------------------------------------------------------------------------------- the journal's view


def test_a_redriven_execution_is_described_as_its_first_attempt_ended():
    from datetime import datetime, timezone

    from restore_runbook.journal.attempts import FirstAttempt, as_first_attempt, redrive_count

    stopped = datetime(2025, 11, 2, 12, 30, tzinfo=timezone.utc)
    latest = {
        "executionArn": ARN,
        "status": "FAILED",
        "error": "RedriveRefused",
        "cause": "execution swap-0412 was redriven (once), and CheckStop did nothing: ...",
        "stopDate": datetime(2025, 11, 2, 13, 0, tzinfo=timezone.utc),
        "redriveCount": 1,
    }
    first = FirstAttempt(status="ABORTED", error=None, cause="stopped by hand", stopped_at=stopped, last_state="CheckStop")

    described = as_first_attempt(latest, first)

    assert (described["status"], described["error"], described["cause"], described["stopDate"]) == (
        "ABORTED",
        None,
        "stopped by hand",
        stopped,
    )
    assert described["executionArn"] == ARN and redrive_count(described) == 1
    assert redrive_count({}) == 0 and redrive_count({"redriveCount": True}) == 0
