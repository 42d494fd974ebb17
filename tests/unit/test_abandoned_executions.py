"""Executions that timed out or were aborted: journaled, unlocked and notified from the EventBridge event."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from restore_runbook.common import clock
from restore_runbook.common.errors import InvalidInput
from restore_runbook.contract import STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS
from restore_runbook.journal import abandoned, notice, records
from restore_runbook.journal import lock as journal_lock
from restore_runbook.journal.table import JournalSettings
from restorectl.emulated_journal import EmulatedJournal
from tests.unit.publish_faults import publish_fails, throttled

pytestmark = pytest.mark.unit

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:irisx-restore-restore"
ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:irisx-restore-restore:run-1"
OTHER = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:irisx-restore-restore:run-2"
START = "2025-11-02T12:00:00.123Z"
START_MS = 1762084800123  # the same moment, as EventBridge gives it


REAL_LAST_STATE = abandoned.last_state


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SOURCE_INSTANCE": "irisx-prod-rds-postgres",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        emulated = EmulatedJournal(REGION, ACCOUNT).install()
        # Step Functions is not asked in these tests: the last state is "unknown" unless a test says otherwise
        monkeypatch.setattr(abandoned, "last_state", lambda arn: "WaitForRestore")
        yield emulated, JournalSettings.from_env()


def event(status: str, execution_arn: str = ARN, **detail: Any) -> dict[str, Any]:
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": MACHINE,
            "status": status,
            "startDate": START_MS,
            "input": json.dumps({"mode": "snapshot", "requested_by": "ana"}),
            **detail,
        },
    }


@pytest.mark.parametrize(("status", "error"), [("TIMED_OUT", "States.Timeout"), ("ABORTED", "ExecutionAborted")])
def test_a_timed_out_or_aborted_execution_gets_its_end_record_releases_its_lock_and_notifies(world, status, error):
    emulated, settings = world
    # Given an execution that recorded its start and took the lock on the source, then never finished
    records.record_start(
        workflow="restore", execution_arn=ARN, started_at=START, execution_input={"requested_by": "ana"}, settings=settings
    )
    journal_lock.take_lock(
        workflow="restore", execution_arn=ARN, resource="rds:irisx-prod-rds-postgres", requested_by="ana", settings=settings
    )

    # When EventBridge reports it ended TIMED_OUT or ABORTED
    result = abandoned.record_abandoned(event(status), settings, "irisx-restore-")

    # Then its own record (not a second one) says so, with what may be left behind
    (record,) = emulated.executions()
    assert (record["outcome"], record["error"], record["execution_arn"]) == (status, error, ARN)
    assert record["requested_by"] == "ana"
    assert "it stopped in state WaitForRestore" in record["left_behind"]
    assert f"irisx-restore:execution={ARN}" in record["left_behind"] and "check the execution" in record["left_behind"]
    # And the lock it held is released
    assert record["lock_release"] == "released the lock on irisx-prod-rds-postgres"
    assert emulated.locks() == []
    assert result["locks"] == ["rds:irisx-prod-rds-postgres"] and result["had_start_record"] is True
    # And people are told
    (notification,) = emulated.notifications()
    assert notification["subject"] == f"[irisx-restore] restore {status}: {error}"
    assert "Left behind: it stopped in state WaitForRestore" in notification["message"]


def test_two_deliveries_handled_at_the_same_moment_journal_and_announce_the_end_once(world, monkeypatch):
    emulated, settings = world
    # Given an aborted execution that holds the lock on the source, its record still RUNNING
    records.record_start(
        workflow="restore", execution_arn=ARN, started_at=START, execution_input={"requested_by": "ana"}, settings=settings
    )
    journal_lock.take_lock(
        workflow="restore", execution_arn=ARN, resource="rds:irisx-prod-rds-postgres", requested_by="ana", settings=settings
    )
    # And a second delivery of its ABORTED event that is handled whole while the first one, having
    # read the record as RUNNING, looks up the last state
    second: list[dict[str, Any]] = []

    def last_state_while_the_other_delivery_runs(arn: str) -> str:
        if not second:
            second.append({})
            second[0] = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
        return "WaitForRestore"

    monkeypatch.setattr(abandoned, "last_state", last_state_while_the_other_delivery_runs)

    first = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    # Then the delivery that wrote first journaled and announced the end, and the other one did neither
    assert second[0]["recorded"] is True and second[0]["notified"]
    assert first["recorded"] is False and first["notified"] is False
    assert first["why"] == "the record already reads ABORTED: another writer closed it at the same moment"
    (record,) = emulated.executions()
    assert (record["outcome"], record["error"]) == ("ABORTED", "ExecutionAborted")
    assert record["lock_release"] == "released the lock on irisx-prod-rds-postgres"
    assert emulated.locks() == []
    assert len(emulated.notifications()) == 1


def test_a_lock_held_by_another_execution_is_left_alone(world):
    emulated, settings = world
    journal_lock.take_lock(
        workflow="restore", execution_arn=OTHER, resource="rds:irisx-prod-rds-postgres", requested_by="ben", settings=settings
    )

    result = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    assert result["locks"] == [] and result["had_start_record"] is False
    (lock,) = emulated.locks()
    assert lock["holder"] == OTHER
    # the execution never wrote its start record: the end record is written anyway, keyed by its start time
    (record,) = emulated.executions()
    assert (record["outcome"], record["execution_start_time"], record["lock_release"]) == ("ABORTED", START, "no lock was taken")


def test_a_lock_on_a_source_given_in_the_input_is_released_too(world):
    emulated, settings = world
    journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource="rds:irisx-staging", requested_by="ana", settings=settings)

    abandoned.record_abandoned(event("TIMED_OUT", input=json.dumps({"source_instance": "irisx-staging"})), settings, "irisx-restore-")

    assert emulated.locks() == []


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", None])
def test_other_statuses_are_refused(world, status):
    _, settings = world
    with pytest.raises(InvalidInput):
        abandoned.record_abandoned(event(status), settings, "irisx-restore-")


def test_the_workflow_is_the_state_machine_name_without_the_stack_prefix():
    assert abandoned.workflow_of(MACHINE, "irisx-restore-") == "restore"
    assert abandoned.workflow_of(MACHINE.replace("-restore-restore", "-restore-in-place-restore"), "irisx-restore-") == "in-place-restore"


def test_a_snapshot_takes_no_lock_so_an_abandoned_one_releases_none(world):
    emulated, settings = world
    journal_lock.take_lock(
        workflow="restore", execution_arn=OTHER, resource="rds:irisx-prod-rds-postgres", requested_by="ben", settings=settings
    )
    snapshot_machine = MACHINE.replace("-restore-restore", "-restore-snapshot")

    result = abandoned.record_abandoned(event("ABORTED", stateMachineArn=snapshot_machine), settings, "irisx-restore-")

    assert result["workflow"] == "snapshot" and result["locks"] == []
    (lock,) = emulated.locks()
    assert lock["holder"] == OTHER


def test_locks_are_per_resource_and_name_the_holder(world):
    from restore_runbook.common.errors import OperationInProgress

    emulated, settings = world
    # Given a restore holding the lock on production (its holder still RUNNING)
    journal_lock.take_lock(
        workflow="restore", execution_arn=OTHER, resource="rds:irisx-prod-rds-postgres", requested_by="ben", settings=settings
    )
    # Then another resource can still be locked
    taken = journal_lock.take_lock(
        workflow="restore", execution_arn=ARN, resource="rds:irisx-staging", requested_by="ana", settings=settings
    )
    assert (taken["resource"], taken["took_over_from"]) == ("rds:irisx-staging", None)
    # And the same resource cannot, and the refusal names the holder and the instance
    import unittest.mock

    with unittest.mock.patch.object(journal_lock, "_holder_is_running", return_value=True), pytest.raises(OperationInProgress) as refused:
        journal_lock.take_lock(
            workflow="rollback", execution_arn=ARN, resource="rds:irisx-prod-rds-postgres", requested_by="ana", settings=settings
        )
    assert "run-2" in str(refused.value) and "requested by ben" in str(refused.value)
    assert "already working on irisx-prod-rds-postgres" in str(refused.value)
    assert sorted((lock["pk"], lock["resource"]) for lock in emulated.locks()) == [
        ("LOCK#rds:irisx-prod-rds-postgres", "rds:irisx-prod-rds-postgres"),
        ("LOCK#rds:irisx-staging", "rds:irisx-staging"),
    ]


IN_PLACE_MACHINE = MACHINE.replace("-restore-restore", "-restore-in-place-restore")
IN_PLACE_ARN = ARN.replace(":irisx-restore-restore:", ":irisx-restore-in-place-restore:")
PRODUCTION_LOCK = "rds:irisx-prod-rds-postgres"


def test_an_in_place_restore_stopped_mid_swap_keeps_its_lock_for_recovery_and_says_the_app_may_be_stopped(world, monkeypatch):
    from restore_runbook.common.errors import OperationInProgress

    emulated, settings = world
    # Given an in-place restore that holds the production lock and was aborted while renaming the copy
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    monkeypatch.setattr(abandoned, "last_state", lambda arn: "CheckCopyRename")
    stopped = event("ABORTED", execution_arn=IN_PLACE_ARN, stateMachineArn=IN_PLACE_MACHINE, input=json.dumps({"confirm": "x"}))

    result = abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    # Then the record says what a person must check: the app stopped, both instances' names
    (record,) = emulated.executions()
    assert record["outcome"] == "ABORTED"
    assert "it stopped in state CheckCopyRename" in record["left_behind"]
    assert "the app may still be STOPPED on every API host" in record["left_behind"]
    assert "<name>-replaced-<time>" in record["left_behind"] and f"irisx-restore:execution={IN_PLACE_ARN}" in record["left_behind"]
    # And the lock is kept, marked, and the record says so
    assert result["locks"] == [PRODUCTION_LOCK]
    assert record["lock_release"].startswith("KEPT the lock on irisx-prod-rds-postgres, marked as needing recovery")
    (lock,) = emulated.locks()
    assert lock["holder"] == IN_PLACE_ARN and "STOPPED" in lock["needs_recovery"]

    # And a later workflow on production is refused though the holder has ended, saying how to release it
    with pytest.raises(OperationInProgress) as refused:
        journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource=PRODUCTION_LOCK, requested_by="ben", settings=settings)
    assert "left it needing recovery" in str(refused.value)
    assert f"restorectl unlock {PRODUCTION_LOCK}" in str(refused.value)

    # And once a person has released it, the next one proceeds
    released = journal_lock.unlock(resource=PRODUCTION_LOCK, settings=settings)
    assert released["released"] is True and "STOPPED" in released["needed_recovery"]
    taken = journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource=PRODUCTION_LOCK, requested_by="ben", settings=settings)
    assert taken["holder"] == ARN


def test_an_in_place_restore_stopped_before_the_app_was_touched_releases_its_lock(world, monkeypatch):
    emulated, settings = world
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    monkeypatch.setattr(abandoned, "last_state", lambda arn: "WaitForRestore")
    stopped = event("TIMED_OUT", execution_arn=IN_PLACE_ARN, stateMachineArn=IN_PLACE_MACHINE, input=json.dumps({"confirm": "x"}))

    abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    (record,) = emulated.executions()
    assert record["lock_release"] == "released the lock on irisx-prod-rds-postgres"
    assert "production was not renamed and the app was not stopped" in record["left_behind"]
    assert emulated.locks() == []


def history_read_by(monkeypatch: pytest.MonkeyPatch, get_execution_history: Any) -> None:
    """The real last_state, reading GetExecutionHistory from `get_execution_history`; every other client as it is."""
    monkeypatch.setattr(abandoned, "last_state", REAL_LAST_STATE)
    real_client = abandoned.aws.client
    sfn = type("Sfn", (), {"get_execution_history": staticmethod(get_execution_history)})
    monkeypatch.setattr(abandoned.aws, "client", lambda name: sfn if name == "stepfunctions" else real_client(name))


def test_an_in_place_restore_stopped_where_its_history_cannot_be_read_keeps_its_lock_as_if_mid_swap(world, monkeypatch):
    emulated, settings = world
    # Given an in-place restore that holds the production lock, aborted, and a history that cannot be read
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )

    def history_refused(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetExecutionHistory")

    history_read_by(monkeypatch, history_refused)
    stopped = event("ABORTED", execution_arn=IN_PLACE_ARN, stateMachineArn=IN_PLACE_MACHINE, input=json.dumps({"confirm": "x"}))

    result = abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    # Then, not knowing whether it stopped mid-swap, it keeps the lock for recovery, and says why
    assert result["last_state"] is None and result["locks"] == [PRODUCTION_LOCK]
    (lock,) = emulated.locks()
    assert lock["holder"] == IN_PLACE_ARN
    assert lock["needs_recovery"].startswith("its last state is unknown, without its own cleanup or journal step: it may have stopped")
    (record,) = emulated.executions()
    assert record["lock_release"].startswith("KEPT the lock on irisx-prod-rds-postgres, marked as needing recovery")
    assert "if it stopped during the swap: the app may still be STOPPED on every API host" in record["left_behind"]


@pytest.mark.parametrize("recovery", ["renaming back failed and production's name is not back on the original", None])
def test_a_stop_while_the_failure_end_step_runs_keeps_the_lock_its_failure_asked_to_keep(world, monkeypatch, recovery):
    emulated, settings = world
    # Given an in-place restore holding production's lock, stopped while its failure end step ran, before that
    # step could mark the lock: the step's input says whether the failure left production half-changed
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    outcome = {"error": "RollbackFailed", "cause": "c", **({"recovery": recovery} if recovery else {})}
    entered = {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "RecordFailure", "input": json.dumps({"outcome": outcome})}}

    def history(**kwargs: Any) -> Any:
        return {"events": [entered]}

    history_read_by(monkeypatch, history)
    stopped = event("ABORTED", execution_arn=IN_PLACE_ARN, stateMachineArn=IN_PLACE_MACHINE, input=json.dumps({"confirm": "x"}))

    result = abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    # Then a failure that asked for it keeps the lock on its own words; any other releases it
    assert result["last_state"] == "RecordFailure"
    (record,) = emulated.executions()
    if recovery:
        (lock,) = emulated.locks()
        assert lock["needs_recovery"].startswith(f"it stopped in state RecordFailure, without its own cleanup or journal step: {recovery}")
        assert record["lock_release"].startswith("KEPT the lock on irisx-prod-rds-postgres, marked as needing recovery")
    else:
        assert emulated.locks() == [] and record["lock_release"] == "released the lock on irisx-prod-rds-postgres"


def test_a_drill_stopped_where_its_history_cannot_be_read_releases_its_lock_it_changes_nothing_of_production(world, monkeypatch):
    emulated, settings = world
    monkeypatch.setattr(abandoned, "last_state", lambda arn: None)
    machine = MACHINE.replace("-restore-restore", "-restore-drill")
    arn = ARN.replace(":irisx-restore-restore:", ":irisx-restore-drill:")
    lock = "drill:irisx-prod-rds-postgres"
    journal_lock.take_lock(workflow="drill", execution_arn=arn, resource=lock, requested_by="scheduler", settings=settings)

    abandoned.record_abandoned(event("TIMED_OUT", execution_arn=arn, stateMachineArn=machine), settings, "irisx-restore-")

    (record,) = emulated.executions()
    assert record["left_behind"].startswith("its last state is unknown, without its own cleanup or journal step: its temporary copy")
    assert record["lock_release"] == "released the lock on drill:irisx-prod-rds-postgres"
    assert emulated.locks() == []


def test_a_delivery_that_saw_where_it_stopped_replaces_the_guess_of_one_that_could_not(world, monkeypatch):
    emulated, settings = world
    # Given an in-place restore's lock kept on a guess by a delivery that could not read the history
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    guess = abandoned.left_behind("in-place-restore", IN_PLACE_ARN, None)
    assert abandoned.keep_locks_if_mid_change("in-place-restore", IN_PLACE_ARN, None, [PRODUCTION_LOCK], guess, settings)
    assert emulated.locks()[0]["needs_recovery"].startswith("its last state is unknown")
    # And the usual words for what it may have left follow the mid-change ones
    assert "otherwise: a final snapshot and a copy restored alongside" in guess

    # When a delivery that read where it stopped keeps it
    seen = abandoned.left_behind("in-place-restore", IN_PLACE_ARN, "CheckCopyRename")
    abandoned.keep_locks_if_mid_change("in-place-restore", IN_PLACE_ARN, "CheckCopyRename", [PRODUCTION_LOCK], seen, settings)

    # Then the lock says where it stopped; a later guess changes nothing
    assert emulated.locks()[0]["needs_recovery"].startswith("it stopped in state CheckCopyRename")
    abandoned.keep_locks_if_mid_change("in-place-restore", IN_PLACE_ARN, None, [PRODUCTION_LOCK], guess, settings)
    assert emulated.locks()[0]["needs_recovery"].startswith("it stopped in state CheckCopyRename")


def test_a_lock_taken_over_by_another_execution_is_not_marked_for_recovery_in_the_ended_ones_name(world):
    emulated, settings = world
    journal_lock.take_lock(workflow="restore", execution_arn=OTHER, resource=PRODUCTION_LOCK, requested_by="ben", settings=settings)

    why = "it stopped mid-swap"
    words = journal_lock.keep_for_recovery(execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, why=why, settings=settings)

    assert words == "lock on irisx-prod-rds-postgres not held by this execution; left as it is"
    (lock,) = emulated.locks()
    assert lock["holder"] == OTHER and "needs_recovery" not in lock


def test_a_lock_is_not_released_by_hand_while_its_holder_runs(world):
    from unittest import mock

    from restore_runbook.common.errors import OperationInProgress

    emulated, settings = world
    journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings)

    with mock.patch.object(journal_lock, "_holder_is_running", return_value=True), pytest.raises(OperationInProgress, match="still runs"):
        journal_lock.unlock(resource=PRODUCTION_LOCK, settings=settings)
    assert [lock["holder"] for lock in emulated.locks()] == [ARN]
    assert journal_lock.unlock(resource="rds:irisx-nothing", settings=settings)["released"] is False


@pytest.mark.parametrize("workflow", ["restore", "rollback", "in-place-restore"])
def test_every_mid_change_state_is_a_state_of_its_workflow(workflow):
    from restore_runbook.journal.workflows import traits_of
    from restorectl.harness import asl_path

    states = set(json.loads(asl_path(workflow).read_text())["States"])
    traits = traits_of(workflow)
    (mid_change,) = traits.mid_change
    assert mid_change.states <= states, sorted(mid_change.states - states)
    # A state is either half-way through the change or past it, never both
    assert traits.changed_by <= states and not traits.changed_by & mid_change.states
    assert bool(traits.changed_by) == bool(traits.left_behind_once_changed)


def test_a_second_delivery_that_could_not_read_where_it_stopped_never_releases_a_lock_kept_for_recovery(world, monkeypatch):
    emulated, settings = world
    # Given an in-place restore aborted mid-swap that holds the production lock
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    stopped = event("ABORTED", execution_arn=IN_PLACE_ARN, stateMachineArn=IN_PLACE_MACHINE, input=json.dumps({"confirm": "x"}))
    # And two deliveries of its event: the first cannot read the history (last state unknown), and the
    # second, which can, is handled whole after the first has found the locks
    reads: list[str] = []
    monkeypatch.setattr(abandoned, "last_state", lambda arn: None if not reads.append(arn) and len(reads) == 1 else "CheckCopyRename")
    real_locks_of = abandoned.locks_of
    second: list[dict[str, Any]] = []

    def locks_of_then_the_other_delivery(*args: Any) -> list[str]:
        found = real_locks_of(*args)
        if not second:
            second.append({})
            second[0] = abandoned.record_abandoned(stopped, settings, "irisx-restore-")
        return found

    monkeypatch.setattr(abandoned, "locks_of", locks_of_then_the_other_delivery)

    first = abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    # Then the lock the second delivery kept for recovery is still there, marked with the second one's words
    # (it saw where it stopped), and the first one, not knowing where it stopped, kept it too
    (lock,) = emulated.locks()
    assert lock["holder"] == IN_PLACE_ARN and lock["needs_recovery"].startswith("it stopped in state CheckCopyRename")
    assert first["lock"].startswith("KEPT the lock on irisx-prod-rds-postgres")
    # And the record and the one notification are the second delivery's, which saw where it stopped
    assert first["recorded"] is False and second[0]["recorded"] is True
    (record,) = emulated.executions()
    assert record["lock_release"].startswith("KEPT the lock on irisx-prod-rds-postgres, marked as needing recovery")
    assert len(emulated.notifications()) == 1


def test_a_lock_marked_for_recovery_between_the_release_read_and_its_delete_is_said_to_be_kept(world, monkeypatch):
    emulated, settings = world
    journal_lock.take_lock(
        workflow="in-place-restore", execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, requested_by="ana", settings=settings
    )
    real_registry_release = journal_lock.prefix_registry.release

    # Another delivery of this execution's end marks the lock just after this release has read it.
    def release_then_the_other_writer_keeps_it(*args: Any) -> bool:
        journal_lock.keep_for_recovery(execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, why="it stopped mid-swap", settings=settings)
        return real_registry_release(*args)

    monkeypatch.setattr(journal_lock.prefix_registry, "release", release_then_the_other_writer_keeps_it)

    words = journal_lock.release_lock(execution_arn=IN_PLACE_ARN, resource=PRODUCTION_LOCK, settings=settings)

    assert words.startswith("KEPT the lock on irisx-prod-rds-postgres: it is marked as needing recovery")
    (lock,) = emulated.locks()
    assert lock["holder"] == IN_PLACE_ARN and lock["needs_recovery"] == "it stopped mid-swap"


# ---- the end notice: the record is closed before the publish, so a retry sends one that was lost


class FunctionKilled(BaseException):
    """The runtime ending the invocation (its timeout): nothing after it runs, not even an except clause."""


def aborted_holding_the_source_lock(settings: JournalSettings) -> None:
    records.record_start(
        workflow="restore", execution_arn=ARN, started_at=START, execution_input={"requested_by": "ana"}, settings=settings
    )
    journal_lock.take_lock(
        workflow="restore", execution_arn=ARN, resource="rds:irisx-prod-rds-postgres", requested_by="ana", settings=settings
    )


def test_an_end_notice_whose_publish_fails_after_the_record_is_closed_is_sent_by_the_retried_invocation_once(world, monkeypatch):
    emulated, settings = world
    aborted_holding_the_source_lock(settings)
    real_notify = notice.notify
    calls: list[str] = []

    def throttled_once(**message: Any) -> bool:
        calls.append(message["outcome"])
        if len(calls) == 1:
            raise throttled("Publish")
        return real_notify(**message)

    monkeypatch.setattr(notice, "notify", throttled_once)

    # When the first invocation's publish is throttled after it closed the record
    with pytest.raises(ClientError, match="Throttling"):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    # Then the end is journaled and the lock released, nobody is told yet, and the record says the notice failed and why
    (record,) = emulated.executions()
    assert (record["outcome"], record["notice"]) == ("ABORTED", "failed")
    assert record["notice_failure"] == "Throttling: An error occurred (Throttling) when calling the Publish operation: Rate exceeded"
    assert emulated.locks() == [] and emulated.notifications() == []

    # When Lambda retries the invocation
    retried = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    # Then it journals nothing twice and sends the notice that was lost
    assert retried["recorded"] is False and retried["notice"] == "its notice read failed; sent now"
    (notification,) = emulated.notifications()
    assert notification["subject"] == "[irisx-restore] restore ABORTED: ExecutionAborted"
    assert "Left behind: it stopped in state WaitForRestore" in notification["message"]
    (record,) = emulated.executions()
    assert record["notice"] == "sent" and record["lock_release"] == "released the lock on irisx-prod-rds-postgres"

    # And a later delivery of the same event sends nothing more
    again = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
    assert again["notice"] == "its notice reads sent" and len(emulated.notifications()) == 1


def test_a_notice_left_pending_by_an_invocation_that_may_still_run_is_waited_for_then_sent_once_it_cannot(world, monkeypatch):
    emulated, settings = world
    aborted_holding_the_source_lock(settings)
    now = [datetime(2025, 11, 2, 12, 30, tzinfo=timezone.utc)]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    real_send = notice.send

    def killed_before_publishing(*args: Any, **kwargs: Any) -> bool:
        raise FunctionKilled

    # Given an invocation ended by its timeout between closing the record and publishing
    monkeypatch.setattr(notice, "send", killed_before_publishing)
    with pytest.raises(FunctionKilled):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
    monkeypatch.setattr(notice, "send", real_send)
    (record,) = emulated.executions()
    assert (record["outcome"], record["notice"], record["notice_at"]) == ("ABORTED", "pending", "2025-11-02T12:30:00Z")

    # When another invocation finds the record closed while that one could still be publishing
    now[0] += timedelta(seconds=STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS - 1)
    with pytest.raises(notice.NoticeInDoubt, match="pending for 59s"):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
    # Then it sends nothing, so the notice is not sent twice
    assert emulated.notifications() == []

    # When it is retried once the first one can no longer be running
    now[0] += timedelta(seconds=1)
    retried = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    # Then the notice is sent, once
    assert retried["notice"] == "its notice left pending 60s; sent now"
    assert len(emulated.notifications()) == 1
    assert emulated.executions()[0]["notice"] == "sent"


def test_of_two_retries_that_find_a_lost_notice_at_once_one_sends_it_and_the_other_waits(world, monkeypatch):
    emulated, settings = world
    aborted_holding_the_source_lock(settings)
    with publish_fails(monkeypatch):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
    real_read = notice._read
    other: list[str] = []

    # The other retry runs whole between this one's read of the failed notice and its claim
    def read_then_the_other_retry_sends_it(*args: Any) -> dict[str, Any]:
        seen = real_read(*args)
        if not other:
            monkeypatch.setattr(notice, "_read", real_read)
            other.append(abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")["notice"])
        return seen

    monkeypatch.setattr(notice, "_read", read_then_the_other_retry_sends_it)

    with pytest.raises(notice.NoticeInDoubt, match="another writer took the end notice since it was read"):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    assert other == ["its notice read failed; sent now"]
    assert len(emulated.notifications()) == 1 and emulated.executions()[0]["notice"] == "sent"


def test_a_notice_the_table_would_not_mark_failed_stays_pending_and_is_sent_once_its_writer_cannot_run(world, monkeypatch):
    emulated, settings = world
    aborted_holding_the_source_lock(settings)
    now = [datetime(2025, 11, 2, 12, 30, tzinfo=timezone.utc)]
    monkeypatch.setattr(clock, "now", lambda: now[0])

    def table_throttled(*args: Any, **kwargs: Any) -> None:
        raise throttled("UpdateItem")

    real_mark = notice._mark
    # Given a publish that fails, and a table that will not take the mark that says so
    monkeypatch.setattr(notice, "_mark", table_throttled)
    with publish_fails(monkeypatch):
        abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")
    assert emulated.executions()[0]["notice"] == "pending"
    monkeypatch.setattr(notice, "_mark", real_mark)
    # When it is retried once its writer can no longer be running
    now[0] += timedelta(seconds=STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS)

    retried = abandoned.record_abandoned(event("ABORTED"), settings, "irisx-restore-")

    assert retried["notice"] == "its notice left pending 60s; sent now" and len(emulated.notifications()) == 1


def test_every_lock_an_abandoned_execution_holds_is_released_even_when_its_notice_fails_to_publish(world, monkeypatch):
    emulated, settings = world
    # Given an execution holding the lock on the source its input names and on the configured one
    for resource in ("rds:irisx-staging", "rds:irisx-prod-rds-postgres"):
        journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource=resource, requested_by="ana", settings=settings)
    stopped = event("ABORTED", input=json.dumps({"source_instance": "irisx-staging"}))

    # When its end is journaled and the publish fails
    with publish_fails(monkeypatch):
        abandoned.record_abandoned(stopped, settings, "irisx-restore-")

    # Then no lock is left for the retry, which finds the record closed and looks no further, to miss
    assert emulated.locks() == []
    assert emulated.executions()[0]["notice"] == "failed"


def test_an_end_step_still_running_when_its_execution_timed_out_keeps_its_own_notice_mark_and_its_lost_notice_is_sent(world, monkeypatch):
    emulated, settings = world
    aborted_holding_the_source_lock(settings)
    real_notify = notice.notify
    end_step_ran: list[bool] = []

    def end_step_closes_it_meanwhile_and_its_publish_fails(**message: Any) -> bool:
        if message["outcome"] == "TIMED_OUT" and not end_step_ran:
            end_step_ran.append(True)
            # The execution's own end step, still running past the timeout, replaces the record with its success
            with publish_fails(monkeypatch):
                records.finish(
                    workflow="restore",
                    execution_arn=ARN,
                    started_at=START,
                    outcome="SUCCEEDED",
                    error=None,
                    cause=None,
                    left_behind="nothing",
                    lock_resource="rds:irisx-prod-rds-postgres",
                    details={},
                    result={"ok": True},
                    settings=settings,
                )
        return real_notify(**message)

    monkeypatch.setattr(notice, "notify", end_step_closes_it_meanwhile_and_its_publish_fails)

    # When the status-change function closes the timed-out record and, while it publishes, the end step closes it again
    abandoned.record_abandoned(event("TIMED_OUT"), settings, "irisx-restore-")

    # Then the only notice sent is the timeout's, and the record, which reads the success, says its notice failed
    assert [n["subject"] for n in emulated.notifications()] == ["[irisx-restore] restore TIMED_OUT: States.Timeout"]
    (record,) = emulated.executions()
    assert (record["outcome"], record["notice"]) == ("SUCCEEDED", "failed")
    assert record["notice_failure"].startswith("Throttling")

    # When the event is delivered again (the function itself succeeded, so Lambda does not retry it)
    retried = abandoned.record_abandoned(event("TIMED_OUT"), settings, "irisx-restore-")

    # Then the success the record reads is announced, once
    assert retried["recorded"] is False and retried["notice"] == "its notice read failed; sent now"
    assert [n["subject"] for n in emulated.notifications()][1:] == ["[irisx-restore] restore SUCCEEDED"]
    assert emulated.executions()[0]["notice"] == "sent"
