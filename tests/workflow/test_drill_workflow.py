"""The drill workflow end to end: the real ASL, restore's own steps, emulated RDS and a real PostgreSQL.

Every scenario asserts on the execution's path and on the world afterwards: which instances exist,
what the journal holds, which locks are left.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from restore_runbook.common import clock, rds
from restorectl import emulated_rds
from restorectl.lambda_bridge import LambdaContext
from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.redrives import assert_each_redrive_refused

pytestmark = pytest.mark.workflow

DRILL_PREFIX = f"{SOURCE}-drill-"


def drill_records(result: Any) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#drill"]


def locks(result: Any) -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


def no_drill_copy_left(result: Any) -> bool:
    return not [i for i in instance_ids(result.world) if i.startswith(DRILL_PREFIX)]


def watch_copy_at(world: Any, state: str) -> dict[str, Any]:
    """Record the drill copy's tags as they are when `state` is first invoked (the copy is gone by the end)."""
    seen: dict[str, Any] = {}
    answer = world.bridge.answer

    def watching(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == state and not seen:
            import boto3

            for instance in boto3.client("rds").describe_db_instances()["DBInstances"]:
                if instance["DBInstanceIdentifier"].startswith(DRILL_PREFIX):
                    seen[instance["DBInstanceIdentifier"]] = rds.tags_of(instance)
        return answer(function_name, body, headers)

    world.bridge.answer = watching  # type: ignore[method-assign]
    return seen


def run_sweep() -> dict[str, Any]:
    """The daily sweep's handler, invoked in the rehearsal's world as its schedule would."""
    from restore_runbook.drill.handlers.sweep_drill_instances import handler

    function = "irisx-restore-drill-sweep"
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
    return handler({}, LambdaContext(function_name=function, invoked_function_arn=arn))


def hold_at(world: Any, state: str) -> tuple[threading.Event, threading.Event]:
    """Hold the first execution that reaches `state` there until released (others pass)."""
    reached, release = threading.Event(), threading.Event()
    answer = world.bridge.answer

    def held(function_name: str, body: Any, headers: Any) -> bytes:
        event = json.loads(body or "{}")
        if event.get("context", {}).get("state") == state and event.get("context", {}).get("workflow") == "drill" and not reached.is_set():
            reached.set()
            release.wait(timeout=60)
        return answer(function_name, body, headers)

    world.bridge.answer = held  # type: ignore[method-assign]
    return reached, release


def test_a_drill_that_meets_its_objectives_restores_a_tagged_copy_validates_it_deletes_it_and_records_the_evidence(rehearsal):
    world = rehearsal()
    copies = watch_copy_at(world, "TearDown")

    result = world.run("drill", {"requested_by": "make rehearse"})

    assert result.status == "SUCCEEDED", result.cause
    assert result.states()[:4] == ["RecordRequest", "RecordStart", "CheckDrillInput", "IsDuplicateStart"]
    assert ["ValidateRestore", "KeepForInspection", "TearDown"] == result.states()[result.states().index("ValidateRestore") :][:3]
    assert result.states()[-2:] == ["MeasureDrill", "RecordSuccess"]
    # The copy was named and tagged as a drill's, and is gone; production is untouched.
    ((name, tags),) = copies.items()
    assert name.startswith(DRILL_PREFIX)
    assert tags[rds.TAG_PURPOSE] == "drill" and tags[rds.TAG_WORKFLOW] == "drill" and tags[rds.TAG_SOURCE] == SOURCE
    assert instance_ids(result.world) == [SOURCE]
    output = result.output
    assert (output["verdict"], output["missed"], output["torn_down"]) == ("met", [], True)
    assert output["measures"]["rto"]["verdict"] == "met" and output["measures"]["rto"]["objective_seconds"] == 30 * 60
    assert output["measures"]["rto"]["seconds"] >= 20 * 60  # the simulated 20-minute restore
    assert output["measures"]["rto"]["phases"]["restore_seconds"] >= 20 * 60
    assert output["measures"]["rpo"]["verdict"] == "met" and output["measures"]["rpo"]["seconds"] <= 5 * 60
    assert output["measures"]["rpo"]["data_gap_seconds"] is not None
    assert output["measures"]["alive_beyond_restore"]["seconds"] <= 5 * 60
    # The journal holds the evidence; the drill's own lock is released.
    (record,) = drill_records(result)
    assert record["outcome"] == "SUCCEEDED" and record["requested_by"] == "make rehearse"
    assert record["result"]["restore_point"] == output["restore_point"]
    assert record["result"]["measures"]["rto"]["seconds"] == output["measures"]["rto"]["seconds"]
    assert record["validation"]["passed"] is True
    assert record["lock_release"] == f"released the lock on drill:{SOURCE}"
    assert record["left_behind"].startswith(f"nothing: {name} deleted")
    assert locks(result) == []


def test_a_slow_restore_misses_rto_and_the_drill_still_deletes_its_copy(rehearsal):
    world = rehearsal(restore_minutes=40)

    result = world.run("drill", {"restore_point": "snapshot:latest"})

    assert result.status == "SUCCEEDED", result.cause
    assert (result.output["verdict"], result.output["missed"]) == ("missed", ["rto"])
    assert result.output["measures"]["rto"]["objective_seconds"] == 20 * 60  # the runbook's snapshot objective
    assert result.output["measures"]["rto"]["seconds"] > 40 * 60
    assert result.output["snapshot_id"].startswith("rds:irisx-prod-rds-postgres-")
    assert "MISSED rto" in drill_records(result)[0]["left_behind"]
    assert no_drill_copy_left(result)


def test_backups_lagging_behind_production_miss_rpo(rehearsal, monkeypatch):
    # Given transaction logs reaching the backups 12 minutes late (RDS's normal lag is about 5)
    monkeypatch.setattr(emulated_rds, "RESTORABLE_LAG", timedelta(minutes=12))
    world = rehearsal()

    result = world.run("drill", {})

    assert result.status == "SUCCEEDED", result.cause
    assert (result.output["verdict"], result.output["missed"]) == ("missed", ["rpo"])
    assert result.output["measures"]["rpo"]["seconds"] == 12 * 60
    assert result.output["measures"]["rto"]["verdict"] == "met"
    assert no_drill_copy_left(result)


def test_random_restore_points_fall_inside_the_restorable_window_and_validate_there(rehearsal):
    world = rehearsal()
    for _ in range(2):
        result = world.run("drill", {"restore_point": "random"})

        assert result.status == "SUCCEEDED", result.cause
        window, point = result.output["restorable_window"], clock.parse_utc(result.output["restore_point"])
        assert clock.parse_utc(window["earliest"]) + timedelta(minutes=10) <= point <= clock.parse_utc(window["latest"])
        assert clock.parse_utc(window["earliest"]) <= clock.parse_utc(result.output["requested_at"]) - timedelta(days=6)
        # Validated as of that point against production (recency), then removed.
        assert result.output["validation_summary"].startswith("all ")
        assert no_drill_copy_left(result)


FAILURES = [
    pytest.param(dict(settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'}), "ValidationFailed", id="validation"),
    pytest.param(dict(restore_outcome="incompatible-parameters"), "RestoreFailed", id="restore"),
    pytest.param(
        dict(restore_minutes=24 * 60, settings_overrides={"RESTORE_POLL_MAX_ATTEMPTS": "3"}), "RestoreTimedOut", id="restore-timeout"
    ),
    # The validate function itself timing out (Lambda reports Sandbox.Timedout) after it connected.
    pytest.param(dict(inject=["ValidateRestore=Sandbox.Timedout@after"]), "Sandbox.Timedout", id="task-timeout"),
    pytest.param(dict(inject=["DescribeRestore=Lambda.Unknown:1"]), "Lambda.Unknown", id="poll-crash"),
]


@pytest.mark.parametrize(("options", "error"), FAILURES)
def test_every_failure_path_tears_the_copy_down_first_then_records_the_original_error(rehearsal, options, error):
    world = rehearsal(**options)

    result = world.run("drill", {})

    assert (result.status, result.error) == ("FAILED", error), result.cause
    states = result.states()
    # Teardown first, then the failure record: the copy is gone before anyone is told.
    assert states.index("TearDown") < states.index("ExplainFailure") < states.index("RecordFailure")
    assert "MeasureDrill" not in states
    assert instance_ids(result.world) == [SOURCE]
    assert " deleted]" in result.cause
    (record,) = drill_records(result)
    assert (record["outcome"], record["error"]) == ("FAILED", error)
    assert record["result"]["verdict"] == "failed" and record["result"]["torn_down"] is True
    assert record["left_behind"].endswith("deleted")
    assert locks(result) == []
    (notification,) = result.world["notifications"]
    assert notification["subject"] == f"[irisx-restore] drill FAILED: {error}"


def test_a_failure_before_anything_exists_creates_nothing_and_tears_nothing_down(rehearsal):
    world = rehearsal()

    result = world.run("drill", {"restore_point": "2020-01-01T00:00:00Z"})

    assert (result.status, result.error) == ("FAILED", "RestoreTimeOutOfRange")
    assert "TearDown" not in result.states() and "TakeLock" not in result.states()
    assert "is before the earliest restorable time" in result.cause and "[teardown: nothing was created]" in result.cause
    assert instance_ids(result.world) == [SOURCE]


def test_a_second_start_for_the_same_scheduled_time_ends_at_once_and_says_so(rehearsal):
    world = rehearsal()
    scheduled = {"scheduled_time": "2025-12-02T10:00:00Z", "requested_by": "EventBridge Scheduler"}
    first = world.run("drill", scheduled)
    assert first.status == "SUCCEEDED", first.cause

    retry = world.run("drill", {**scheduled, "scheduled_time": "2025-12-02T11:00:00+01:00"})

    assert retry.status == "SUCCEEDED", retry.cause
    assert retry.states() == ["RecordRequest", "RecordStart", "CheckDrillInput", "IsDuplicateStart", "DuplicateStart", "RecordDuplicate"]
    first_arn = drill_records(first)[0]["execution_arn"]
    assert retry.output["duplicate_of"] == first_arn
    assert "was already started as execution" in retry.output["message"] and "did nothing" in retry.output["message"]
    assert not [i for i in retry.invocations if i["state"] in ("StartRestore", "TakeLock")]
    records = {r["execution_arn"]: r for r in drill_records(retry)}
    assert len(records) == 2 and records[first_arn]["result"]["verdict"] == "met"
    duplicate = next(r for arn, r in records.items() if arn != first_arn)
    assert duplicate["outcome"] == "SUCCEEDED" and duplicate["result"]["duplicate_of"] == first_arn
    # And a redrive resumed at the duplicate's record refuses there, writing nothing
    assert_each_redrive_refused(world, retry, only=["RecordDuplicate"])
    # Another scheduled time is another drill.
    next_month = world.run("drill", {**scheduled, "scheduled_time": "2026-01-06T10:00:00Z"})
    assert next_month.status == "SUCCEEDED" and "StartRestore" in next_month.states()


def test_a_restore_of_the_same_source_proceeds_while_a_drill_runs_and_a_second_drill_waits_its_turn(rehearsal):
    # Given a drill holding its lock, waiting for its copy (held at its first poll)
    world = rehearsal()
    reached, release = hold_at(world, "DescribeRestore")
    drill = world.start("drill", {"requested_by": "schedule"})
    assert reached.wait(timeout=60), "the drill never reached its poll"

    # When an incident restore of the same source starts meanwhile, it proceeds to the end
    restore = world.run("restore", {"mode": "point-in-time", "target_instance": "irisx-incident", "requested_by": "on-call"})
    assert restore.status == "SUCCEEDED", restore.cause
    assert "irisx-incident" in instance_ids(restore.world)
    assert [lock["resource"] for lock in locks(restore)] == [f"drill:{SOURCE}"]

    # And a second drill of the same source is refused, creating nothing
    second = world.run("drill", {})
    assert (second.status, second.error) == ("FAILED", "OperationInProgress")
    assert "StartRestore" not in second.states()

    # And the first drill goes on to success, deleting only its own copy
    release.set()
    done = world.follow("drill", drill)
    assert done.status == "SUCCEEDED", done.cause
    assert instance_ids(done.world) == ["irisx-incident", SOURCE]
    assert locks(done) == []


def test_a_drill_stopped_midway_leaves_its_copy_to_the_daily_sweep_which_removes_it_and_says_so(rehearsal):
    import boto3

    world = rehearsal()
    reached, release = hold_at(world, "DescribeRestore")
    drill = world.start("drill", {})
    assert reached.wait(timeout=60), "the drill never reached its poll"
    (copy,) = [i for i in instance_ids(world.describe_world()) if i.startswith(DRILL_PREFIX)]

    # When someone stops the execution while RDS is still restoring
    boto3.client("stepfunctions").stop_execution(executionArn=drill, error="Stopped", cause="stopped by hand")
    release.set()
    stopped = world.follow("drill", drill)
    assert stopped.status == "ABORTED"
    assert copy in instance_ids(stopped.world)  # nothing in the execution deleted it

    # Then the daily sweep finds the drill copy by its tags and removes it, and only it
    report = run_sweep()

    assert [r["instance"] for r in report["removed"]] == [copy]
    assert "ABORTED" in report["removed"][0]["reason"]
    assert report["notified"] is True
    assert instance_ids(world.describe_world()) == [SOURCE]
    subjects = [n["subject"] for n in world.describe_world()["notifications"]]
    assert "[irisx-restore] drill sweep removed 1 leftover copy(ies)" in subjects


def test_a_kept_copy_of_a_named_snapshot_stays_for_the_minutes_asked_then_is_deleted(rehearsal):
    world = rehearsal()
    import boto3

    (manual,) = [
        s["DBSnapshotIdentifier"]
        for s in boto3.client("rds").describe_db_snapshots(DBInstanceIdentifier=SOURCE)["DBSnapshots"]
        if s["SnapshotType"] == "manual"
    ]

    result = world.run("drill", {"restore_point": f"snapshot:{manual}", "keep_minutes": 10})

    assert result.status == "SUCCEEDED", result.cause
    assert (result.output["mode"], result.output["snapshot_id"]) == ("snapshot", manual)
    alive = result.output["measures"]["alive_beyond_restore"]
    assert 10 * 60 <= alive["seconds"] <= 10 * 60 + 60 and alive["verdict"] == "met"  # objective: keep + 5 minutes
    assert result.output["measures"]["rto"]["seconds"] < 21 * 60  # the kept minutes are not part of the RTO
    assert result.output["measures"]["rpo"]["verdict"] == "no objective"
    assert no_drill_copy_left(result)


def test_a_drill_whose_teardown_fails_is_a_failed_drill_and_the_sweep_removes_its_copy(rehearsal):
    world = rehearsal(inject=["TearDown=TeardownFailed"])

    result = world.run("drill", {})

    assert (result.status, result.error) == ("FAILED", "TeardownFailed")
    assert result.states()[-3:] == ["ExplainFailure", "RecordFailure", "DrillFailed"]
    (copy,) = [i for i in instance_ids(result.world) if i.startswith(DRILL_PREFIX)]
    (record,) = drill_records(result)
    assert record["result"]["torn_down"] is False and "teardown FAILED" in record["left_behind"]
    assert f"daily sweep deletes {DRILL_PREFIX}" in record["left_behind"], "the copy left to the sweep is named"

    report = run_sweep()

    assert [r["instance"] for r in report["removed"]] == [copy]
    assert instance_ids(world.describe_world()) == [SOURCE]


def test_rehearse_drill_on_the_command_line_ends_with_the_drills_report_and_its_trend(capsys):
    from restorectl import cli

    code = cli.main(["rehearse", "drill", "--rows", "500", "--past-drills", "4", "--input", '{"requested_by": "make rehearse"}'])

    assert code == 0
    err = capsys.readouterr().err
    report = err[err.index("restore drills in this rehearsal's journal") :]
    assert report.count("point-in-time") == 5  # this drill and the four seeded before it
    assert "Last 5 drills: 4 succeeded" in report
    assert "Next drill due: 2025-12-02" in report


SWAP_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-in-place:swap"


def test_a_drill_of_a_production_that_an_in_place_swap_made_copies_none_of_the_tools_tags_and_still_tears_down(rehearsal):
    import boto3

    # Given production that is itself a copy an earlier in-place swap put in place: it carries the
    # tool's tags (managed, an old execution, role=production) beside the team's own
    world = rehearsal(calls_rows=300, restore_minutes=3)
    client = boto3.client("rds")
    source_arn = client.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]["DBInstanceArn"]
    client.add_tags_to_resource(
        ResourceName=source_arn,
        Tags=[
            {"Key": "irisx-restore:managed-by", "Value": "restore-runbook"},
            {"Key": rds.TAG_EXECUTION, "Value": SWAP_EXECUTION},
            {"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION},
            {"Key": "irisx-restore:swapped-by", "Value": "swap"},
            {"Key": "team", "Value": "voice"},
        ],
    )
    copies = watch_copy_at(world, "TearDown")

    result = world.run("drill", {"requested_by": "schedule"})

    # Then the drill's copy carried the team's tag and this drill's own, none of production's role
    assert result.status == "SUCCEEDED", result.cause
    ((_copy, tags),) = copies.items()
    assert tags["team"] == "voice"
    assert rds.TAG_ROLE not in tags and "irisx-restore:swapped-by" not in tags
    assert tags[rds.TAG_EXECUTION] != SWAP_EXECUTION and tags[rds.TAG_PURPOSE] == rds.PURPOSE_DRILL
    # And the teardown could delete it: nothing but production is left, and production keeps its marker
    assert instance_ids(result.world) == [SOURCE]
    assert rds.tags_of({"TagList": client.list_tags_for_resource(ResourceName=source_arn)["TagList"]})[rds.TAG_ROLE] == rds.ROLE_PRODUCTION
