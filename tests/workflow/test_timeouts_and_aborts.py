"""Steps that run too long, executions that time out or are stopped by hand: the real ASL and handlers.

A Task past its TimeoutSeconds fails with States.Timeout (the harness raises what moto's interpreter
turns into it); a Lambda function past its own timeout fails with the error Lambda reports. A whole
execution that times out or is aborted never reaches its own journal step: the stack's EventBridge
rule calls the abandoned-execution function, which the harness calls with the same event.
"""

from __future__ import annotations

from typing import Any

import boto3
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


def test_an_abort_event_delivered_twice_is_journaled_and_announced_once(rehearsal):
    # Given an aborted snapshot whose ABORTED event was handled (EventBridge delivers at least once)
    world = rehearsal(calls_rows=300, interruptions=[Interruption("DescribeSnapshot", "ABORTED")])
    result = world.run("snapshot", {"reason": "pre-migration", "requested_by": "ci"})
    assert result.abandoned is not None and result.abandoned["outcome"] == "ABORTED"
    description = boto3.client("stepfunctions").describe_execution(executionArn=result.execution_arn)

    # When the same event arrives again
    again = world._report_status_change(description)

    # Then it says the end is already journaled, and the record, the locks and the notices are as they were
    assert again["recorded"] is False and again["why"] == "the record already reads ABORTED"
    assert world.describe_world() == result.world


def test_interruptions_are_written_as_the_console_names_states():
    with pytest.raises(ValueError, match="ABORTED or TIMED_OUT"):
        Interruption.parse("DescribeRestore", "FAILED")
    with pytest.raises(ValueError, match="not a state name"):
        Interruption.parse("Describe Restore; rm", "ABORTED")
    assert Interruption.parse("DescribeRestore", "TIMED_OUT") == Interruption("DescribeRestore", "TIMED_OUT")


def test_an_in_place_restore_aborted_once_its_swap_finished_is_journaled_as_swapped_and_releases_the_lock(rehearsal):
    # Given an in-place restore stopped by a person after the swap finished and the app was healthy, while it reported
    world = rehearsal(
        calls_rows=300,
        restore_minutes=3,
        snapshot_minutes=2,
        rename_minutes=2,
        interruptions=[Interruption("ReportInPlaceRestore", "ABORTED")],
    )
    result = world.run("in-place-restore", {"confirm": SOURCE, "mode": "point-in-time", "requested_by": "ana"})

    # Then the record says the swap is done and where the original is, not that nothing was renamed
    assert result.status == "ABORTED"
    (record,) = records(result, "in-place-restore")
    assert "it stopped in state ReportInPlaceRestore" in record["left_behind"]
    assert "after the swap had finished" in record["left_behind"] and "<name>-replaced-<time>" in record["left_behind"]
    assert "production was not renamed" not in record["left_behind"]
    # And it is true: the copy holds production's name, the original is parked, and the app serves
    assert [i for i in instance_ids(result.world) if "-replaced-" in i]
    assert {h["health"] for h in result.world["app_hosts"]} == {"connected"}
    # And production is not half-changed, so its lock is released
    assert locks(result) == [] and record["lock_release"] == f"released the lock on {SOURCE}"


def test_an_in_place_restore_aborted_mid_swap_keeps_production_locked_until_a_person_releases_it(rehearsal):
    from restore_runbook.journal import lock as journal_lock
    from restore_runbook.journal.table import JournalSettings

    # Given an in-place restore stopped by a person just after it stopped the app for the swap
    world = rehearsal(
        calls_rows=300, restore_minutes=3, snapshot_minutes=2, rename_minutes=2, interruptions=[Interruption("CheckStop", "ABORTED")]
    )
    result = world.run("in-place-restore", {"confirm": SOURCE, "mode": "point-in-time", "requested_by": "ana"})

    # Then the record tells what to check, and the lock on production is kept for recovery
    assert result.status == "ABORTED"
    (record,) = records(result, "in-place-restore")
    assert "the app may still be STOPPED on every API host" in record["left_behind"]
    assert record["lock_release"].startswith(f"KEPT the lock on {SOURCE}")
    (lock,) = locks(result)
    assert lock["needs_recovery"]
    assert {h["health"] for h in result.world["app_hosts"]} != {"connected"}, "the app really is stopped: the notice is true"

    # And a restore of production started meanwhile is refused at its lock, touching nothing
    refused = world.run("restore", {**PITR, "target_instance": "irisx-during-recovery"})
    assert (refused.status, refused.error) == ("FAILED", "OperationInProgress")
    assert "left it needing recovery" in refused.cause and f"restorectl unlock rds:{SOURCE}" in refused.cause
    assert "StartRestore" not in refused.states()

    # And once the person has put things right and released it, the next one proceeds past the lock
    journal_lock.unlock(resource=f"rds:{SOURCE}", settings=JournalSettings.from_env())
    again = world.run("restore", {**PITR, "target_instance": "irisx-after-recovery"})
    assert "StartRestore" in again.states(), again.cause
