"""Pure logic of the journal and the snapshot workflow: names, waits, settings, messages."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from restore_runbook.common.errors import InvalidInput
from restore_runbook.journal import records as journal
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
    assert journal.console_link(ARN) == ("https://console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/" + ARN)


def test_the_starter_comes_from_the_input_or_says_where_to_look():
    assert journal.starter({"requested_by": "ana", "pipeline_run": "run 7"}) == {"requested_by": "ana", "pipeline_run": "run 7"}
    assert "CloudTrail" in journal.starter("not an object")["requested_by"]


def test_a_failure_message_says_workflow_outcome_error_cause_what_is_left_and_where_to_look():
    subject, body = journal.notification(
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
        journal.console_link(ARN),
    ):
        assert text in body


def test_phases_are_the_steps_that_report_a_start():
    details = {
        "plan": {"checked_at": "t0"},
        "restore": {"started_at": "t1", "available_at": "t2"},
        "snapshot": {"started_at": "t3"},
    }
    assert journal.phases_of(details) == [
        {"phase": "restore", "start": "t1", "end": "t2"},
        {"phase": "snapshot", "start": "t3", "end": None},
    ]


def test_only_failures_and_the_mutating_workflows_successes_notify():
    settings = journal.JournalSettings(table_name="t", topic_arn="")
    assert (
        journal.notify(workflow="snapshot", execution_arn=ARN, outcome="FAILED", error="E", cause="c", left_behind="x", settings=settings)
        is False
    )  # no topic configured
    assert journal.NOTIFY_ON_SUCCESS == {"restore", "rollback", "in-place-restore"}
