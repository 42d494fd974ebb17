"""Steps that run too long, executions that time out or are stopped by hand: the real ASL and handlers.

A Task past its TimeoutSeconds fails with States.Timeout (the harness raises what moto's interpreter
turns into it); a Lambda function past its own timeout fails with the error Lambda reports. A whole
execution that times out or is aborted never reaches its own journal step: the stack's EventBridge
rule calls the abandoned-execution function, which the harness calls with the same event.
"""

from __future__ import annotations

from typing import Any

import pytest

from restorectl.lambda_bridge import Interruption
from tests.workflow.conftest import SOURCE, instance_ids

pytestmark = pytest.mark.workflow

PITR = {"mode": "point-in-time", "restore_time": "latest", "requested_by": "on-call: ana"}


def records(result: Any, workflow: str) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"] == f"WORKFLOW#{workflow}"]


def locks(result: Any) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


@pytest.mark.parametrize(
    ("state", "injected", "ends_with", "explained"),
    [
        ("DescribeRestore", "States.Timeout", "StepTimedOut", "States.Timeout: a step ran past its TimeoutSeconds"),
        ("ValidateRestore", "States.Timeout", "StepTimedOut", "States.Timeout: a step ran past its TimeoutSeconds"),
        # What Lambda reports when the function itself runs past its timeout.
        ("ValidateRestore", "Sandbox.Timedout", "Sandbox.Timedout", "Task timed out after 30.00 seconds"),
    ],
)
def test_a_restore_step_that_times_out_removes_the_copy_and_fails_naming_the_timeout(rehearsal, state, injected, ends_with, explained):
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=[f"{state}={injected}"])

    result = world.run("restore", PITR)

    # Then the timeout is the state's error, and the execution fails with a name a Fail state may carry
    assert result.status == "FAILED"
    assert next(step for step in result.path if step["state"] == state)["error"] == injected
    assert result.error == ends_with
    assert explained in result.cause
    # and the world is as it was: the copy is gone, production untouched, the lock released, the journal closed
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    (record,) = records(result, "restore")
    assert (record["outcome"], record["error"]) == ("FAILED", ends_with)
    assert "deleted" in record["left_behind"]


def test_a_start_that_times_out_after_creating_the_copy_still_leaves_no_orphan(rehearsal):
    # Given StartRestore's call reaches RDS but the Task is cut off before it answers
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["StartRestore=States.Timeout@after"])

    result = world.run("restore", PITR)

    assert result.status == "FAILED"
    assert result.error == "StepTimedOut"
    # Then cleanup finds the copy by this execution's tag and deletes it
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    assert "States.Timeout" in records(result, "restore")[0]["cause"]


def test_a_restore_whose_execution_times_out_is_journaled_unlocked_and_notified(rehearsal):
    # Given the execution's own TimeoutSeconds runs out while it waits for RDS
    world = rehearsal(calls_rows=300, restore_minutes=3, interruptions=[Interruption("DescribeRestore", "TIMED_OUT")])

    result = world.run("restore", PITR)

    # Then no state of its own ran after the timeout
    assert result.status == "TIMED_OUT"
    assert result.states()[-1] == "DescribeRestore"
    # and the abandoned-execution function closed its record, released its lock and notified
    assert result.abandoned is not None and result.abandoned["last_state"] == "DescribeRestore"
    (record,) = records(result, "restore")
    assert (record["outcome"], record["error"]) == ("TIMED_OUT", "States.Timeout")
    assert record["requested_by"] == "on-call: ana"
    assert "it stopped in state DescribeRestore" in record["left_behind"]
    assert f"irisx-restore:execution={record['execution_arn']}" in record["left_behind"]
    assert locks(result) == []
    assert any("TIMED_OUT" in n["subject"] or "TIMED_OUT" in n["message"] for n in result.world["notifications"])
    # and what it left behind is what the record says: the copy it was waiting for
    assert len(instance_ids(result.world)) == 2

    # When the next restore of the same source starts, the lock does not stand in its way
    again = world.run("restore", {**PITR, "target_instance": "irisx-after-timeout"})
    assert again.status == "SUCCEEDED", again.cause
    assert "TakeLock" in again.states()


def test_an_aborted_snapshot_is_journaled_and_notified(rehearsal):
    world = rehearsal(calls_rows=300, interruptions=[Interruption("DescribeSnapshot", "ABORTED")])

    result = world.run("snapshot", {"reason": "pre-migration", "requested_by": "ci"})

    assert result.status == "ABORTED"
    assert result.abandoned is not None and result.abandoned["workflow"] == "snapshot"
    (record,) = records(result, "snapshot")
    assert (record["outcome"], record["error"]) == ("ABORTED", "ExecutionAborted")
    assert "it stopped in state DescribeSnapshot" in record["left_behind"]
    assert any("ABORTED" in n["subject"] or "ABORTED" in n["message"] for n in result.world["notifications"])


def test_interruptions_are_written_as_the_console_names_states():
    with pytest.raises(ValueError, match="ABORTED or TIMED_OUT"):
        Interruption.parse("DescribeRestore", "FAILED")
    with pytest.raises(ValueError, match="not a state name"):
        Interruption.parse("Describe Restore; rm", "ABORTED")
    assert Interruption.parse("DescribeRestore", "TIMED_OUT") == Interruption("DescribeRestore", "TIMED_OUT")
