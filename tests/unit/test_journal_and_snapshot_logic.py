"""Pure logic of the journal and the snapshot workflow: names, waits, settings, messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from restore_runbook.common import failure
from restore_runbook.common.errors import InvalidInput, ValidationFailed
from restore_runbook.journal import events, notify, records
from restore_runbook.journal.table import JournalSettings, console_link
from restore_runbook.snapshot import snapshots as snapshot

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:eu-west-1:123456789012:execution:irisx-restore-restore:run-1"


def test_snapshot_names_follow_the_runbook():
    moment = datetime(2025, 11, 2, 9, 5, 7, tzinfo=timezone.utc)
    assert snapshot.snapshot_name("irisx", "pre-migration", moment) == "irisx-pre-migration-20251102-090507"


def test_snapshot_polls_wait_half_the_remaining_time_the_progress_predicts_within_bounds():
    settings = snapshot.SnapshotSettings.from_env({"SNAPSHOT_POLL_INITIAL_SECONDS": "30", "SNAPSHOT_POLL_MAX_SECONDS": "300"})
    assert snapshot.next_wait_seconds(0, 0, settings) == 30
    assert snapshot.next_wait_seconds(120, 10, settings) == 300  # 18 minutes left: capped
    assert snapshot.next_wait_seconds(600, 50, settings) == 300
    assert snapshot.next_wait_seconds(600, 90, settings) == 33  # a minute left: half of it, above the floor
    assert snapshot.next_wait_seconds(600, 99, settings) == 30


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SNAPSHOT_KEEP_LAST": '{"pre-migratoin": 2}'}, "must map reasons"),
        ({"SNAPSHOT_KEEP_LAST": '{"upgrade": 0}'}, "must map reasons"),
        ({"SNAPSHOT_KEEP_LAST": "ten"}, "is not a JSON object"),
        ({"SNAPSHOT_PREFIX": "IRISX"}, "SNAPSHOT_PREFIX"),
        ({"SNAPSHOT_POLL_MAX_ATTEMPTS": "0"}, "not a positive whole number"),
        ({"SNAPSHOT_POLL_INITIAL_SECONDS": "600", "SNAPSHOT_POLL_MAX_SECONDS": "60"}, "INITIAL_SECONDS <= "),
    ],
)
def test_snapshot_settings_are_checked_at_cold_start(env, message):
    with pytest.raises(InvalidInput, match=message):
        snapshot.SnapshotSettings.from_env(env)


def test_the_console_link_points_at_the_execution_in_its_region():
    assert console_link(ARN) == ("https://console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/" + ARN)


def test_the_starter_comes_from_the_input_or_says_where_to_look():
    assert records.starter({"requested_by": "ana", "pipeline_run": "run 7"}) == {"requested_by": "ana", "pipeline_run": "run 7"}
    assert "CloudTrail" in records.starter("not an object")["requested_by"]


def test_a_failure_message_says_workflow_outcome_error_cause_what_is_left_and_where_to_look():
    subject, body = notify.notification(
        workflow="restore",
        execution_arn=ARN,
        outcome="FAILED",
        error="ValidationFailed",
        cause="row counts differ",
        left_behind="deleted irisx-copy",
    )
    assert subject == "[irisx-restore] restore FAILED: ValidationFailed"
    for text in (
        "Workflow:    restore",
        "Error:       ValidationFailed",
        "Cause:       row counts differ",
        "Left behind: deleted irisx-copy",
        console_link(ARN),
    ):
        assert text in body


def test_phases_are_the_steps_that_report_a_start():
    details = {
        "plan": {"checked_at": "t0"},
        "restore": {"started_at": "t1", "available_at": "t2"},
        "snapshot": {"started_at": "t3"},
    }
    assert records.phases_of(details) == [
        {"phase": "restore", "start": "t1", "end": "t2"},
        {"phase": "snapshot", "start": "t3", "end": None},
    ]


def test_only_failures_and_the_mutating_workflows_successes_notify():
    settings = JournalSettings(table_name="t", topic_arn="")
    assert (
        notify.notify(workflow="snapshot", execution_arn=ARN, outcome="FAILED", error="E", cause="c", left_behind="x", settings=settings)
        is False
    )  # no topic configured
    # a recordings restore changes production's recordings: its success is news too
    assert notify.NOTIFY_ON_SUCCESS == {"restore", "rollback", "in-place-restore", "recordings-restore"}


def test_each_workflow_says_once_what_it_locks_whether_success_notifies_and_what_it_may_leave():
    from restore_runbook.journal.workflows import WORKFLOWS, lock_label, traits_of

    plan = {"source_instance": "irisx-prod-rds-postgres", "lock_scope": "irisx-recordings/recordings/7/", "requested_by": "ana"}
    assert {name: t.lock.resource(plan) if t.lock else None for name, t in WORKFLOWS.items()} == {
        "recordings-restore": "s3:irisx-recordings/recordings/7/",
        "restore": "rds:irisx-prod-rds-postgres",
        "rollback": "rds:irisx-prod-rds-postgres",
        "in-place-restore": "rds:irisx-prod-rds-postgres",
        # a drill never takes the lock an incident's restore of the same source needs
        "drill": "drill:irisx-prod-rds-postgres",
        "snapshot": None,
    }
    assert all(t.left_behind_when_abandoned for t in WORKFLOWS.values())
    assert traits_of("not-a-workflow").lock is None and traits_of("not-a-workflow").notify_on_success is False
    assert lock_label("rds:irisx-prod-rds-postgres") == "irisx-prod-rds-postgres"
    assert lock_label("s3:irisx-recordings/tenant-7/") == "s3://irisx-recordings/tenant-7/"
    with pytest.raises(InvalidInput, match="no source_instance"):
        WORKFLOWS["restore"].lock.resource({"requested_by": "ana"})


def test_the_lock_step_locks_what_its_workflow_declares_and_refuses_a_workflow_without_one():
    settings = JournalSettings(table_name="t", topic_arn="")
    with pytest.raises(InvalidInput, match="declares no lock"):
        events.lock_from_event({"context": {"workflow": "snapshot", "execution_id": ARN}, "plan": {}}, settings)
    with pytest.raises(InvalidInput, match="no plan"):
        events.lock_from_event({"context": {"workflow": "restore", "execution_id": ARN}}, settings)


# ------------------------------------------------------------------ a failed step's report in the cause

VALIDATION_REPORT = {
    "passed": False,
    "summary": "1 of 3 checks failed: row_counts: table recordings does not exist in the restored database",
    "checks": [
        {"name": "connect", "status": "passed", "passed": True, "detail": "connected", "values": {"server_version": "15.4"}},
        {
            "name": "row_counts",
            "status": "failed",
            "passed": False,
            "detail": "table recordings does not exist in the restored database",
            "values": {"counts": {"calls": 2000, "recordings": None}, "missing_tables": ["recordings"]},
        },
        {"name": "recency:recordings", "status": "skipped", "passed": False, "detail": "skipped", "values": {}},
    ],
    "restore_point": "2025-11-02T11:00:00Z",
    "duration_ms": 12.5,
}


def test_a_report_rides_at_the_end_of_the_message_and_comes_back_out():
    # Given a ValidationFailed raised with its report
    error = ValidationFailed(VALIDATION_REPORT["summary"], report=VALIDATION_REPORT)
    # Then the message (what Step Functions shows as the cause) reads as the sentence first
    assert str(error).startswith(VALIDATION_REPORT["summary"] + failure.REPORT_MARKER)
    assert error.report is VALIDATION_REPORT and error.message == VALIDATION_REPORT["summary"]
    # And the report parses back out, even after a cleanup step appended its own words
    text, report = failure.split_report(f"{error} [cleanup: deleted irisx-copy]")
    assert text == f"{VALIDATION_REPORT['summary']} [cleanup: deleted irisx-copy]"
    assert report == {
        "failed": [
            {
                "name": "row_counts",
                "status": "failed",
                "detail": "table recordings does not exist in the restored database",
                "values": {"counts": {"calls": 2000, "recordings": None}, "missing_tables": ["recordings"]},
            },
            {"name": "recency:recordings", "status": "skipped", "detail": "skipped", "values": {}},
        ],
        "passed": ["connect"],
        "restore_point": "2025-11-02T11:00:00Z",
        "duration_ms": 12.5,
    }


def test_an_error_without_a_report_keeps_its_plain_message():
    assert str(InvalidInput("mode must be snapshot or point-in-time")) == "mode must be snapshot or point-in-time"
    assert failure.split_report("mode must be snapshot or point-in-time") == ("mode must be snapshot or point-in-time", None)


def test_explain_keeps_a_readable_report_and_drops_a_damaged_one():
    message = str(ValidationFailed("1 of 3 checks failed", report=VALIDATION_REPORT))
    cause = json.dumps({"errorType": "ValidationFailed", "errorMessage": message, "stackTrace": ["..."]})
    error, explained = failure.explain({"Error": "ValidationFailed", "Cause": cause})
    assert (error, explained) == ("ValidationFailed", message)
    # a cause cut short (Step Functions caps it) loses the report, never leaves broken JSON behind
    assert failure.explain({"Error": "ValidationFailed", "Cause": message[:-20]}) == ("ValidationFailed", "1 of 3 checks failed")


@pytest.mark.parametrize("limit", [3000, 600, 200, 40])
def test_a_long_report_is_shortened_with_a_note_and_stays_valid_json(limit):
    # Given a report far longer than the limit: many failing checks with long details
    checks = [
        {"name": f"recency:table_{i}", "status": "failed", "passed": False, "detail": "x" * 500, "values": {"rows": i, "gap": "y" * 300}}
        for i in range(60)
    ]
    encoded = failure.encode_report({"passed": False, "checks": checks}, limit=limit)
    # Then it fits, parses, and says that it was shortened
    assert len(encoded) <= limit
    decoded = json.loads(encoded)
    assert decoded["truncated"]
    if limit >= 200:
        assert "shortened" in decoded["truncated"]
    if limit >= 600:
        assert decoded["failed"][0]["name"] == "recency:table_0"
        assert decoded["failed"][-1] == "… more"
    # And the whole message round-trips through the cause
    text, report = failure.split_report(f"60 checks failed{failure.REPORT_MARKER}{encoded} [cleanup: kept]")
    assert (text, report) == ("60 checks failed [cleanup: kept]", decoded)


def test_the_notification_lists_each_check_that_did_not_pass_with_its_measured_values():
    cause = str(ValidationFailed(VALIDATION_REPORT["summary"], report=VALIDATION_REPORT)) + " [cleanup: deleted irisx-copy]"
    _, body = notify.notification(
        workflow="restore", execution_arn=ARN, outcome="FAILED", error="ValidationFailed", cause=cause, left_behind="deleted irisx-copy"
    )
    assert f"Cause:       {VALIDATION_REPORT['summary']} [cleanup: deleted irisx-copy]" in body
    assert (
        "  - row_counts (failed): table recordings does not exist in the restored database; "
        'measured {"counts": {"calls": 2000, "recordings": null}, "missing_tables": ["recordings"]}'
    ) in body
    assert "  - recency:recordings (skipped): skipped; measured {}" in body
    assert failure.REPORT_MARKER not in body
