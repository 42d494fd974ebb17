"""Step Functions' Redrive, pressed on an ended execution: the real ASL and handlers, and the emulated
redrive (restorectl/emulated_redrive.py), which resumes the execution where it stopped with the
input that state had, its first attempt's ARN, and RedriveCount one higher.

The workflows resume no ended execution (lambdas/restore_runbook/common/redrive.py): the step a
redrive resumes at does nothing and the attempt ends in RedriveRefused, so the world, the lock and
the journal stay as the first attempt left them. test_fault_matrix.py resumes every Task of every
success path the same way.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from restorectl.emulated_recordings import BAD_DEPLOY_AGO
from restorectl.emulated_redrive import NotRedrivable
from restorectl.lambda_bridge import Interruption
from tests.workflow.conftest import SOURCE, instance_ids

pytestmark = pytest.mark.workflow

PITR = {"mode": "point-in-time", "restore_time": "latest", "requested_by": "on-call: ana"}
IN_PLACE = {"confirm": SOURCE, "mode": "point-in-time", "requested_by": "on-call: ana"}


def journal_of(world: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(world["journal"], key=lambda r: (r["pk"], r["sk"]))


def locks(world: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in world["journal"] if r["pk"].startswith("LOCK#")]


def assert_refused_at(redriven: Any, state: str, first: Any) -> None:
    """The redriven attempt ended at `state`, the step it resumed at, which did nothing."""
    assert redriven.status == "FAILED"
    assert redriven.error == "RedriveRefused"
    assert redriven.execution_arn == first.execution_arn, "a redriven execution keeps its ARN"
    assert redriven.states()[-3:] == [state, "ReadRedriveRefusal", "RedriveRefused"]
    assert [(i["state"], i["error"]) for i in redriven.invocations] == [(state, "RedriveRefused")]
    name = first.execution_arn.rsplit(":", 1)[-1]
    assert f"execution {name} was redriven (once), and {state} did nothing" in redriven.cause
    assert f"restorectl history --workflow {first.workflow}" in redriven.cause


def test_an_in_place_restore_stopped_mid_swap_and_redriven_changes_nothing_and_keeps_production_locked(rehearsal):
    # Given an in-place restore stopped by a person just after it stopped the app for the swap
    world = rehearsal(
        calls_rows=300, restore_minutes=3, snapshot_minutes=2, rename_minutes=2, interruptions=[Interruption("CheckStop", "ABORTED")]
    )
    stopped = world.run("in-place-restore", IN_PLACE)
    assert stopped.status == "ABORTED"
    (lock,) = locks(stopped.world)
    assert lock["needs_recovery"], "the lock is kept for a person to release"

    # When someone presses Redrive on it
    redriven = world.redrive(stopped.execution_arn)

    # Then the step it resumes at refuses, and the attempt ends there
    assert_refused_at(redriven, "CheckStop", stopped)
    assert redriven.states() == ["CheckStop", "ReadRedriveRefusal", "RedriveRefused"]
    # and the world is as the stop left it: the app still stopped, production not renamed, the lock still
    # kept for recovery by the first attempt, its journal record still ABORTED
    assert redriven.world == stopped.world
    assert {h["health"] for h in redriven.world["app_hosts"]} != {"connected"}
    (record,) = [r for r in redriven.world["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert record["outcome"] == "ABORTED"

    # And pressing it again resumes the latest attempt where it ended, at its RedriveRefused Fail state:
    # it fails again with the same words, running no step
    again = world.redrive(stopped.execution_arn)
    assert again.states() == ["RedriveRefused"]
    assert (again.error, again.cause) == ("RedriveRefused", redriven.cause)
    assert again.invocations == []
    assert again.world == stopped.world


def in_place_stopped_mid_swap_with_its_event_lost(rehearsal: Any) -> tuple[Any, Any]:
    world = rehearsal(
        calls_rows=300,
        restore_minutes=3,
        snapshot_minutes=2,
        rename_minutes=2,
        interruptions=[Interruption("CheckStop", "ABORTED")],
        deliver_status_changes=False,
    )
    stopped = world.run("in-place-restore", IN_PLACE)
    assert stopped.status == "ABORTED" and stopped.abandoned is None
    (record,) = [r for r in stopped.world["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert record["outcome"] == "RUNNING", "the ABORTED event was lost: nothing journaled the stop"
    return world, stopped


def notices_of(world_now: dict[str, Any], execution_arn: str) -> list[dict[str, Any]]:
    name = execution_arn.rsplit(":", 1)[-1]
    return [n for n in world_now["notifications"] if name in n["message"] or name in n["subject"]]


def assert_journaled_as_stopped_mid_swap(world_now: dict[str, Any], execution_arn: str) -> None:
    (record,) = [r for r in world_now["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert (record["outcome"], record["error"]) == ("ABORTED", "ExecutionAborted"), record
    assert "it stopped in state CheckStop" in record["left_behind"], "the first attempt's last state, not the refusal's"
    assert "the app may still be STOPPED on every API host" in record["left_behind"]
    assert "redriven 1 time(s) since: each redriven attempt refused to act (RedriveRefused)" in record["cause"]
    (lock,) = locks(world_now)
    assert lock["needs_recovery"], "production stays locked for a person: the app is stopped mid-swap"
    (notice,) = notices_of(world_now, execution_arn)
    assert "ABORTED" in notice["subject"] or "ABORTED" in notice["message"]


def test_a_redrive_after_the_stops_event_was_lost_journals_the_stop_and_keeps_production_locked(rehearsal):
    # Given an in-place restore stopped mid-swap whose ABORTED event never reached the journal
    world, stopped = in_place_stopped_mid_swap_with_its_event_lost(rehearsal)

    # When it is redriven, and the redriven attempt's own end (FAILED) reaches the status-change function
    world.options.deliver_status_changes = True
    redriven = world.redrive(stopped.execution_arn)
    assert redriven.error == "RedriveRefused"

    # Then the record is closed as the first attempt ended (ABORTED in CheckStop), not as the refusal
    # (FAILED in RedriveRefused), and the lock on production is kept for recovery, not released
    assert redriven.reconciled is not None and redriven.reconciled["outcome"] == "ABORTED"
    assert_journaled_as_stopped_mid_swap(redriven.world, stopped.execution_arn)


def test_a_restore_that_timed_out_with_its_event_lost_and_is_redriven_is_journaled_as_it_timed_out(rehearsal):
    # Given a restore whose execution timed out while it polled RDS, its TIMED_OUT event lost
    world = rehearsal(calls_rows=300, restore_minutes=3, interruptions=[Interruption("DescribeRestore", "TIMED_OUT")])
    world.options.deliver_status_changes = False
    timed_out = world.run("restore", PITR)
    assert timed_out.status == "TIMED_OUT" and timed_out.abandoned is None

    # When it is redriven and the redriven attempt's end reaches the status-change function
    world.options.deliver_status_changes = True
    redriven = world.redrive(timed_out.execution_arn)

    # Then the record says it timed out in DescribeRestore and what it left (the copy), as its own event would
    # have, its lock is released (nothing was mid-change), and one notice went out
    (record,) = [r for r in redriven.world["journal"] if r["pk"] == "WORKFLOW#restore"]
    assert (record["outcome"], record["error"]) == ("TIMED_OUT", "States.Timeout"), record
    assert "it stopped in state DescribeRestore" in record["left_behind"]
    assert f"irisx-restore:execution={timed_out.execution_arn}" in record["left_behind"]
    assert locks(redriven.world) == []
    assert len(notices_of(redriven.world, timed_out.execution_arn)) == 1


def test_a_stops_event_that_arrives_after_a_redrive_still_keeps_production_locked(rehearsal):
    # Given an in-place restore stopped mid-swap and redriven before its ABORTED event was handled
    world, stopped = in_place_stopped_mid_swap_with_its_event_lost(rehearsal)
    world.redrive(stopped.execution_arn)

    # When the ABORTED event arrives now, when the history's newest states are the refusal's
    description = boto3.client("stepfunctions").describe_execution(executionArn=stopped.execution_arn)
    assert description["redriveCount"] == 1 and description["status"] == "FAILED"
    handled = world._report_status_change({**description, "status": "ABORTED"})

    # Then it journals the stop from the first attempt, and production stays locked for recovery
    assert handled.get("outcome") == "ABORTED", handled
    world_now = world.describe_world()
    assert_journaled_as_stopped_mid_swap(world_now, stopped.execution_arn)

    # And a second delivery of the same event changes nothing
    assert world._report_status_change({**description, "status": "ABORTED"}).get("reconciled") is False
    assert world.describe_world() == world_now


def test_a_restore_stopped_while_it_points_the_hosts_at_the_copy_and_redriven_sends_no_command(rehearsal):
    # Given a restore with cutover stopped just after it sent the hosts the new DB_HOST
    world = rehearsal(calls_rows=300, restore_minutes=3, interruptions=[Interruption("StartCutover", "ABORTED")])
    stopped = world.run("restore", {"mode": "snapshot", "cutover": True, "requested_by": "on-call: ana"})
    assert stopped.status == "ABORTED"

    # When it is redriven
    redriven = world.redrive(stopped.execution_arn)

    # Then StartCutover refuses before sending anything, and nothing changed: each host's DB_HOST, the copy,
    # the journal, the lock
    assert_refused_at(redriven, "StartCutover", stopped)
    assert redriven.world == stopped.world
    assert len(instance_ids(redriven.world)) == 2, "the copy the first attempt made is still there, as its record says"


def test_a_restore_that_timed_out_while_waiting_for_rds_and_is_redriven_refuses_to_look_again(rehearsal):
    # Given a restore whose execution timed out while it asked RDS how the restore was going
    world = rehearsal(calls_rows=300, restore_minutes=3, interruptions=[Interruption("DescribeRestore", "TIMED_OUT")])
    timed_out = world.run("restore", PITR)
    assert timed_out.status == "TIMED_OUT"

    # When it is redriven, it resumes at the step it was in
    redriven = world.redrive(timed_out.execution_arn)

    # Then that step refuses, and the journal and the instances are as the timeout left them
    assert_refused_at(redriven, "DescribeRestore", timed_out)
    assert redriven.states() == ["DescribeRestore", "ReadRedriveRefusal", "RedriveRefused"]
    assert redriven.world == timed_out.world
    assert len(instance_ids(redriven.world)) == 2, "the copy it was waiting for is left, as its record says"


def test_a_recordings_restore_stopped_mid_map_and_redriven_restores_nothing(rehearsal):
    # Given a recordings restore stopped while its Distributed Map's children copy versions
    world = rehearsal(calls_rows=200, recordings=10, interruptions=[Interruption("ApplyRecordingsBatch", "ABORTED")])
    as_of = (world.clock.now() - BAD_DEPLOY_AGO).strftime("%Y-%m-%dT%H:%M:%SZ")
    stopped = world.run("recordings-restore", {"bucket": "irisx-recordings", "prefix": "recordings/", "as_of": as_of})
    assert stopped.status == "ABORTED"

    # When it is redriven at its Map state
    redriven = world.redrive(stopped.execution_arn)

    # Then every child's step refuses (each child ends as a batch that left no result), the parent's next
    # step refuses too, and no recording changed
    assert redriven.states()[0] == "ApplyPlan"
    assert redriven.map_children, "the Map ran its children again"
    for child in redriven.map_children:
        assert "BatchLeftNoResult" in child.states(), child.states()
    assert {i["error"] for i in redriven.invocations} == {"RedriveRefused"}
    assert redriven.error == "RedriveRefused"
    assert redriven.states()[-2:] == ["ReadRedriveRefusal", "RedriveRefused"]
    assert redriven.world == stopped.world


def test_a_restore_that_failed_and_is_redriven_fails_again_at_its_fail_state_running_no_step(rehearsal):
    # Given a restore refused for its input (nothing was created)
    world = rehearsal(calls_rows=300)
    failed = world.run("restore", {**PITR, "restore_time": "1999-01-01T00:00:00Z"})
    assert failed.status == "FAILED"

    # When it is redriven, the emulation resumes at the Fail state it ended in
    redriven = world.redrive(failed.execution_arn)

    # Then it fails again with the same error, and no step ran
    assert redriven.states() == ["RestoreFailedWithOriginalError"]
    assert (redriven.error, redriven.cause) == (failed.error, failed.cause)
    assert redriven.invocations == []
    assert redriven.world == failed.world


def test_only_an_ended_unsuccessful_execution_can_be_redriven(rehearsal):
    world = rehearsal(calls_rows=300)
    succeeded = world.run("snapshot", {"reason": "pre-migration", "requested_by": "ci"})
    assert succeeded.status == "SUCCEEDED"
    with pytest.raises(NotRedrivable, match="is SUCCEEDED: only a FAILED, ABORTED or TIMED_OUT one can be redriven"):
        world.redrive(succeeded.execution_arn)
