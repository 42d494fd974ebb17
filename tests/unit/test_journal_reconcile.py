"""Records left RUNNING by executions that ended: closed from DescribeExecution, marked reconciled, unlocked."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from restore_runbook.common.errors import InvalidInput
from restore_runbook.journal import abandoned, reconcile, records
from restore_runbook.journal import lock as journal_lock
from restore_runbook.journal.table import JournalSettings
from restorectl.emulated_journal import EmulatedJournal
from tests.unit.publish_faults import publish_fails

pytestmark = pytest.mark.unit

REGION, ACCOUNT = "us-east-1", "123456789012"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:irisx-restore-restore"
ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:irisx-restore-restore:run-1"
OTHER = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:irisx-restore-restore:run-2"
START = "2025-11-02T12:00:00.123Z"
START_MS = 1762084800123
STARTED = datetime(2025, 11, 2, 12, 0, 0, 123000, tzinfo=timezone.utc)
STOPPED = datetime(2025, 11, 2, 12, 25, 0, tzinfo=timezone.utc)
SOURCE_LOCK = "rds:irisx-prod-rds-postgres"


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
        yield emulated, JournalSettings.from_env()


def started(settings: JournalSettings, execution_arn: str = ARN) -> dict[str, Any]:
    records.record_start(
        workflow="restore", execution_arn=execution_arn, started_at=START, execution_input={"requested_by": "ana"}, settings=settings
    )
    record = abandoned.find_record("restore", execution_arn, START, settings)
    assert record is not None
    return record


def described(status: str, **extra: Any) -> Any:
    def describe(arn: str) -> dict[str, Any]:
        return {"executionArn": arn, "status": status, "startDate": STARTED, "stopDate": STOPPED, **extra}

    return describe


def test_a_running_record_of_a_succeeded_execution_is_closed_with_its_output_and_the_lock_released(world):
    emulated, settings = world
    # Given an execution that recorded its start, took the lock, then succeeded without its end record
    record = started(settings)
    journal_lock.take_lock(workflow="restore", execution_arn=ARN, resource=SOURCE_LOCK, requested_by="ana", settings=settings)
    output = {"target_instance": "irisx-copy", "left_behind": "irisx-copy (kept: the restored copy)"}

    # When it is reconciled
    done = reconcile.reconcile(
        record, reconciled_by="restorectl status (ana)", settings=settings, describe=described("SUCCEEDED", output=json.dumps(output))
    )

    # Then its record reads SUCCEEDED, with the output, the duration and who reconciled it when
    assert done is not None and done["outcome"] == "SUCCEEDED"
    (closed,) = emulated.executions()
    assert (closed["outcome"], closed["error"], closed["cause"]) == ("SUCCEEDED", None, None)
    assert closed["result"] == output and closed["left_behind"] == output["left_behind"]
    assert (closed["finished_at"], closed["duration_seconds"]) == ("2025-11-02T12:25:00Z", 1500)
    assert closed["reconciled"]["by"] == "restorectl status (ana)" and closed["reconciled"]["was"] == "RUNNING"
    # And the lock it still held is released; the success (with no earlier notification in its output) is announced
    assert emulated.locks() == [] and closed["lock_release"] == "released the lock on irisx-prod-rds-postgres"
    (notification,) = emulated.notifications()
    assert (
        "restore SUCCEEDED" in notification["subject"] and "reconciled from RUNNING by restorectl status (ana)" in notification["message"]
    )


def test_a_success_that_release_without_record_announced_is_not_announced_twice(world):
    emulated, settings = world
    record = started(settings)
    output = {"journal_release": {"lock": "released the lock on irisx-prod-rds-postgres", "notified": True}}

    done = reconcile.reconcile(record, reconciled_by="x", settings=settings, describe=described("SUCCEEDED", output=json.dumps(output)))

    assert done is not None and done["notified"] is False
    assert emulated.notifications() == []
    (closed,) = emulated.executions()
    assert closed["lock_release"] == "no lock held by this execution any more"


def test_a_failed_execution_is_closed_with_its_error_and_cause_and_a_lock_of_another_is_left_alone(world):
    emulated, settings = world
    record = started(settings)
    journal_lock.take_lock(workflow="restore", execution_arn=OTHER, resource=SOURCE_LOCK, requested_by="ben", settings=settings)

    reconcile.reconcile(
        record, reconciled_by="x", settings=settings, describe=described("FAILED", error="ValidationFailed", cause="recency:calls failed")
    )

    (closed,) = emulated.executions()
    assert (closed["outcome"], closed["error"], closed["cause"], closed["result"]) == (
        "FAILED",
        "ValidationFailed",
        "recency:calls failed",
        None,
    )
    (lock,) = emulated.locks()
    assert lock["holder"] == OTHER


@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED"])
def test_a_closed_record_or_a_running_execution_is_left_as_it_is(world, outcome):
    emulated, settings = world
    record = started(settings)
    # A record whose execution still runs is not touched
    assert reconcile.reconcile(record, reconciled_by="x", settings=settings, describe=described("RUNNING")) is None
    assert emulated.executions()[0]["outcome"] == "RUNNING"
    # One closed already (by its own step, or by another reconciler first) is not asked about again
    closed = {**record, "outcome": outcome}

    def must_not_describe(arn: str) -> Any:
        raise AssertionError("a closed record needs no DescribeExecution")

    assert reconcile.reconcile(closed, reconciled_by="x", settings=settings, describe=must_not_describe) is None


def test_two_reconcilers_meeting_close_the_record_once(world):
    emulated, settings = world
    record = started(settings)
    first = reconcile.reconcile(record, reconciled_by="the event", settings=settings, describe=described("FAILED", error="E", cause="c"))
    # The second still holds the RUNNING copy it read before the first wrote
    second = reconcile.reconcile(record, reconciled_by="a person", settings=settings, describe=described("FAILED", error="E", cause="c"))

    assert first is not None and second is None
    (closed,) = emulated.executions()
    assert closed["reconciled"]["by"] == "the event"
    assert len(emulated.notifications()) == 1


def event(status: str | None, execution_arn: str = ARN) -> dict[str, Any]:
    return {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": execution_arn, "stateMachineArn": MACHINE, "status": status, "startDate": START_MS, "input": "{}"},
    }


def test_the_status_change_function_reconciles_succeeded_and_failed_and_journals_abandoned_ones(world, monkeypatch):
    emulated, settings = world
    started(settings)
    monkeypatch.setattr(reconcile, "describe_execution", described("FAILED", error="RestoreFailed", cause="storage-full"))
    monkeypatch.setattr(abandoned, "last_state", lambda arn: "WaitForRestore")

    # A FAILED event for a record left RUNNING closes it
    result = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    assert result["reconciled"] is True and result["outcome"] == "FAILED"
    # The same event again finds it closed
    again = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    assert again["reconciled"] is False and again["why"] == "the record already reads FAILED"
    # A SUCCEEDED event for an execution that never wrote a start record changes nothing
    unknown = reconcile.record_status_change(event("SUCCEEDED", OTHER), settings, "irisx-restore-", "x")
    assert (unknown["reconciled"], unknown["why"]) == (False, "no start record")
    assert len(emulated.executions()) == 1
    # TIMED_OUT still goes through the abandoned-execution path
    timed_out = reconcile.record_status_change(event("TIMED_OUT", OTHER), settings, "irisx-restore-", "x")
    assert timed_out["last_state"] == "WaitForRestore"
    # Anything else is refused by name
    with pytest.raises(InvalidInput):
        reconcile.record_status_change(event("RUNNING"), settings, "irisx-restore-", "x")


RECORDINGS = ARN.replace("irisx-restore-restore", "irisx-restore-recordings-restore")


def recordings_restore_holding_its_lock(prefix: str, settings: JournalSettings) -> dict[str, Any]:
    """A recordings restore of irisx-recordings/`prefix` that recorded its start and took its lock
    (on `lock_scope`, from its plan); its start record, as the reconciler reads it."""
    records.record_start(
        workflow="recordings-restore",
        execution_arn=RECORDINGS,
        started_at=START,
        execution_input={"bucket": "irisx-recordings", "prefix": prefix},
        settings=settings,
    )
    lock = f"s3:irisx-recordings/{prefix}"
    journal_lock.take_lock(workflow="recordings-restore", execution_arn=RECORDINGS, resource=lock, requested_by="ana", settings=settings)
    record = abandoned.find_record("recordings-restore", RECORDINGS, START, settings)
    assert record is not None
    return record


def test_a_lock_only_the_plan_could_name_is_found_by_its_holder_and_released(world):
    emulated, settings = world
    # Given a recordings restore whose lock scope came from its plan, not from anything in its input
    record = recordings_restore_holding_its_lock("recordings/", settings)
    journal_lock.take_lock(workflow="restore", execution_arn=OTHER, resource=SOURCE_LOCK, requested_by="ben", settings=settings)

    done = reconcile.reconcile(record, reconciled_by="x", settings=settings, describe=described("SUCCEEDED", output="{}"))

    # Then its own lock is released, found by holder; another execution's is left alone
    assert done is not None and done["lock"] == "released the lock on s3://irisx-recordings/recordings/"
    (lock,) = emulated.locks()
    assert lock["holder"] == OTHER


def test_a_recordings_lock_the_locks_index_does_not_list_yet_is_found_in_its_buckets_registry_and_released(world, monkeypatch):
    from restore_runbook.journal import prefix_registry
    from restore_runbook.recordings import locks as recordings_locks

    emulated, settings = world
    # Given a recordings restore that took its lock and then its prefix in the bucket's registry,
    # a moment before it ended: the locks index (eventually consistent) does not list the lock yet
    record = recordings_restore_holding_its_lock("recordings/2025/", settings)
    recordings_locks.refuse_overlapping("s3:irisx-recordings/recordings/2025/", RECORDINGS, settings, requested_by="ana")
    monkeypatch.setattr(abandoned, "locks_of_holder", lambda execution_arn, settings: [])

    # When the reconciler closes its record
    done = reconcile.reconcile(record, reconciled_by="x", settings=settings, describe=described("FAILED", error="X", cause="y"))

    # Then the lock is found through the registry, read consistently, and released with its registry entry
    assert done is not None and done["lock"] == "released the lock on s3://irisx-recordings/recordings/2025/"
    assert emulated.locks() == []
    assert prefix_registry.read("irisx-recordings", settings).holders == {}


def test_a_reconciled_end_whose_notice_failed_to_publish_is_announced_by_the_retried_invocation_once(world, monkeypatch):
    emulated, settings = world
    started(settings)
    monkeypatch.setattr(reconcile, "describe_execution", described("FAILED", error="RestoreFailed", cause="storage-full"))

    # When the status-change function closes the record left RUNNING and its publish is throttled
    with publish_fails(monkeypatch):
        reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    (closed,) = emulated.executions()
    assert (closed["outcome"], closed["notice"]) == ("FAILED", "failed") and emulated.notifications() == []

    # Then Lambda's retry, finding the record closed, sends the notice the first invocation owed, once
    retried = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    assert retried["reconciled"] is False and retried["notice"] == "its notice read failed; sent now"
    again = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    assert again["notice"] == "its notice reads sent"
    (notification,) = emulated.notifications()
    assert notification["subject"] == "[irisx-restore] restore FAILED: RestoreFailed"
    assert "Cause:       storage-full" in notification["message"]
    assert "[journal record reconciled from RUNNING by the status-change function]" in notification["message"]


def test_restorectl_status_lists_an_end_whose_notice_was_not_sent_with_why_until_it_is(world, monkeypatch, capsys):
    import boto3

    from restorectl import journal_view

    emulated, settings = world
    started(settings)
    monkeypatch.setattr(reconcile, "describe_execution", described("FAILED", error="RestoreFailed", cause="storage-full"))

    def publish_refused(**message: Any) -> bool:
        raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not allowed to publish"}}, "Publish")

    # Given a reconciled end whose notice could not be published
    with publish_fails(monkeypatch, publish_refused):
        reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    table = boto3.resource("dynamodb").Table(settings.table_name)

    # Then restorectl status names it, with the publish's error
    journal_view.print_status(journal_view.status(table, ["restore"]))
    out = capsys.readouterr().out
    assert "end notice NOT sent: restore execution run-1 ended FAILED; its notice reads failed since " in out
    assert "AuthorizationError" in out

    # And once a retry has sent it, no longer
    reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")
    assert journal_view.status(table, ["restore"])["notices_not_sent"] == []
    assert len(emulated.notifications()) == 1


def test_an_end_reconciled_by_a_person_without_a_topic_is_announced_when_its_status_change_event_comes(world, monkeypatch):
    emulated, settings = world
    record = started(settings)
    describe = described("FAILED", error="RestoreFailed", cause="storage-full")
    # Given `restorectl status` closing the record first (it has no topic: the notice is owed)
    quiet = JournalSettings(table_name=settings.table_name, topic_arn="", source_instance=settings.source_instance)
    done = reconcile.reconcile(record, reconciled_by="restorectl status (ana)", settings=quiet, describe=describe)
    assert done is not None and done["notified"] is False
    assert emulated.executions()[0]["notice"] == "owed" and emulated.notifications() == []

    # When the status-change function's event for that end arrives
    monkeypatch.setattr(reconcile, "describe_execution", describe)
    result = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")

    # Then it sends the notice, saying who reconciled the record
    assert result["notice"] == "its notice read owed; sent now"
    (notification,) = emulated.notifications()
    assert "[journal record reconciled from RUNNING by restorectl status (ana)]" in notification["message"]


def test_a_success_release_without_record_announced_is_marked_not_due_and_never_resent(world, monkeypatch):
    emulated, settings = world
    started(settings)
    output = json.dumps({"journal_release": {"notified": True}, "left_behind": "nothing"})
    monkeypatch.setattr(reconcile, "describe_execution", described("SUCCEEDED", output=output))

    first = reconcile.record_status_change(event("SUCCEEDED"), settings, "irisx-restore-", "the status-change function")
    again = reconcile.record_status_change(event("SUCCEEDED"), settings, "irisx-restore-", "the status-change function")

    assert first["notified"] is False and again["notice"] == "its notice reads not-due"
    assert emulated.executions()[0]["notice"] == "not-due" and emulated.notifications() == []


def end_step(settings: JournalSettings, outcome: str = "FAILED") -> dict[str, Any]:
    """The workflow's own end step (RecordFailure / RecordSuccess)."""
    failed = outcome == "FAILED"
    return records.finish(
        workflow="restore",
        execution_arn=ARN,
        started_at=START,
        outcome=outcome,
        error="RestoreFailed" if failed else None,
        cause="storage-full" if failed else None,
        left_behind="nothing",
        lock_resource=None,
        details={},
        result=None,
        settings=settings,
    )


def test_a_failure_whose_own_end_step_could_not_publish_its_notice_is_announced_by_the_status_change_function(world, monkeypatch):
    emulated, settings = world
    started(settings)
    # Given RecordFailure writing the record, then its publish throttled (the execution fails through its catch)
    with publish_fails(monkeypatch):
        end_step(settings)
    assert emulated.executions()[0]["notice"] == "failed" and emulated.notifications() == []
    monkeypatch.setattr(reconcile, "describe_execution", described("FAILED", error="RestoreFailed", cause="storage-full"))

    # When the FAILED event reaches the status-change function
    result = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")

    # Then the record is left as the end step wrote it, and the notice it owed is sent, once
    assert result["reconciled"] is False and result["notice"] == "its notice read failed; sent now"
    (notification,) = emulated.notifications()
    assert notification["subject"] == "[irisx-restore] restore FAILED: RestoreFailed" and "reconciled" not in notification["message"]
    assert "reconciled" not in emulated.executions()[0]


def test_a_success_release_without_record_announced_after_its_end_step_failed_to_publish_is_not_announced_again(world, monkeypatch):
    emulated, settings = world
    started(settings)
    # Given RecordSuccess writing the record and failing to publish, then ReleaseWithoutRecord announcing the success
    with publish_fails(monkeypatch):
        end_step(settings, "SUCCEEDED")
    output = json.dumps({"journal_release": {"notified": True}, "left_behind": "nothing"})
    monkeypatch.setattr(reconcile, "describe_execution", described("SUCCEEDED", output=output))

    result = reconcile.record_status_change(event("SUCCEEDED"), settings, "irisx-restore-", "the status-change function")

    # Then nothing is sent twice, and the record no longer says the notice failed
    assert result["notice"] == "its notice read failed, but ReleaseWithoutRecord announced this success; marked sent"
    assert emulated.notifications() == []
    (record,) = emulated.executions()
    assert (record["notice"], record["notice_failure"]) == ("sent", "sent by ReleaseWithoutRecord (the execution's output says so)")


def test_an_end_step_that_overwrites_a_timed_out_record_replaces_its_failed_notice_mark_with_its_own(world, monkeypatch):
    emulated, settings = world
    started(settings)
    monkeypatch.setattr(abandoned, "last_state", lambda arn: "RecordSuccess")
    monkeypatch.setattr(reconcile, "describe_execution", described("TIMED_OUT"))
    # Given the status-change function journaling TIMED_OUT and failing to publish it
    with publish_fails(monkeypatch):
        reconcile.record_status_change(event("TIMED_OUT"), settings, "irisx-restore-", "the status-change function")
    assert emulated.executions()[0]["notice"] == "failed"

    # When the end step, still running when the execution timed out, writes its own end and announces it
    end_step(settings, "SUCCEEDED")

    # Then the record's mark is the end step's, and a retry of the function resends nothing in its name
    (record,) = emulated.executions()
    assert (record["outcome"], record["notice"], record.get("notice_failure")) == ("SUCCEEDED", "sent", None)
    retried = reconcile.record_status_change(event("TIMED_OUT"), settings, "irisx-restore-", "the status-change function")
    assert retried["notice"] == "its notice reads sent"
    assert [n["subject"] for n in emulated.notifications()] == ["[irisx-restore] restore SUCCEEDED"]


def test_a_record_closed_before_notices_were_marked_is_left_as_it_is(world, monkeypatch):
    emulated, settings = world
    record = started(settings)
    table = emulated_table(settings)
    table.update_item(
        Key={"pk": record["pk"], "sk": record["sk"]},
        UpdateExpression="SET outcome = :failed",
        ExpressionAttributeValues={":failed": "FAILED"},
    )
    monkeypatch.setattr(reconcile, "describe_execution", described("FAILED", error="RestoreFailed", cause="storage-full"))

    result = reconcile.record_status_change(event("FAILED"), settings, "irisx-restore-", "the status-change function")

    assert result["notice"] == "no notice mark to check (the record was closed before notices were marked)"
    assert emulated.notifications() == []


def emulated_table(settings: JournalSettings) -> Any:
    import boto3

    return boto3.resource("dynamodb").Table(settings.table_name)


@pytest.mark.parametrize(
    ("workflow", "error", "kept"),
    [
        ("in-place-restore", "RollbackFailed", True),
        ("in-place-restore", "ValidationFailed", False),
        ("restore", "RollbackFailed", True),
        ("rollback", "RollbackFailed", True),
        ("restore", "ValidationFailed", False),
    ],
)
def test_an_end_that_failed_putting_production_back_and_could_not_record_it_keeps_production_locked(world, workflow, error, kept):
    from restore_runbook.journal.workflows import traits_of

    emulated, settings = world
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:irisx-restore-{workflow}:run-1"
    # Given an execution holding production's lock that failed without its end record: its own end step,
    # which would have read whether production was put right, never ran
    records.record_start(workflow=workflow, execution_arn=arn, started_at=START, execution_input={"requested_by": "ana"}, settings=settings)
    record = abandoned.find_record(workflow, arn, START, settings)
    assert record is not None
    journal_lock.take_lock(workflow=workflow, execution_arn=arn, resource=SOURCE_LOCK, requested_by="ana", settings=settings)

    # When its end is reconciled
    done = reconcile.reconcile(record, reconciled_by="x", settings=settings, describe=described("FAILED", error=error, cause="c"))

    # Then after a failure to put production back the lock is kept for a person, on words that say what to
    # put right; after any other failure (production never left as it was, or put back) it is released
    assert done is not None
    (closed,) = emulated.executions()
    if kept:
        (lock,) = emulated.locks()
        assert lock["holder"] == arn
        assert lock["needs_recovery"] == traits_of(workflow).kept_when_failed_with[error].format(arn=arn)
        assert closed["lock_release"].startswith("KEPT the lock on irisx-prod-rds-postgres, marked as needing recovery")
        assert lock["needs_recovery"] in closed["left_behind"]
    else:
        assert emulated.locks() == [] and closed["lock_release"] == "released the lock on irisx-prod-rds-postgres"
