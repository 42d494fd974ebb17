"""The journal, the lock on the instance a workflow changes and the notifications, as the workflows themselves write them."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from restore_runbook.common import failure
from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_snapshot_workflow import outputs_of

pytestmark = pytest.mark.workflow

EXECUTION_PREFIX = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-restore:"


def executions(result: Any, workflow: str) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"] == f"WORKFLOW#{workflow}"]


def locks(result: Any) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


def put_lock(world: Any, holder: str, source: str = SOURCE) -> None:
    import boto3

    boto3.resource("dynamodb").Table(world.journal.table_name).put_item(
        Item={
            "pk": f"LOCK#rds:{source}",
            "sk": "LOCK",
            "gsi1pk": "LOCK",
            "gsi1sk": f"rds:{source}",
            "resource": f"rds:{source}",
            "holder": holder,
            "workflow": "restore",
            "acquired_at": "2025-11-02T11:00:00Z",
            "requested_by": "someone",
        }
    )


def test_a_successful_restore_is_journaled_with_phases_and_validation_releases_its_lock_and_notifies(rehearsal):
    world = rehearsal()

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-journaled", "requested_by": "on-call: ana"})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["target_instance"] == "irisx-journaled"  # the report is still RestoreSucceeded's
    (record,) = executions(result, "restore")
    assert record["outcome"] == "SUCCEEDED"
    assert record["requested_by"] == "on-call: ana"
    assert record["input"] == {"mode": "snapshot", "target_instance": "irisx-journaled", "requested_by": "on-call: ana"}
    assert record["execution_arn"].startswith(EXECUTION_PREFIX)
    assert record["validation"]["passed"] is True
    assert [p["phase"] for p in record["phases"]] == ["restore"]
    assert record["phases"][0]["end"] > record["phases"][0]["start"]
    assert record["duration_seconds"] >= 20 * 60
    assert record["lock_release"] == f"released the lock on {SOURCE}"
    assert locks(result) == []
    (notification,) = result.world["notifications"]
    assert notification["subject"] == "[irisx-restore] restore SUCCEEDED"
    assert "Left behind: the restored instance irisx-journaled" in notification["message"]
    assert f"#/v2/executions/details/{record['execution_arn']}" in notification["message"]


RESTORE_FAILURES = [
    (dict(), {"mode": "yesterday"}, "InvalidInput", "nothing was created"),
    (dict(restore_outcome="incompatible-parameters"), {"mode": "snapshot"}, "RestoreFailed", "deleted irisx-"),
    (
        dict(restore_minutes=24 * 60, settings_overrides={"RESTORE_POLL_MAX_ATTEMPTS": "3"}),
        {"mode": "snapshot"},
        "RestoreTimedOut",
        "deleted irisx-",
    ),
    (dict(settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'}), {"mode": "snapshot"}, "ValidationFailed", "deleted irisx-"),
    (
        dict(restore_outcome="failed", inject=["CleanUpAfterFailure=CleanupCrashed"]),
        {"mode": "snapshot"},
        "RestoreFailed",
        "cleanup FAILED",
    ),
    (dict(inject=["RecordStart=JournalUnavailable"]), {"mode": "snapshot"}, "JournalUnavailable", "nothing was created"),
]


@pytest.mark.parametrize(
    ("options", "execution_input", "error", "left"),
    RESTORE_FAILURES,
    ids=["bad-input", "rds-failed", "timed-out", "validation", "cleanup-failed", "journal-start-failed"],
)
def test_every_failure_path_of_restore_is_journaled_releases_the_lock_and_notifies(rehearsal, options, execution_input, error, left):
    world = rehearsal(**options)

    result = world.run("restore", execution_input)

    assert (result.status, result.error) == ("FAILED", error)
    assert result.states()[-2:] == ["RecordFailure", "RestoreFailedWithOriginalError"]
    (record,) = executions(result, "restore")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", result.error, result.cause)
    assert left in record["left_behind"] or left in record["cause"]
    assert locks(result) == []
    (notification,) = result.world["notifications"]
    assert notification["subject"] == f"[irisx-restore] restore FAILED: {error}"
    assert "Cause:" in notification["message"] and "Left behind:" in notification["message"]


SNAPSHOT_FAILURES = [
    (dict(), {"reason": "nope"}, "InvalidInput"),
    (dict(snapshot_outcome="failed"), {"reason": "upgrade"}, "SnapshotFailed"),
    (dict(snapshot_minutes=24 * 60, settings_overrides={"SNAPSHOT_POLL_MAX_ATTEMPTS": "2"}), {"reason": "upgrade"}, "SnapshotTimedOut"),
    (dict(snapshot_outcome="failed", inject=["CleanUpAfterFailure=CleanupCrashed"]), {"reason": "upgrade"}, "SnapshotFailed"),
]


@pytest.mark.parametrize(
    ("options", "execution_input", "error"), SNAPSHOT_FAILURES, ids=["bad-input", "rds-failed", "timed-out", "cleanup-failed"]
)
def test_every_failure_path_of_snapshot_is_journaled_and_notifies(rehearsal, options, execution_input, error):
    world = rehearsal(**options)

    result = world.run("snapshot", execution_input)

    assert (result.status, result.error) == ("FAILED", error)
    (record,) = executions(result, "snapshot")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", result.error, result.cause)
    (notification,) = result.world["notifications"]
    assert notification["subject"] == f"[irisx-restore] snapshot FAILED: {error}"


def test_a_failed_validation_reaches_the_journal_and_the_notification_with_the_failing_check_and_its_values(rehearsal):
    # Given settings that expect a table the restored database does not have
    world = rehearsal(settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'})

    # When a restore validates the copy
    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-unvalidated"})

    # Then the execution fails with ValidationFailed and a cause that still reads as a sentence first
    assert (result.status, result.error) == ("FAILED", "ValidationFailed")
    text, report = failure.split_report(result.cause)
    assert "checks failed" in text and "recordings" in text and "deleted irisx-unvalidated" in text
    # And the journal record holds the failing check by name, with the values it measured
    (record,) = executions(result, "restore")
    assert record["failure_report"] == report
    failed = [c for c in record["failure_report"]["failed"] if c["status"] == "failed"]
    assert failed, record["failure_report"]
    culprit = next(c for c in failed if "recordings" in c["detail"])
    assert culprit["name"] and culprit["values"]
    assert "recordings" in json.dumps(culprit["values"])
    assert "connect" in record["failure_report"]["passed"]
    # And the notification names that check and its measured values
    (notification,) = result.world["notifications"]
    assert f"{culprit['name']} (failed): {culprit['detail']}" in notification["message"]
    assert json.dumps(culprit["values"], sort_keys=True) in notification["message"]
    assert failure.REPORT_MARKER not in notification["message"]


def test_a_failing_journal_never_hides_the_original_error(rehearsal):
    world = rehearsal(settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'}, inject=["RecordFailure=JournalUnavailable"])

    result = world.run("restore", {"mode": "snapshot"})

    assert (result.status, result.error) == ("FAILED", "ValidationFailed")
    assert "recordings" in result.cause


def test_two_concurrent_restores_on_one_source_exactly_one_proceeds(rehearsal):
    # Given a first restore that has taken the lock and is waiting for RDS (held at its first poll)
    world = rehearsal()
    reached, release = threading.Event(), threading.Event()
    answer = world.bridge.answer

    def held_answer(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == "DescribeRestore" and not release.is_set():
            reached.set()
            release.wait(timeout=60)
        return answer(function_name, body, headers)

    world.bridge.answer = held_answer  # type: ignore[method-assign]
    first = world.start("restore", {"mode": "snapshot", "target_instance": "irisx-first", "requested_by": "ana"})
    assert reached.wait(timeout=60), "the first restore never reached its poll"

    # When a second restore of the same source starts meanwhile
    second = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-second", "requested_by": "ben"})

    # Then it fails at once with OperationInProgress naming the holder, creating nothing, taking nothing
    assert (second.status, second.error) == ("FAILED", "OperationInProgress")
    assert first.rsplit(":", 1)[-1] in second.cause and "requested by ana" in second.cause
    assert "StartRestore" not in second.states()
    assert "irisx-second" not in instance_ids(second.world)
    (lock,) = locks(second)
    assert lock["holder"] == first

    # And the first one proceeds to success and releases its lock
    release.set()
    done = world.follow("restore", first)
    assert done.status == "SUCCEEDED", done.cause
    assert "irisx-first" in instance_ids(done.world)
    assert locks(done) == []
    outcomes = sorted((r["execution_arn"] == first, r["outcome"]) for r in executions(done, "restore"))
    assert outcomes == [(False, "FAILED"), (True, "SUCCEEDED")]


@pytest.mark.parametrize("holder", ["never-ran", "finished"])
def test_a_lock_whose_holder_no_longer_runs_is_taken_over(rehearsal, holder):
    # Given a lock left behind by an execution that crashed out of band, or one that has ended
    world = rehearsal()
    if holder == "finished":
        stale = world.run("snapshot", {"reason": "manual"})
        assert stale.status == "SUCCEEDED"
        stale_arn = executions(stale, "snapshot")[0]["execution_arn"]
    else:
        stale_arn = EXECUTION_PREFIX + "crashed-long-ago"
    put_lock(world, stale_arn)

    # When a restore starts
    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-after-stale"})

    # Then it takes the lock over, proceeds, and releases it at the end
    assert result.status == "SUCCEEDED", result.cause
    (taken,) = outputs_of(result, "TakeLock")
    assert taken["took_over_from"] == stale_arn
    assert locks(result) == []
