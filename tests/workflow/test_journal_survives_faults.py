"""The lock and the journal hold up when their own steps fail: who holds the lock decides, not who answered."""

from __future__ import annotations

import pytest

from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_journal_workflow import executions, locks

pytestmark = pytest.mark.workflow


def test_a_lock_taken_whose_answer_was_lost_is_released_at_the_end(rehearsal):
    # Given a TakeLock that writes the lock, then loses its answer (the Task fails after acting)
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["TakeLock=RuntimeError:1@after"])

    result = world.run("restore", {"mode": "snapshot", "requested_by": "on-call: ana"})

    # Then the execution fails with that error, nothing was created, and the lock it holds is released
    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    assert "StartRestore" not in result.states()
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []
    (record,) = executions(result, "restore")
    assert record["outcome"] == "FAILED"
    assert record["lock_release"] == f"released the lock on {SOURCE} (taken, though the lock step's answer was lost)"

    # And the next restore of the same source is not refused
    again = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-after-lost-lock"})
    assert again.status == "SUCCEEDED", again.cause


def test_a_success_whose_end_record_cannot_be_written_still_releases_its_lock_and_notifies(rehearsal):
    # Given a restore that succeeds, and an end-record step that keeps failing (and, to see what the
    # workflow alone does, no status-change event: test_journal_reconciled.py follows the record from there)
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["RecordSuccess=RuntimeError"], deliver_status_changes=False)

    result = world.run("restore", {"mode": "snapshot", "requested_by": "on-call: ana"})

    # Then the execution still succeeds, through the step that releases and notifies without the record
    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[-3:] == ["RecordSuccess", "ReleaseWithoutRecord", "SucceededWithoutJournal"]
    assert result.output["journal_failure"]["Error"] == "RuntimeError"
    assert result.output["journal_release"]["lock"] == f"released the lock on {SOURCE}"
    # And the lock is free, the success notified with the journal's failure in it
    assert locks(result) == []
    (notification,) = [n for n in result.world["notifications"] if "restore SUCCEEDED" in n["subject"]]
    assert "end record could NOT be written (RuntimeError)" in notification["message"]
    # And the record still reads RUNNING: it says only what the journal knows
    (record,) = executions(result, "restore")
    assert record["outcome"] == "RUNNING"
