"""`in-place-restore` end to end: the real ASL and handlers, emulated RDS renames, real SSM scripts and health servers.

Production keeps serving until a validated copy is ready; the swap is two renames followed by
resource id; every failure from the app's stop on renames back and starts the app on the original
before the execution fails with the original error, or ends in a RollbackFailed that says where
everything is.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from restorectl.harness import Rehearsal, RehearsalOptions
from restorectl.lambda_bridge import Injection
from tests.workflow.conftest import SOURCE, instance_ids, start_tagged_host, start_tagged_host_before, terminate_host_before
from tests.workflow.redrives import assert_each_redrive_refused

pytestmark = pytest.mark.workflow

CONFIRMED = {"confirm": SOURCE, "mode": "point-in-time", "reason": "bad migration", "requested_by": "ana"}
FAST = {"calls_rows": 300, "restore_minutes": 3, "snapshot_minutes": 2, "rename_minutes": 2}
ENDPOINT = f"{SOURCE}.aaaaaaaaaa.us-east-1.rds.amazonaws.com"


def rds_instance(identifier: str) -> dict[str, Any]:
    return boto3.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def resource_id_of(identifier: str) -> str:
    return str(rds_instance(identifier)["DbiResourceId"])


def calls_rows_behind(world: Any, identifier: str) -> int:
    """Rows in the local database an endpoint routes to: what the app reads through that name."""
    conn = world.pg.connect(world.rds.instance_db[identifier])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM calls")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def watch_production() -> None:
    """Monitoring as production has it: a CPU alarm on its name, and an event subscription listing it."""
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{SOURCE}-cpu-high",
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": SOURCE}],
        Statistic="Average",
        Period=300,
        EvaluationPeriods=2,
        Threshold=80.0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:irisx-oncall"],
    )
    boto3.client("rds").create_event_subscription(
        SubscriptionName="irisx-prod-events",
        SnsTopicArn="arn:aws:sns:us-east-1:123456789012:irisx-oncall",
        SourceType="db-instance",
        SourceIds=[SOURCE],
    )


def monitoring_now() -> tuple[list[tuple[str, Any]], list[list[str]]]:
    alarms = [(a["AlarmName"], a["Dimensions"]) for a in boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    subscriptions = [s["SourceIdsList"] for s in boto3.client("rds").describe_event_subscriptions()["EventSubscriptionsList"]]
    return sorted(alarms, key=str), subscriptions


def app_on_production(result: Any) -> list[tuple[str, str]]:
    return [(h["db_host"], h["health"]) for h in result.world["app_hosts"]]


def assert_production_back_and_healthy(world: Any, result: Any, original_id: str, original_rows: int) -> None:
    assert rds_instance(SOURCE)["DbiResourceId"] == original_id, "production must be under its original name"
    assert rds_instance(SOURCE)["DBInstanceStatus"] == "available"
    assert calls_rows_behind(world, SOURCE) == original_rows, "the production endpoint must serve the original data"
    assert app_on_production(result) == [(ENDPOINT, "connected")] * len(world.app_hosts.hosts)


# ---------------------------------------------------------------------------------------- success


def test_production_is_replaced_by_a_validated_copy_under_the_same_endpoint_and_the_old_one_is_kept_protected(rehearsal):
    # Given IRISX with production serving, and a restore point a day back
    world = rehearsal(**FAST)
    original_id = resource_id_of(SOURCE)
    original_rows = calls_rows_behind(world, SOURCE)
    restore_time = "2025-11-01T12:00:00Z"

    # When the on-call engineer runs the in-place restore, confirming production's name
    result = world.run("in-place-restore", {**CONFIRMED, "restore_time": restore_time})

    # Then it succeeds, with the copy validated before the app was stopped, and the app started after the swap
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    order = ["StartFinalSnapshot", "IsFinalSnapshotAvailable", "StartRestore", "ValidateRestore", "StopApp", "RenameProductionAway"]
    order += ["RenameCopyToProduction", "ApplyProductionSettings", "CarryMonitoringOver", "StartApp", "CheckHealth"]
    assert [states.index(s) for s in order] == sorted(states.index(s) for s in order)
    assert "RenameBack" not in states and "CleanUpAfterFailure" not in states
    # the rename waits really looped (a rename takes minutes) and needed several available reads
    assert states.count("CheckProductionRename") >= 3 and states.count("CheckCopyRename") >= 3

    # And the application is healthy on the RESTORED data under the original endpoint
    assert app_on_production(result) == [(ENDPOINT, "connected")] * 2
    new = rds_instance(SOURCE)
    assert new["DbiResourceId"] != original_id
    assert calls_rows_behind(world, SOURCE) < original_rows, "the endpoint now serves the data as of the restore point"
    assert new["DeletionProtection"] is True
    tags = {t["Key"]: t["Value"] for t in new["TagList"]}
    assert tags["irisx-restore:role"] == "production"

    # And the old production is kept under its new name, protected, marked, with all its data
    old_name = result.output["old_production"]["instance"]
    assert old_name.startswith(f"{SOURCE}-replaced-")
    old = rds_instance(old_name)
    assert old["DbiResourceId"] == original_id and old["DeletionProtection"] is True
    assert {t["Key"]: t["Value"] for t in old["TagList"]}["irisx-restore:role"] == "replaced-production"
    assert calls_rows_behind(world, old_name) == original_rows
    assert "--no-delete-automated-backups" in result.output["old_production"]["how_to_delete_later"]
    assert instance_ids(result.world) == sorted([SOURCE, old_name])

    # And the final snapshot of production is available and tagged with the execution
    snapshot = next(s for s in result.world["db_snapshots"] if s["id"] == result.output["final_snapshot"])
    assert snapshot["status"] == "available"
    assert snapshot["tags"]["irisx-restore:workflow"] == "in-place-restore"

    # And downtime is measured from the stop to healthy: the two renames, not the restore
    timings = result.output["timings"]
    assert timings["restore_seconds"] >= 180
    assert timings["rename_production_seconds"] >= 120 and timings["rename_copy_seconds"] >= 120
    assert 240 <= result.output["downtime_seconds"] < timings["total_seconds"] - timings["restore_seconds"]

    # And the journal says where everything is
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert record["outcome"] == "SUCCEEDED" and old_name in record["left_behind"]
    assert not [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


def test_production_settings_a_restore_cannot_set_are_copied_onto_the_new_production(rehearsal):
    # Given production with log exports, Enhanced Monitoring, a maintenance window and a CA certificate
    world = rehearsal(**FAST)
    boto3.client("rds").modify_db_instance(
        DBInstanceIdentifier=SOURCE,
        ApplyImmediately=True,
        CloudwatchLogsExportConfiguration={"EnableLogTypes": ["postgresql"]},
        MonitoringInterval=30,
        MonitoringRoleArn="arn:aws:iam::123456789012:role/rds-monitoring",
        PreferredMaintenanceWindow="sun:05:00-sun:06:00",
        CACertificateIdentifier="rds-ca-rsa2048-g1",
    )
    # and production's alarm and event subscription, by its name
    watch_production()
    monitoring_before = monitoring_now()

    result = world.run("in-place-restore", {**CONFIRMED, "mode": "snapshot"})

    assert result.status == "SUCCEEDED", result.cause
    new = rds_instance(SOURCE)
    assert new["EnabledCloudwatchLogsExports"] == ["postgresql"]
    assert (new["MonitoringInterval"], new["PreferredMaintenanceWindow"]) == (30, "sun:05:00-sun:06:00")
    assert new["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert result.output["settings_applied"]["MonitoringRoleArn"] == "arn:aws:iam::123456789012:role/rds-monitoring"
    # And monitoring followed the name: the same alarm and subscription, now watching the restored instance, and listed
    assert monitoring_now() == monitoring_before
    assert result.output["monitoring"]["followed_name"] == {"alarms": [f"{SOURCE}-cpu-high"], "subscriptions": ["irisx-prod-events"]}


# ---------------------------------------------------------------------------------------- one world, many runs
# A world takes far longer to build than a failing run takes to execute, and every run must leave it as
# it found it (production under its name, the app healthy), so each class of scenarios shares one world:
# a scenario that leaves a mess fails the assertions of the ones after it too.


@pytest.fixture(scope="class")
def shared_world(local_pg):
    """One world per test class, torn down when the class is done (before any test that builds its own)."""
    with Rehearsal(local_pg, RehearsalOptions(**FAST)) as world:
        yield world


@dataclass
class Run:
    result: Any
    arn: str
    created: list[str]  # instances that exist after the run and did not before
    commands: list[dict[str, Any]]  # SSM commands the run sent


def run_in(world: Rehearsal, monkeypatch: pytest.MonkeyPatch, execution_input: dict[str, Any], inject: list[str] = ()) -> Run:
    # The autouse fixture removes credentials at each test's start; the shared world's fake ones are put back.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "rehearsal")
    before = set(instance_ids(world.describe_world()))
    commands_before = len(world.app_hosts.commands_run)
    world.bridge.injections[:] = [Injection.parse(text) for text in inject]
    try:
        arn = world.start("in-place-restore", execution_input)
        result = world.follow("in-place-restore", arn)
    finally:
        world.bridge.injections.clear()
    created = sorted(set(instance_ids(result.world)) - before)
    return Run(result, arn, created, world.app_hosts.commands_run[commands_before:])


def journal_record(run: Run) -> dict[str, Any]:
    (record,) = [r for r in run.result.world["journal"] if r.get("execution_arn") == run.arn]
    return record


# ---------------------------------------------------------------------------------------- failure at every step

BEFORE_STOP = [
    "RecordStart",
    "CheckInPlaceInput",
    "TakeLock",
    "StartFinalSnapshot",
    "DescribeFinalSnapshot",
    "StartRestore",
    "DescribeRestore",
    "ValidateRestore",
    "ReadHostsDbHost",
    "CheckHostsServeProduction",
]
FROM_STOP_ON = [
    "StopApp",
    "CheckStop",
    "RenameProductionAway",
    "CheckProductionRename",
    "RenameCopyToProduction",
    "CheckCopyRename",
    "ApplyProductionSettings",
    "CheckSettingsApplied",
    "CarryMonitoringOver",
    "StartApp",
    "CheckStart",
    "CheckHealth",
]

AFTER_START = ["StartApp", "CheckStart", "CheckHealth"]


class TestBeforeTheStop:
    """Confirmation refused, or a failure before the app is stopped: only the copy is removed."""

    @pytest.mark.parametrize(
        "execution_input",
        [
            {"mode": "point-in-time"},
            {"mode": "point-in-time", "confirm": "irisx-prod"},
            {"mode": "point-in-time", "confirm": SOURCE.upper()},
        ],
        ids=["missing", "wrong", "wrong-case"],
    )
    def test_a_missing_or_wrong_confirmation_is_confirmation_required_and_nothing_is_done(self, shared_world, monkeypatch, execution_input):
        world = shared_world
        snapshots_before = {s["DBSnapshotIdentifier"] for s in boto3.client("rds").describe_db_snapshots()["DBSnapshots"]}

        run = run_in(world, monkeypatch, execution_input)

        result = run.result
        assert (result.status, result.error) == ("FAILED", "ConfirmationRequired")
        assert f'"confirm": "{SOURCE}"' in result.cause
        assert run.created == []
        assert {s["id"] for s in result.world["db_snapshots"]} == snapshots_before
        assert not {"TakeLock", "StartFinalSnapshot", "StopApp"} & set(result.states())
        assert app_on_production(result) == [(ENDPOINT, "connected")] * 2
        assert run.commands == [], "no command reached any host"

    @pytest.mark.parametrize("state", BEFORE_STOP)
    def test_a_failure_before_the_stop_only_removes_the_copy_and_never_touches_production(self, shared_world, monkeypatch, state):
        world = shared_world
        original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)

        run = run_in(world, monkeypatch, CONFIRMED, [f"{state}=InjectedFault"])

        result = run.result
        assert (result.status, result.error) == ("FAILED", "InjectedFault")
        assert f"into {state}" in result.cause
        assert "StopApp" not in result.states() and "RenameBack" not in result.states()
        assert run.created == [], "the copy (if any) is removed"
        assert_production_back_and_healthy(world, result, original_id, original_rows)
        assert not [c for c in run.commands if c["parameters"].get("Action") == ["stop"]]
        assert journal_record(run)["outcome"] == "FAILED"


def test_a_cleanup_retried_after_its_delete_was_taken_says_the_copy_was_deleted_and_the_final_snapshot_kept(rehearsal, monkeypatch):
    # Given an in-place restore whose validation fails, and a cleanup whose answer is lost once after it deleted the copy
    world = rehearsal(**FAST)

    run = run_in(world, monkeypatch, CONFIRMED, ["ValidateRestore=InjectedFault", "CleanUpAfterFailure=Lambda.SdkClientException:1@after"])

    # Then the retry finds no copy and says it was created and deleted, not that none was made; production is untouched
    result = run.result
    assert (result.status, result.error) == ("FAILED", "InjectedFault")
    assert [i["error"] for i in result.invocations if i["state"] == "CleanUpAfterFailure"] == ["Lambda.SdkClientException", None]
    assert re.search(
        r"\[cleanup: \S+ no longer exists: this execution created it, and an earlier attempt of this cleanup \(or someone else\) "
        r"deleted it; kept the final snapshot \S+ of production",
        result.cause,
    ), result.cause
    assert "no restored copy was created" not in result.cause
    assert run.created == [] and "StopApp" not in result.states()


class TestFromTheStopOn:
    """A failure from the stop on: renamed back, the app started on the original, the original error."""

    @pytest.mark.parametrize("state", FROM_STOP_ON)
    def test_a_failure_from_the_stop_on_renames_back_restarts_the_app_on_the_original_and_keeps_the_original_error(
        self, shared_world, monkeypatch, state
    ):
        world = shared_world
        original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)

        run = run_in(world, monkeypatch, CONFIRMED, [f"{state}=InjectedFault"])

        result = run.result
        assert (result.status, result.error) == ("FAILED", "InjectedFault"), result.cause
        states = result.states()
        assert states.index(state) < states.index("RenameBack") < states.index("RestartOnOriginal") < states.index("CheckHealthOnOriginal")
        assert "back under its name and the app is healthy on it" in result.cause
        if state in AFTER_START:
            # the app ran on the copy: it is stopped before the renames back, and the cause says where its writes are
            assert (
                states.index(state) < states.index("StopAppAfterStart") < states.index("CheckStopAfterStart") < states.index("RenameBack")
            )
            assert f"are in the copy {run.created[0]} only" in result.cause
        else:
            assert "StopAppAfterStart" not in states, "before the start the app is already stopped"
            assert "writes it took" not in result.cause
        assert_production_back_and_healthy(world, result, original_id, original_rows)
        # the original is production again by its marker; the copy is kept (the app may have written to it), unmarked
        assert {t["Key"]: t["Value"] for t in rds_instance(SOURCE)["TagList"]}["irisx-restore:role"] == "production"
        assert len(run.created) == 1 and "-inplace-" in run.created[0]
        assert {t["Key"]: t["Value"] for t in rds_instance(run.created[0])["TagList"]}["irisx-restore:role"] == "failed-copy"
        record = journal_record(run)
        assert (record["outcome"], record["error"]) == ("FAILED", "InjectedFault")
        assert run.created[0] in record["left_behind"]

    def test_a_failure_after_the_monitoring_carry_over_carries_it_back_and_leaves_monitoring_as_it_was(self, shared_world, monkeypatch):
        world = shared_world
        if not boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]:
            watch_production()
        before = monitoring_now()

        run = run_in(world, monkeypatch, CONFIRMED, ["CheckHealth=InjectedFault"])

        states = run.result.states()
        assert states.index("CarryMonitoringOver") < states.index("CheckHealth") < states.index("CarryMonitoringBack")
        assert (run.result.status, run.result.error) == ("FAILED", "InjectedFault")
        assert monitoring_now() == before

    @pytest.mark.parametrize("state", ["RenameProductionAway", "RenameCopyToProduction"])
    def test_a_rename_whose_answer_was_lost_is_finished_and_undone_by_the_rename_back(self, shared_world, monkeypatch, state):
        # Given a rename RDS accepted, but whose step reported a failure afterwards (a timeout, a lost answer)
        world = shared_world
        original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)

        run = run_in(world, monkeypatch, CONFIRMED, [f"{state}=InjectedFault@after"])

        # Then the rename-back waits for it to settle and undoes it
        result = run.result
        assert (result.status, result.error) == ("FAILED", "InjectedFault"), result.cause
        assert result.states().count("RenameBack") >= 3
        assert_production_back_and_healthy(world, result, original_id, original_rows)


def test_a_warm_pool_host_stopped_all_along_does_not_hold_up_the_swap(rehearsal):
    # Given a warm pool's app host, stopped in EC2 before the in-place restore begins: it runs no app
    # to stop, and starts later with DB_HOST naming production's endpoint, which the swap keeps
    world = rehearsal(**FAST)
    parked = start_tagged_host(world, stopped=True)

    result = world.run("in-place-restore", CONFIRMED)

    # Then the swap goes ahead: the host is not taken for one that appeared since the stop
    assert result.status == "SUCCEEDED", result.cause
    assert "RenameProductionAway" in result.states()
    boto3.client("ec2").terminate_instances(InstanceIds=[parked])


def test_a_host_that_appears_after_the_stop_keeps_production_from_being_renamed_and_is_named(rehearsal):
    # Given an app host from a warm pool that appears after the app was stopped on the hosts read,
    # just before production is renamed: it was never read or stopped, and would write to production
    world = rehearsal(**FAST)
    original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)
    ec2 = boto3.client("ec2")
    appeared = start_tagged_host_before(world, "RenameProductionAway", stopped=True)

    # When the in-place restore runs
    result = world.run("in-place-restore", CONFIRMED)

    # Then production is never renamed: the step refuses before its first change, naming the host
    assert appeared, "the workflow never reached RenameProductionAway"
    assert (result.status, result.error) == ("FAILED", "UnsafeOperation"), result.cause
    assert f"production {SOURCE} was not renamed: app host(s) {appeared[0]} appeared since the app was stopped" in result.cause
    assert not [i for i in instance_ids(result.world) if "-replaced-" in i]
    from restore_runbook.contract import ROLE_REPLACED_PRODUCTION, TAG_ROLE

    assert {"Key": TAG_ROLE, "Value": ROLE_REPLACED_PRODUCTION} not in rds_instance(SOURCE).get("TagList", [])
    # And the app is started again on the original production, which serves its own data
    states = result.states()
    assert states.index("RenameProductionAway") < states.index("RenameBack")
    assert_production_back_and_healthy(world, result, original_id, original_rows)
    ec2.terminate_instances(InstanceIds=appeared)


def test_when_renaming_back_fails_the_app_is_started_anyway_and_rollback_failed_names_both_instances_and_the_hosts(rehearsal):
    # Given a swap that fails half-way (the copy is being renamed to production) and a rename-back that cannot work
    world = rehearsal(**FAST, inject=["CheckCopyRename=InjectedFault", "RenameBack=InjectedFault"])
    original_id = resource_id_of(SOURCE)

    result = world.run("in-place-restore", CONFIRMED)

    # Then it fails with RollbackFailed, after starting the app again and checking its health
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    states = result.states()
    assert states.index("RenameBack") < states.index("StartAppAfterFailedRenameBack") < states.index("CheckHealthAfterFailedRenameBack")
    assert not [h for h in result.world["app_hosts"] if h["health"] == "down"], "the app is never left stopped"
    # And the cause names both instances with their names and statuses, who holds the name, and each host's app
    assert f"resource id {original_id}" in result.cause
    assert f"{SOURCE}-replaced-" in result.cause and "-inplace-" in result.cause
    assert f"the name {SOURCE} is held by" in result.cause
    for host in world.app_hosts.hosts:
        assert host.instance_id in result.cause
    assert "[original error InjectedFault:" in result.cause
    # And nothing was deleted
    assert len(instance_ids(result.world)) == 2
    # And a redrive resumed at any step after the failed rename-back refuses there, touching nothing
    after_failed_rename_back = ["StartAppAfterFailedRenameBack", "CheckStartAfterFailedRenameBack", "CheckHealthAfterFailedRenameBack"]
    assert_each_redrive_refused(world, result, only=[*after_failed_rename_back, "ExplainRenameBackFailure"])


def test_a_swap_left_half_done_keeps_production_locked_so_the_next_workflow_cannot_act_on_the_wrong_instance(rehearsal):
    from restore_runbook.journal import lock as journal_lock
    from restore_runbook.journal.table import JournalSettings

    # Given a swap that fails half-way (the copy is being renamed to production) and a rename-back that cannot work
    world = rehearsal(**FAST, inject=["CheckCopyRename=InjectedFault", "RenameBack=InjectedFault"])
    original_id = resource_id_of(SOURCE)

    result = world.run("in-place-restore", CONFIRMED)

    # Then production's name is held by the copy and the original is parked under another name
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert rds_instance(SOURCE)["DbiResourceId"] != original_id
    # And the lock on production is kept, marked as needing recovery, on words that say where the names stand
    (lock,) = [r for r in result.world["journal"] if r["pk"] == f"LOCK#rds:{SOURCE}"]
    assert lock["needs_recovery"].startswith(f"renaming back failed and production's name {SOURCE} is not back on the original")
    assert f"resource id {original_id}" in lock["needs_recovery"] and f"the name {SOURCE} is held by" in lock["needs_recovery"]
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert record["lock_release"].startswith(f"KEPT the lock on {SOURCE}, marked as needing recovery")
    # And the notice tells the person to put it right and release the lock
    (notice,) = [n for n in result.world["notifications"] if "in-place-restore FAILED" in n["subject"]]
    assert f"restorectl unlock rds:{SOURCE}" in notice["message"]

    # And an hour later, the renames in flight settled, another in-place restore, or a restore, of production
    # is refused at its lock, touching nothing (without the lock, the in-place restore would swap the copy away)
    world.clock.advance(3600)
    names_before = sorted(instance_ids(result.world))
    for workflow, execution_input in [
        ("in-place-restore", CONFIRMED),
        ("restore", {"mode": "point-in-time", "restore_time": "latest", "target_instance": "irisx-during-recovery"}),
    ]:
        refused = world.run(workflow, execution_input)
        assert (refused.status, refused.error) == ("FAILED", "OperationInProgress"), refused.cause
        assert "left it needing recovery" in refused.cause and f"restorectl unlock rds:{SOURCE}" in refused.cause
        assert sorted(instance_ids(refused.world)) == names_before
    assert rds_instance(SOURCE)["DbiResourceId"] != original_id, "the copy still holds the name: nothing acted on it"

    # And once a person has released it, the lock can be taken again
    released = journal_lock.unlock(resource=f"rds:{SOURCE}", settings=JournalSettings.from_env())
    assert released["released"] is True and released["needed_recovery"] == lock["needs_recovery"]


def test_a_host_whose_app_never_starts_again_ends_in_rollback_failed_saying_so(rehearsal):
    # Given an API host whose pm2 fails every restart
    world = rehearsal(**FAST, broken_hosts=("irisx-api-2",))
    original_id = resource_id_of(SOURCE)

    result = world.run("in-place-restore", CONFIRMED)

    # Then the swap is undone (production is back under its name) but the rollback cannot make that host healthy
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert "[original error CutoverFailed:" in result.cause
    assert rds_instance(SOURCE)["DbiResourceId"] == original_id
    broken = next(h for h in world.app_hosts.hosts if h.name == "irisx-api-2")
    assert f"{broken.instance_id}: Failed" in result.cause, "the cause names the host whose app did not start"
    healthy = [h for h in result.world["app_hosts"] if h["name"] == "irisx-api-1"]
    assert [(h["db_host"], h["health"]) for h in healthy] == [(ENDPOINT, "connected")]
    # And though production's name is back on the original, the app is not healthy everywhere: production's lock is
    # kept for the person starting it by hand, so no other workflow moves the fleet meanwhile
    (lock,) = [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]
    assert lock["needs_recovery"].startswith(f"production's name {SOURCE} is back on the original production, but the app")
    assert broken.instance_id in lock["needs_recovery"]


def test_a_host_terminated_while_the_app_was_stopped_does_not_keep_the_others_stopped(rehearsal):
    # Given an API host that is terminated during the downtime (say its autoscaling group replaced it)
    world = rehearsal(**FAST)
    gone = terminate_host_before(world, "irisx-api-2", "StartApp")

    result = world.run("in-place-restore", CONFIRMED)

    # Then the app is started on the host still running, which is healthy on production's endpoint,
    # and the swap stands: SSM was never asked to reach the terminated host
    assert result.status == "SUCCEEDED", result.cause
    assert "RenameBack" not in result.states()
    (start,) = [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in result.history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "StartApp"
    ]
    progress = start["start"]
    assert progress["hosts"] == [h.instance_id for h in world.app_hosts.hosts if h.instance_id != gone]
    assert progress["hosts_gone"] == [gone]
    serving = [h for h in result.world["app_hosts"] if h["name"] == "irisx-api-1"]
    assert [(h["db_host"], h["health"]) for h in serving] == [(ENDPOINT, "connected")]


# ---------------------------------------------------------------------------------------- the lock


def test_an_in_place_restore_while_a_restore_runs_on_the_same_source_fails_on_the_lock_touching_nothing(rehearsal):
    # Given a restore of production that holds the lock (held at its first poll)
    world = rehearsal(calls_rows=300, restore_minutes=3)
    reached, release = threading.Event(), threading.Event()
    answer = world.bridge.answer

    def held_answer(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == "DescribeRestore" and not release.is_set():
            reached.set()
            release.wait(timeout=60)
        return answer(function_name, body, headers)

    world.bridge.answer = held_answer  # type: ignore[method-assign]
    first = world.start("restore", {"mode": "snapshot", "target_instance": "irisx-first", "requested_by": "ben"})
    assert reached.wait(timeout=60), "the restore never reached its poll"

    # When an in-place restore of the same production starts meanwhile
    second = world.run("in-place-restore", CONFIRMED)

    # Then it fails at once with OperationInProgress naming the holder, before any snapshot, copy or stop
    assert (second.status, second.error) == ("FAILED", "OperationInProgress")
    assert first.rsplit(":", 1)[-1] in second.cause
    assert not {"StartFinalSnapshot", "StartRestore", "StopApp"} & set(second.states())
    assert rds_instance(SOURCE)["DBInstanceStatus"] == "available"

    release.set()
    done = world.follow("restore", first)
    assert done.status == "SUCCEEDED", done.cause


# ---------------------------------------------------------------------------------------- where the hosts point, before the stop
# An in-place restore keeps DB_HOST as it is, so it is right only when every host serves production's
# endpoint; anything else is refused before `pm2 stop` is sent, through the pre-stop cleanup.


def env_of(world: Rehearsal, name: str) -> Path:
    host = next(h for h in world.app_hosts.hosts if h.name == name)
    return host.path(world.app_hosts.env_file)


def instance_id_of(world: Rehearsal, name: str) -> str:
    return next(h.instance_id for h in world.app_hosts.hosts if h.name == name)


@contextlib.contextmanager
def env_file_kept(world: Rehearsal, *names: str) -> Iterator[None]:
    """Put each host's .env back as it was (a regular file, same text) when the scenario is done."""
    saved = {name: env_of(world, name).read_text() for name in names}
    try:
        yield
    finally:
        for name, text in saved.items():
            env = env_of(world, name)
            env.unlink()
            env.write_text(text)
            for leftover in env.parent.glob(".env.real"):
                leftover.unlink()


def assert_refused_before_the_stop(run: Run, snapshots_before: set[str]) -> None:
    result = run.result
    assert (result.status, result.error) == ("FAILED", "UnsafeOperation"), result.cause
    states = result.states()
    assert states.index("ValidateRestore") < states.index("CheckHostsServeProduction") < states.index("CleanUpAfterFailure")
    assert "StopApp" not in states and "RenameBack" not in states
    assert "The app was not stopped and production was not renamed" in result.cause
    assert not [c for c in run.commands if c["parameters"].get("Action") != ["health"]], "only the read-only health action was sent"
    assert run.created == [], "the copy this run restored is deleted"
    final = [s for s in result.world["db_snapshots"] if s["id"] not in snapshots_before]
    assert [s["tags"]["irisx-restore:workflow"] for s in final] == ["in-place-restore"], "the final snapshot is kept"
    record = journal_record(run)
    assert (record["outcome"], record["error"]) == ("FAILED", "UnsafeOperation")
    assert not [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


def test_after_a_cutover_to_a_copy_an_in_place_restore_refuses_before_the_stop_and_the_app_keeps_serving_the_copy(rehearsal):
    # Given production cut over to a validated copy by `restore`: every host's DB_HOST is the copy's endpoint
    world = rehearsal(**FAST)
    cutover = world.run("restore", {"mode": "snapshot", "cutover": True, "requested_by": "ben"})
    assert cutover.status == "SUCCEEDED", cutover.cause
    copy_endpoint = cutover.output["endpoint"]["address"]
    assert {h["db_host"] for h in cutover.world["app_hosts"]} == {copy_endpoint}
    original_id = resource_id_of(SOURCE)
    snapshots_before = {s["id"] for s in cutover.world["db_snapshots"]}
    commands_before = len(world.app_hosts.commands_run)

    # When the on-call engineer runs an in-place restore of the configured production
    arn = world.start("in-place-restore", CONFIRMED)
    result = world.follow("in-place-restore", arn)

    # Then it is refused by name, naming each host and where it points, before anything is stopped or renamed
    run = Run(
        result,
        arn,
        sorted(set(instance_ids(result.world)) - {SOURCE, cutover.output["target_instance"]}),
        world.app_hosts.commands_run[commands_before:],
    )
    assert_refused_before_the_stop(run, snapshots_before)
    for host in world.app_hosts.hosts:
        assert f"{host.instance_id}: DB_HOST={copy_endpoint}" in result.cause
    assert f"production's endpoint {ENDPOINT}" in result.cause
    # And the app still serves from the copy it was cut over to, and production is untouched
    assert [(h["db_host"], h["health"]) for h in result.world["app_hosts"]] == [(copy_endpoint, "connected")] * 2
    assert resource_id_of(SOURCE) == original_id and rds_instance(SOURCE)["DBInstanceStatus"] == "available"
    assert instance_ids(result.world) == sorted([SOURCE, cutover.output["target_instance"]])


def test_an_in_place_restore_of_an_app_that_is_down_goes_ahead_its_health_answer_does_not_gate_the_check(rehearsal):
    # Given production serving, and the app stopped on one host (the incident the restore is run for)
    world = rehearsal(**FAST)
    down = next(h for h in world.app_hosts.hosts if h.name == "irisx-api-2")
    subprocess.run([str(down.root / "usr/local/bin/pm2"), "stop", "irisx-api"], check=True, capture_output=True)
    assert world.app_hosts.health_of(down) == "down"

    result = world.run("in-place-restore", CONFIRMED)

    # Then the DB_HOST read finds production's endpoint on both hosts, and the swap goes ahead and the app serves again
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("ReadHostsDbHost") < states.index("CheckHostsServeProduction") < states.index("StopApp")
    (checked,) = [
        json.loads(e["stateExitedEventDetails"]["output"])["hosts_check"]
        for e in result.history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "CheckHostsServeProduction"
    ]
    assert checked["db_hosts"] == dict.fromkeys(sorted(h.instance_id for h in world.app_hosts.hosts), ENDPOINT)
    assert app_on_production(result) == [(ENDPOINT, "connected")] * 2


class TestWhereTheHostsPoint:
    """A host whose DB_HOST is not production's endpoint, or cannot be known, refuses the run before the stop."""

    def test_a_symlinked_env_is_refused_as_unknown_while_an_upper_case_endpoint_is_production(self, shared_world, monkeypatch):
        world = shared_world
        snapshots_before = {s["id"] for s in world.describe_world()["db_snapshots"]}
        with env_file_kept(world, "irisx-api-1", "irisx-api-2"):
            # DNS names are case-insensitive: this host does serve production
            upper = env_of(world, "irisx-api-1")
            upper.write_text(upper.read_text().replace(f"DB_HOST={ENDPOINT}", f"DB_HOST={ENDPOINT.upper()}"))
            # a .env that is a symlink is never followed by the script: where it points is unknown
            linked = env_of(world, "irisx-api-2")
            real = linked.with_name(".env.real")
            real.write_text(linked.read_text())
            linked.unlink()
            linked.symlink_to(real)

            run = run_in(world, monkeypatch, CONFIRMED)

        assert_refused_before_the_stop(run, snapshots_before)
        cause = run.result.cause
        assert f"{instance_id_of(world, 'irisx-api-2')}: DB_HOST unknown (" in cause and "symbolic link" in cause
        assert instance_id_of(world, "irisx-api-1") not in cause.split("[cleanup")[0]
        # the app kept serving production on both (the world was looked at before the .env files were put back)
        assert [(h["db_host"].lower(), h["health"]) for h in run.result.world["app_hosts"]] == [(ENDPOINT, "connected")] * 2

    def test_an_unparseable_db_host_line_is_refused_naming_the_host(self, shared_world, monkeypatch):
        world = shared_world
        snapshots_before = {s["id"] for s in world.describe_world()["db_snapshots"]}
        with env_file_kept(world, "irisx-api-2"):
            env = env_of(world, "irisx-api-2")
            env.write_text(env.read_text().replace(f"DB_HOST={ENDPOINT}", f'DB_HOST="{ENDPOINT}'))

            run = run_in(world, monkeypatch, CONFIRMED)

        assert_refused_before_the_stop(run, snapshots_before)
        assert f"{instance_id_of(world, 'irisx-api-2')}: DB_HOST unknown (" in run.result.cause
        assert "not a plain host name" in run.result.cause
        assert app_on_production(run.result) == [(ENDPOINT, "connected")] * 2

    def test_a_host_where_the_read_command_fails_is_refused_as_unknown(self, shared_world, monkeypatch):
        # Given an app host launched since (it carries the app tag) whose agent cannot run the project's document
        world = shared_world
        snapshots_before = {s["id"] for s in world.describe_world()["db_snapshots"]}
        stray = start_tagged_host(world)
        try:
            run = run_in(world, monkeypatch, CONFIRMED)
        finally:
            boto3.client("ec2").terminate_instances(InstanceIds=[stray])

        assert_refused_before_the_stop(run, snapshots_before)
        assert f"{stray}: DB_HOST unknown (the command Failed: instance is not an emulated API host)" in run.result.cause
        for host in world.app_hosts.hosts:
            assert f"{host.instance_id}: DB_HOST" not in run.result.cause
        assert app_on_production(run.result) == [(ENDPOINT, "connected")] * 2


# ---------------------------------------------------------------------------------------- a failure after the start
# From the start on, the app runs on the copy that holds production's name and takes writes: it is
# stopped before the renames back, so they never split its writes between the two instances.


def test_an_app_never_healthy_on_the_copy_is_stopped_before_renaming_back_and_the_cause_says_its_writes_are_in_the_copy(rehearsal):
    # Given a swap whose app cannot reach the restored copy (say a missing security-group rule)
    world = rehearsal(**FAST, app_blocked_from_restored=True)
    original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)
    app_when_renaming_back: list[str] = []
    answer = world.bridge.answer

    def look_at_the_app_when_renaming_back(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == "RenameBack" and not app_when_renaming_back:
            app_when_renaming_back.extend(world.app_hosts.health_of(h) for h in world.app_hosts.hosts)
        return answer(function_name, body, headers)

    world.bridge.answer = look_at_the_app_when_renaming_back  # type: ignore[method-assign]

    result = world.run("in-place-restore", CONFIRMED)

    # Then health fails by name, the app is stopped on every host before the first rename back, then started on the original
    assert (result.status, result.error) == ("FAILED", "HealthCheckFailed"), result.cause
    states = result.states()
    assert states.index("CheckHealth") < states.index("StopAppAfterStart") < states.index("IsStopAfterStartDone")
    assert states.index("IsStopAfterStartDone") < states.index("RenameBack") < states.index("RestartOnOriginal")
    assert app_when_renaming_back == ["down", "down"], "no host runs the app while the names move back"
    # And production is back, healthy, and the copy is kept with the writes the app took on it, which the cause names
    assert_production_back_and_healthy(world, result, original_id, original_rows)
    (copy,) = [i for i in instance_ids(result.world) if "-inplace-" in i]
    assert "writes it took between the start (" in result.cause and f"are in the copy {copy} only" in result.cause
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#in-place-restore"]
    assert (record["outcome"], record["error"]) == ("FAILED", "HealthCheckFailed") and copy in record["cause"]
    assert not [r for r in result.world["journal"] if r["pk"].startswith("LOCK#")]


class TestAfterTheStart:
    """The stop before the renames back cannot be confirmed: the revert still happens, and the cause says who may have written."""

    @pytest.mark.parametrize(
        ("failing", "unconfirmed"),
        [("StopAppAfterStart", "any API host"), ("CheckStopAfterStart", "every host")],
        ids=["stop-not-sent", "stop-not-confirmed"],
    )
    def test_a_stop_that_cannot_be_confirmed_still_renames_back_and_names_the_hosts_that_may_have_written_to_the_copy(
        self, shared_world, monkeypatch, failing, unconfirmed
    ):
        world = shared_world
        original_id, original_rows = resource_id_of(SOURCE), calls_rows_behind(world, SOURCE)

        run = run_in(world, monkeypatch, CONFIRMED, ["CheckHealth=InjectedFault", f"{failing}=InjectedFault"])

        result = run.result
        assert (result.status, result.error) == ("FAILED", "InjectedFault"), result.cause
        states = result.states()
        assert states.index("CheckHealth") < states.index(failing) < states.index("RenameBack") < states.index("CheckHealthOnOriginal")
        assert_production_back_and_healthy(world, result, original_id, original_rows)
        (copy,) = run.created
        cause = result.cause
        assert "stopping it before renaming back could not be confirmed on" in cause
        assert f"into {failing}" in cause, "the stop's own failure is quoted"
        for host in world.app_hosts.hosts:
            assert host.instance_id in cause.split("could not be confirmed on", 1)[1], f"{unconfirmed}: {host.instance_id} is named"
        assert f"may be in the copy {copy} only" in cause
        assert journal_record(run)["cause"] == cause


def test_when_renaming_back_fails_after_the_start_rollback_failed_also_says_the_copy_holds_the_writes(rehearsal):
    # Given a start that fails its health check, and a rename-back that cannot work
    world = rehearsal(**FAST, inject=["CheckHealth=InjectedFault", "RenameBack=InjectedFault"])

    result = world.run("in-place-restore", CONFIRMED)

    # Then the app was stopped before the rename back, started again anyway, and RollbackFailed says where the writes are
    assert (result.status, result.error) == ("FAILED", "RollbackFailed"), result.cause
    states = result.states()
    assert states.index("StopAppAfterStart") < states.index("RenameBack") < states.index("StartAppAfterFailedRenameBack")
    assert not [h for h in result.world["app_hosts"] if h["health"] == "down"], "the app is never left stopped"
    # the rename-back did not happen, so the copy still holds production's name: it is named as it was created
    created_as = re.search(r"\(created as ([a-z0-9-]+)\) is ", result.cause)
    assert created_as and "-inplace-" in created_as.group(1), result.cause
    assert f"are in the restored copy created as {created_as.group(1)} only" in result.cause
    assert "[original error InjectedFault:" in result.cause
