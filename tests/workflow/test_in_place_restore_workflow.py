"""`in-place-restore` end to end: the real ASL and handlers, emulated RDS renames, real SSM scripts and health servers.

Production keeps serving until a validated copy is ready; the swap is two renames followed by
resource id; every failure from the app's stop on renames back and starts the app on the original
before the execution fails with the original error, or ends in a RollbackFailed that says where
everything is.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from restorectl.harness import Rehearsal, RehearsalOptions
from restorectl.lambda_bridge import Injection
from tests.workflow.conftest import SOURCE, instance_ids

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


def test_a_host_terminated_while_the_app_was_stopped_does_not_keep_the_others_stopped(rehearsal):
    # Given an API host that is terminated during the downtime (say its autoscaling group replaced it)
    world = rehearsal(**FAST)
    gone = next(h for h in world.app_hosts.hosts if h.name == "irisx-api-2")
    answer = world.bridge.answer

    def terminate_before_the_start(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == "StartApp":
            boto3.client("ec2").terminate_instances(InstanceIds=[gone.instance_id])
        return answer(function_name, body, headers)

    world.bridge.answer = terminate_before_the_start  # type: ignore[method-assign]

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
    assert progress["hosts"] == [h.instance_id for h in world.app_hosts.hosts if h is not gone]
    assert progress["hosts_gone"] == [gone.instance_id]
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
