"""The `rollback` workflow journaled and locked like `restore`: a record at start and at end, the
lock on the source (rds:<source>) taken after the input check and released at the end,
notifications on failure and on success, and a second mutating execution on the same source
refused at once."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_journal_workflow import executions, locks
from tests.workflow.test_snapshot_workflow import outputs_of

pytestmark = pytest.mark.workflow

ROLLBACK_PREFIX = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-rollback:"
JOURNAL_START = ["RecordRequest", "RecordStart", "CheckRollbackInput"]


def rollback_notifications(result: Any) -> list[dict[str, str]]:
    return [n for n in result.world["notifications"] if n["subject"].startswith("[irisx-restore] rollback ")]


def hosts_of(world: Any) -> list[tuple[str, str]]:
    return [(h["db_host"], h["health"]) for h in world["app_hosts"]]


def test_a_successful_rollback_is_journaled_releases_its_lock_and_notifies(rehearsal):
    # Given a restored copy of the source
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    # When the rollback workflow runs on it
    execution_input = {"restored_instance": target, "requested_by": "on-call: ana"}
    result = world.run("rollback", execution_input)

    # Then it succeeds on the journaled path: start record, input check, lock, ..., end record
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states[:4] == [*JOURNAL_START, "TakeLock"]
    assert states[-2:] == ["RollbackSucceeded", "RecordSuccess"]
    assert states.index("TakeLock") < states.index("StopApp") < states.index("DeleteRestoredInstance")
    assert states.index("CheckHealthOnOriginal") < states.index("DeleteRestoredInstance") == len(states) - 3
    # And the output is still RollbackSucceeded's report, nothing of the journal in it
    assert set(result.output) == {"restored_instance", "original_endpoint", "deleted", "stopped", "hosts", "health", "monitoring"}
    assert result.output["deleted"].startswith(f"deleted {target}")

    # And the lock was taken on the source the copy was made from, by this execution
    (record,) = executions(result, "rollback")
    (taken,) = outputs_of(result, "TakeLock")
    assert (taken["resource"], taken["holder"], taken["took_over_from"]) == (f"rds:{SOURCE}", record["execution_arn"], None)

    # And the journal holds one record from start to end, the lock released
    assert record["execution_arn"].startswith(ROLLBACK_PREFIX)
    assert record["outcome"] == "SUCCEEDED"
    assert (record["error"], record["cause"]) == (None, None)
    assert record["requested_by"] == "on-call: ana"
    assert record["input"] == execution_input
    assert record["result"] == result.output
    assert record["finished_at"] >= record["started_at"]
    assert record["lock_release"] == f"released the lock on {SOURCE}"
    assert record["left_behind"].startswith(f"deleted {target}")
    assert f"every API host points at {result.output['original_endpoint']} again" in record["left_behind"]
    assert locks(result) == []

    # And people are told
    (notification,) = rollback_notifications(result)
    assert notification["subject"] == "[irisx-restore] rollback SUCCEEDED"
    assert f"Left behind: {record['left_behind']}" in notification["message"]
    assert f"#/v2/executions/details/{record['execution_arn']}" in notification["message"]


@pytest.mark.parametrize("which", ["source", "unmanaged"])
def test_a_refused_rollback_is_journaled_as_failed_notifies_and_holds_no_lock(rehearsal, which):
    import boto3

    world = rehearsal(calls_rows=300, restore_minutes=3)
    name = SOURCE
    if which == "unmanaged":
        name = "irisx-reporting-replica"
        boto3.client("rds").create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="postgres",
            MasterUserPassword="not-used-by-the-rehearsal",
        )
    before = instance_ids(world.describe_world())
    hosts_before = hosts_of(world.describe_world())

    result = world.run("rollback", {"restored_instance": name, "requested_by": "on-call: ben"})

    # The refusal keeps its own error, after the journal's end record
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert "nothing was touched" in result.cause.lower()
    assert result.states() == [*JOURNAL_START, "ExplainRollbackFailure", "RecordFailure", "RollbackFailed"]
    # Nothing touched
    assert instance_ids(result.world) == before
    assert world.app_hosts.commands_run == []
    assert hosts_of(result.world) == hosts_before
    # Journaled as failed, with the error and cause the execution ended in
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "InvalidInput", result.cause)
    assert record["requested_by"] == "on-call: ben"
    assert record["lock_release"] == "no lock was taken"
    assert locks(result) == []
    (notification,) = rollback_notifications(result)
    assert notification["subject"] == "[irisx-restore] rollback FAILED: InvalidInput"
    assert "Cause:" in notification["message"] and "Left behind:" in notification["message"]


ROLLBACK_FAILURES = [
    # The delete comes last, after every host is healthy on the original: its failure is reported as such.
    (dict(inject=["DeleteRestoredInstance=UnsafeOperation"]), "RollbackFailed", "CopyNotDeleted", False),
    # A host whose app never starts: a person finishes by hand, and production's lock is kept meanwhile.
    (dict(broken_hosts=("irisx-api-2",)), "RollbackFailed", "ExplainRollbackFailure", True),
    # Its explanation failing too: the Pass state that stands in cannot tell where the hosts are (shared with a
    # failed delete, where they are fine), so it keeps nothing; the cause says to check every host.
    (
        dict(inject=["ExplainRollbackFailure=Lambda.ServiceException"], broken_hosts=("irisx-api-2",)),
        "RollbackFailed",
        "RollbackExplanationUnavailable",
        False,
    ),
]


@pytest.mark.parametrize(
    ("options", "error", "explained_by", "kept"), ROLLBACK_FAILURES, ids=["delete-refused", "host-broken", "explain-failed"]
)
def test_a_failed_rollback_keeps_its_error_is_journaled_sees_to_the_lock_and_notifies(rehearsal, options, error, explained_by, kept):
    world = rehearsal(calls_rows=300, restore_minutes=3, **options)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    result = world.run("rollback", {"restored_instance": target})

    assert (result.status, result.error) == ("FAILED", error)
    assert result.states()[:4] == [*JOURNAL_START, "TakeLock"]
    assert result.states()[-3:] == [explained_by, "RecordFailure", "RollbackFailed"]
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", error, result.cause)
    if kept:
        (lock,) = locks(result)
        assert lock["needs_recovery"].startswith("the rollback failed with the app not confirmed running on one database")
        assert record["lock_release"].startswith(f"KEPT the lock on {SOURCE}, marked as needing recovery")
    else:
        assert record["lock_release"] == f"released the lock on {SOURCE}"
        assert locks(result) == []
    (notification,) = rollback_notifications(result)
    assert notification["subject"] == f"[irisx-restore] rollback FAILED: {error}"
    assert ("restorectl unlock" in notification["message"]) == kept


def test_a_failing_journal_never_hides_the_rollbacks_own_error(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, broken_hosts=("irisx-api-2",), inject=["RecordFailure=JournalUnavailable"])
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]
    broken = world.app_hosts.hosts[1].instance_id

    result = world.run("rollback", {"restored_instance": target})

    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert broken in result.cause and "pm2 restart irisx-api failed" in result.cause
    assert result.states()[-2:] == ["RecordFailure", "RollbackFailed"]


def test_a_rollback_that_cannot_record_its_start_touches_nothing(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordStart=JournalUnavailable"])
    result = world.run("rollback", {"restored_instance": "irisx-anything"})

    assert (result.status, result.error) == ("FAILED", "JournalUnavailable")
    assert "CheckRollbackInput" not in result.states() and "TakeLock" not in result.states()
    assert world.app_hosts.commands_run == []
    assert locks(result) == []


def test_a_rollback_while_a_restore_of_the_same_source_runs_fails_at_once_touching_nothing(rehearsal):
    # Given a restored copy to roll back, and a second restore of the same source that holds the lock
    # (held at its first poll of RDS)
    world = rehearsal(calls_rows=300, restore_minutes=3)
    copy = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-to-roll-back"}).output["target_instance"]
    reached, release = threading.Event(), threading.Event()
    answer = world.bridge.answer

    def held_answer(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == "DescribeRestore" and not release.is_set():
            reached.set()
            release.wait(timeout=60)
        return answer(function_name, body, headers)

    world.bridge.answer = held_answer  # type: ignore[method-assign]
    running = world.start("restore", {"mode": "snapshot", "target_instance": "irisx-running", "requested_by": "ana"})
    assert reached.wait(timeout=60), "the running restore never reached its poll"
    hosts_before = hosts_of(world.describe_world())

    # When the rollback workflow runs on the first copy meanwhile
    result = world.run("rollback", {"restored_instance": copy, "requested_by": "ben"})

    # Then it fails at once with OperationInProgress, naming the restore that holds the lock
    assert (result.status, result.error) == ("FAILED", "OperationInProgress")
    assert running.rsplit(":", 1)[-1] in result.cause and "requested by ana" in result.cause and SOURCE in result.cause
    assert result.states() == [*JOURNAL_START, "TakeLock", "ExplainLockRefusal", "RecordFailure", "RollbackFailed"]
    # And touches nothing: no host changed, no instance deleted, the restore's lock left as it is
    assert world.app_hosts.commands_run == []
    assert hosts_of(result.world) == hosts_before
    assert copy in instance_ids(result.world)
    (lock,) = locks(result)
    assert lock["holder"] == running
    # And the refusal is journaled and notified
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "OperationInProgress", result.cause)
    assert record["lock_release"] == "no lock was taken"
    (notification,) = rollback_notifications(result)
    assert notification["subject"] == "[irisx-restore] rollback FAILED: OperationInProgress"

    # And the restore proceeds to success and releases its lock, after which the rollback may run
    release.set()
    done = world.follow("restore", running)
    assert done.status == "SUCCEEDED", done.cause
    assert locks(done) == []
    again = world.run("rollback", {"restored_instance": copy, "requested_by": "ben"})
    assert again.status == "SUCCEEDED", again.cause
    assert copy not in instance_ids(again.world)
    assert locks(again) == []
