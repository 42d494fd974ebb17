"""A record left RUNNING by an execution that ended is closed with the real outcome, by the
status-change function (EventBridge calls it on every end) or, when that event was lost, by
`restorectl status`; the lock is released if that execution still holds it."""

from __future__ import annotations

from typing import Any

import pytest

from restorectl import journal_view
from restorectl.harness import available_workflows
from tests.workflow.conftest import SOURCE
from tests.workflow.test_journal_workflow import executions, locks

pytestmark = pytest.mark.workflow


def journal_table(world: Any) -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(world.journal.table_name)


def describe(arn: str) -> Any:
    import boto3

    return boto3.client("stepfunctions").describe_execution(executionArn=arn)


def test_a_success_whose_end_record_failed_is_closed_by_the_status_change_function(rehearsal):
    # Given a restore that succeeds, and an end-record step that keeps failing
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordSuccess=RuntimeError"])

    result = world.run("restore", {"mode": "snapshot", "requested_by": "on-call: ana"})

    # Then the workflow released the lock and notified without the record
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert locks(result) == []
    # And the status-change function, called on the SUCCEEDED event, closed the record from DescribeExecution
    (record,) = executions(result, "restore")
    assert record["outcome"] == "SUCCEEDED"
    assert record["reconciled"]["was"] == "RUNNING" and record["reconciled"]["source"] == "DescribeExecution"
    assert record["reconciled"]["by"] == "the status-change function irisx-restore-RecordAbandonedExecution (EventBridge)"
    assert record["reconciled"]["at"] and record["finished_at"]
    assert record["result"]["target_instance"] == result.output["target_instance"]
    assert record["error"] is None
    assert result.reconciled is not None and result.reconciled["reconciled"] is True
    # And the success was announced once: ReleaseWithoutRecord did it, the reconciler does not repeat it
    successes = [n for n in result.world["notifications"] if "restore SUCCEEDED" in n["subject"]]
    assert len(successes) == 1 and "end record could NOT be written" in successes[0]["message"]


def test_a_success_whose_status_change_was_lost_is_closed_by_restorectl_status(rehearsal):
    # Given the same failing end record, and an EventBridge event that never arrives
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordSuccess=RuntimeError"], deliver_status_changes=False)
    result = world.run("restore", {"mode": "snapshot"})
    assert result.status == "SUCCEEDED", result.cause
    (record,) = executions(result, "restore")
    assert record["outcome"] == "RUNNING" and "reconciled" not in record

    # When someone runs restorectl status
    table = journal_table(world)
    closed = journal_view.reconcile_running(table, describe, reconciled_by="restorectl status (ana)", source_instance=SOURCE)

    # Then the record reads SUCCEEDED, says who reconciled it, and status shows it
    (done,) = closed
    assert (done["outcome"], done["by"]) == ("SUCCEEDED", "restorectl status (ana)")
    (record,) = [r for r in world.describe_world()["journal"] if r["pk"] == "WORKFLOW#restore"]
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["by"] == "restorectl status (ana)"
    state = journal_view.status(table, available_workflows(), closed)
    assert state["last_runs"]["restore"]["outcome"] == "SUCCEEDED"
    assert state["reconciled"] == closed
    # And a second status finds nothing left to repair
    assert journal_view.reconcile_running(table, describe, reconciled_by="restorectl status (ben)", source_instance=SOURCE) == []


def test_restorectl_status_leaves_a_record_step_functions_will_not_describe_and_says_so(rehearsal, capsys):
    from botocore.exceptions import ClientError

    # Given a record left RUNNING, and an operator whose role may not describe that execution
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordSuccess=RuntimeError"], deliver_status_changes=False)
    result = world.run("restore", {"mode": "snapshot"})
    assert result.status == "SUCCEEDED", result.cause

    def refused(_arn: str) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "DescribeExecution")

    # When someone runs restorectl status
    table = journal_table(world)
    closed = journal_view.reconcile_running(table, refused, reconciled_by="restorectl status (ana)", source_instance=SOURCE)

    # Then that record is left RUNNING, and status says which and why instead of stopping
    (skipped,) = closed
    assert skipped["execution_arn"] == result.execution_arn and skipped["not_reconciled"].startswith("AccessDeniedException")
    assert [r["outcome"] for r in world.describe_world()["journal"] if r["pk"] == "WORKFLOW#restore"] == ["RUNNING"]
    journal_view.print_status(journal_view.status(table, available_workflows(), closed))
    assert f"NOT reconciled: restore execution {result.execution_arn.rsplit(':', 1)[-1]} reads RUNNING" in capsys.readouterr().out


def test_a_drill_whose_end_record_failed_has_its_lock_released_by_the_reconciler(rehearsal):
    # Given a drill whose end record cannot be written, nor its lock released without it
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError"])

    result = world.run("drill", {"requested_by": "scheduler"})

    # Then the drill succeeded and tore its copy down
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert [i["id"] for i in result.world["db_instances"]] == [SOURCE]
    # And the reconciler closed the record and released the drill's lock, which nothing else would have
    (record,) = executions(result, "drill")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"
    assert record["lock_release"] == f"released the lock on drill:{SOURCE}"
    assert locks(result) == []


def test_a_failure_whose_end_record_failed_is_closed_failed_with_its_error_and_notified(rehearsal):
    # Given a snapshot refused by its input check, and a failure-record step that fails too
    world = rehearsal(inject=["RecordFailure=RuntimeError"])

    result = world.run("snapshot", {"reason": "because"})

    # Then the execution fails with the original error through the catch of RecordFailure
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert result.states()[-2:] == ["RecordFailure", "SnapshotFailedWithOriginalError"]
    assert [p["error"] for p in result.path if p["state"] == "RecordFailure"] == ["RuntimeError"]
    # And the reconciler closed the record FAILED with the execution's own error and cause, and sent
    # the failure notification the workflow could not
    (record,) = executions(result, "snapshot")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "InvalidInput", result.cause)
    assert record["reconciled"]["was"] == "RUNNING"
    (notification,) = result.world["notifications"]
    assert "snapshot FAILED" in notification["subject"] and "reconciled from RUNNING" in notification["message"]


def test_an_in_place_restore_whose_end_record_failed_has_its_lock_on_production_released_by_the_reconciler(rehearsal):
    # Given an in-place restore that succeeds, whose end record cannot be written, nor its lock on
    # production released without it
    world = rehearsal(
        calls_rows=300,
        restore_minutes=3,
        snapshot_minutes=2,
        rename_minutes=2,
        inject=["RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError"],
    )

    result = world.run("in-place-restore", {"confirm": SOURCE, "mode": "point-in-time", "reason": "bad migration"})

    # Then production runs on the validated copy and the app serves
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert {h["health"] for h in result.world["app_hosts"]} == {"connected"}
    # And the reconciler closed the record, released production's lock, and announced the success the workflow could not
    (record,) = executions(result, "in-place-restore")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"
    assert record["lock_release"] == f"released the lock on {SOURCE}"
    assert locks(result) == []
    (notification,) = [n for n in result.world["notifications"] if "in-place-restore SUCCEEDED" in n["subject"]]
    assert "reconciled from RUNNING" in notification["message"]


def test_a_recordings_restore_whose_end_record_failed_has_its_prefix_lock_released_by_the_reconciler(rehearsal):
    world = rehearsal(inject=["RecordSuccess=RuntimeError", "ReleaseWithoutRecord=RuntimeError"])

    result = world.run(
        "recordings-restore", {"bucket": "irisx-recordings", "prefix": "recordings/", "undelete_after": "2025-10-20T00:00:00Z"}
    )

    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    (record,) = executions(result, "recordings-restore")
    assert record["outcome"] == "SUCCEEDED" and record["reconciled"]["was"] == "RUNNING"
    assert record["lock_release"] == "released the lock on s3://irisx-recordings/recordings/"
    assert locks(result) == []
