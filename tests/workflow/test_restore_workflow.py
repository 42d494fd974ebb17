"""The `restore` workflow, executed end to end: statemachines/restore.asl.json with its real handlers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.workflow.conftest import SOURCE, instance_ids

pytestmark = pytest.mark.workflow

START = datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc)  # the rehearsal's simulated "now" at the start


def newest(pg, dbname: str, table: str, at_or_before: datetime | None = None) -> datetime | None:
    conn = pg.connect(dbname)
    try:
        with conn.cursor() as cur:
            if at_or_before is None:
                cur.execute(f"SELECT max(created_at) FROM {table}")  # noqa: S608 - fixed table names
            else:
                cur.execute(f"SELECT max(created_at) FROM {table} WHERE created_at <= %s", (at_or_before,))  # noqa: S608
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_point_in_time_restore_to_latest_creates_a_validated_copy_with_the_sources_settings(rehearsal, local_pg):
    # Given IRISX production with a week of backups
    world = rehearsal()

    # When an engineer restores to the latest restorable time
    result = world.run("restore", {"mode": "point-in-time", "requested_by": "on-call"})

    # Then the execution succeeds and reports a validated copy
    assert result.status == "SUCCEEDED", result.cause
    output = result.output
    target = output["target_instance"]
    assert target.startswith(f"{SOURCE}-restored-")
    assert output["endpoint"]["address"].startswith(target + ".")
    assert output["validation"]["passed"] is True
    assert {c["name"] for c in output["validation"]["checks"]} >= {"connect", "row_counts", "recency:calls", "recency:users"}
    # LatestRestorableTime lags "now" by five minutes, as on RDS
    assert output["restore_point"] == "2025-11-02T11:55:00Z"
    assert output["timings"]["restore_seconds"] >= 20 * 60

    # And the copy really holds production's data up to the restore point, nothing after it
    restored_db = world.rds.instance_db[target]
    source_db = world.rds.instance_db[SOURCE]
    point = datetime(2025, 11, 2, 11, 55, tzinfo=timezone.utc)
    assert newest(local_pg, restored_db, "calls") == newest(local_pg, source_db, "calls", point)
    assert newest(local_pg, source_db, "calls") > point  # the source does have later rows

    # And the copy is the source's twin in network and parameters, tagged as this tool's
    instances = {i["id"]: i for i in result.world["db_instances"]}
    assert instance_ids(result.world) == sorted([SOURCE, target])
    assert instances[target]["status"] == "available"
    tags = instances[target]["tags"]
    assert tags["irisx-restore:managed-by"] == "restore-runbook"
    assert tags["irisx-restore:workflow"] == "restore"
    assert tags["irisx-restore:execution"].startswith("arn:aws:states:")
    assert tags["app"] == "irisx"  # the source's own tags are copied
    import boto3

    rds = boto3.client("rds")
    copy = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]
    source = rds.describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"][0]
    assert copy["DBSubnetGroup"]["DBSubnetGroupName"] == source["DBSubnetGroup"]["DBSubnetGroupName"]
    assert [g["VpcSecurityGroupId"] for g in copy["VpcSecurityGroups"]] == [g["VpcSecurityGroupId"] for g in source["VpcSecurityGroups"]]
    assert copy["DBParameterGroups"][0]["DBParameterGroupName"] == "irisx-postgres15"
    assert copy["DBInstanceClass"] == source["DBInstanceClass"]
    assert copy["DeletionProtection"] is False
    assert source["DeletionProtection"] is True

    # And the workflow waited in a loop rather than in a Lambda
    states = result.states()
    assert states[:5] == ["RecordRequest", "RecordStart", "CheckRestoreInput", "TakeLock", "StartRestore"]
    assert states.count("DescribeRestore") >= 2
    assert states[-6:] == [
        "ValidateRestore",
        "ShouldCutOver",
        "RestoreSucceeded",
        "WasCutOver",
        "LeftBehindWithoutCutover",
        "RecordSuccess",
    ]


def test_point_in_time_restore_to_a_given_time_restores_exactly_that_point(rehearsal, local_pg):
    world = rehearsal()
    restore_time = START - timedelta(days=2, hours=5, minutes=17)

    result = world.run(
        "restore", {"mode": "point-in-time", "restore_time": "2025-10-31T06:43:00Z", "target_instance": "irisx-restore-check"}
    )

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["target_instance"] == "irisx-restore-check"
    assert result.output["restore_point"] == "2025-10-31T06:43:00Z"
    restored_db = world.rds.instance_db["irisx-restore-check"]
    source_db = world.rds.instance_db[SOURCE]
    for table in ("calls", "users", "tenants", "api_keys"):
        assert newest(local_pg, restored_db, table) == newest(local_pg, source_db, table, restore_time)


def test_snapshot_restore_of_latest_uses_the_newest_available_snapshot(rehearsal, local_pg):
    world = rehearsal()

    result = world.run("restore", {"mode": "snapshot"})

    assert result.status == "SUCCEEDED", result.cause
    # the newest is yesterday's automated backup at 03:07 (the manual one is two days old)
    assert result.output["restore_point"] == "2025-11-01T03:07:00Z"
    assert result.output["validation"]["passed"] is True
    restored_db = world.rds.instance_db[result.output["target_instance"]]
    assert newest(local_pg, restored_db, "calls") <= datetime(2025, 11, 1, 3, 7, tzinfo=timezone.utc)


def test_snapshot_restore_by_id_restores_that_snapshot(rehearsal):
    world = rehearsal()
    manual = next(s["id"] for s in world.describe_world()["db_snapshots"] if s["type"] == "manual")

    result = world.run("restore", {"mode": "snapshot", "snapshot_id": manual, "target_instance": "irisx-from-manual"})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["mode"] == "snapshot"
    assert result.output["restore_point"] == "2025-10-31T09:00:00Z"
    assert "irisx-from-manual" in instance_ids(result.world)


BAD_INPUTS = [
    ({"mode": "point-in-time", "restore_tme": "latest"}, "InvalidInput", "unknown input field(s) restore_tme"),
    ({"mode": "yesterday"}, "InvalidInput", "mode must be 'point-in-time' or 'snapshot'"),
    ({}, "InvalidInput", "mode must be"),
    ("snapshot", "InvalidInput", "must be a JSON object"),
    ({"mode": "snapshot", "keep_on_failure": "yes"}, "InvalidInput", "keep_on_failure must be true or false"),
    ({"mode": "point-in-time", "restore_time": "2025-11-02 noon"}, "InvalidInput", "not an ISO-8601 UTC timestamp"),
    ({"mode": "point-in-time", "restore_time": "2025-11-02T10:00:00"}, "InvalidInput", "not an ISO-8601 UTC timestamp"),
    ({"mode": "point-in-time", "restore_time": 1730548800}, "InvalidInput", "restore_time must be a non-empty string"),
    (
        {"mode": "point-in-time", "restore_time": "2025-10-20T00:00:00Z"},
        "RestoreTimeOutOfRange",
        "restore time 2025-10-20T00:00:00Z is before the earliest restorable time 2025-10-26T12:00:00Z",
    ),
    (
        {"mode": "point-in-time", "restore_time": "2025-11-02T11:58:00Z"},
        "RestoreTimeOutOfRange",
        "after the latest restorable time 2025-11-02T11:55:00Z",
    ),
    ({"mode": "point-in-time", "snapshot_id": "latest"}, "InvalidInput", "snapshot_id only applies to mode 'snapshot'"),
    ({"mode": "snapshot", "restore_time": "latest"}, "InvalidInput", "restore_time only applies to mode 'point-in-time'"),
    ({"mode": "snapshot", "snapshot_id": "irisx-does-not-exist"}, "SnapshotNotFound", "snapshot 'irisx-does-not-exist' does not exist"),
    ({"mode": "snapshot", "snapshot_id": "bad id!"}, "InvalidInput", "not a valid RDS snapshot identifier"),
    # A source the IAM fence does not name (production_instances) is refused before RDS is asked; a listed one that does
    # not exist is SourceNotFound (tests/workflow/test_production_fence_workflows.py).
    ({"mode": "snapshot", "source_instance": "irisx-staging"}, "InvalidInput", "'irisx-staging' is not one of the production"),
    ({"mode": "snapshot", "target_instance": SOURCE}, "TargetAlreadyExists", "is the source itself"),
    ({"mode": "snapshot", "target_instance": "Restored--copy"}, "InvalidInput", "is not a valid RDS identifier"),
    ({"mode": "snapshot", "target_instance": "x" * 64}, "InvalidInput", "is not a valid RDS identifier"),
]


@pytest.mark.parametrize(("execution_input", "error", "cause"), BAD_INPUTS, ids=[c[2][:40] for c in BAD_INPUTS])
def test_bad_input_fails_with_a_named_error_before_anything_is_created(rehearsal, execution_input, error, cause):
    world = rehearsal()

    result = world.run("restore", execution_input)

    assert result.status == "FAILED"
    assert result.error == error
    assert cause in result.cause
    assert "nothing was created" in result.cause
    assert instance_ids(result.world) == [SOURCE]
    assert "StartRestore" not in result.states()
    assert not [i for i in result.invocations if i["function"].endswith("StartRestore")]


def test_a_target_that_already_exists_is_refused_and_left_untouched(rehearsal):
    import boto3

    world = rehearsal()
    boto3.client("rds").create_db_instance(
        DBInstanceIdentifier="irisx-analytics",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="postgres",
        MasterUserPassword="not-used-1",
        AllocatedStorage=20,
    )

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-analytics"})

    assert (result.status, result.error) == ("FAILED", "TargetAlreadyExists")
    assert "already exists" in result.cause
    statuses = {i["id"]: i["status"] for i in result.world["db_instances"]}
    assert statuses == {SOURCE: "available", "irisx-analytics": "available"}


def test_a_snapshot_that_is_not_available_or_not_the_sources_is_refused(rehearsal):
    import boto3
    from moto.rds import models as rds_models

    world = rehearsal()
    rds = boto3.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="irisx-staging",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="postgres",
        MasterUserPassword="not-used-1",
        AllocatedStorage=20,
    )
    rds.create_db_snapshot(DBInstanceIdentifier="irisx-staging", DBSnapshotIdentifier="staging-snap")
    rds.create_db_snapshot(DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier="irisx-half-done")
    rds_models.rds_backends["123456789012"]["us-east-1"].database_snapshots["irisx-half-done"].status = "creating"

    foreign = world.run("restore", {"mode": "snapshot", "snapshot_id": "staging-snap"})
    unfinished = world.run("restore", {"mode": "snapshot", "snapshot_id": "irisx-half-done"})

    assert (foreign.error, unfinished.error) == ("SnapshotNotFound", "SnapshotNotFound")
    assert "was taken of 'irisx-staging', not of the source" in foreign.cause
    assert "is 'creating', not 'available'" in unfinished.cause
    assert instance_ids(unfinished.world) == sorted([SOURCE, "irisx-staging"])


def test_a_restore_that_rds_fails_ends_in_restore_failed_and_is_cleaned_up(rehearsal):
    world = rehearsal(restore_outcome="incompatible-parameters")

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-broken"})

    assert (result.status, result.error) == ("FAILED", "RestoreFailed")
    assert "'incompatible-parameters'" in result.cause
    assert "deleted irisx-broken" in result.cause
    assert instance_ids(result.world) == [SOURCE]


def test_a_restore_that_never_finishes_times_out_and_is_cleaned_up(rehearsal):
    world = rehearsal(restore_minutes=24 * 60, settings_overrides={"RESTORE_POLL_MAX_ATTEMPTS": "6"})

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-slow"})

    assert (result.status, result.error) == ("FAILED", "RestoreTimedOut")
    assert "still 'creating' after 6 checks" in result.cause
    assert result.states().count("DescribeRestore") == 6
    assert instance_ids(result.world) == [SOURCE]


def test_point_in_time_restore_cleans_up_when_validation_fails_and_keeps_the_original_error(rehearsal):
    # Given settings that expect a table the database does not have
    world = rehearsal(settings_overrides={"VALIDATION_TABLES": '["tenants", "users", "calls", "api_keys", "recordings"]'})

    result = world.run("restore", {"mode": "point-in-time", "target_instance": "irisx-invalid"})

    assert (result.status, result.error) == ("FAILED", "ValidationFailed")
    assert "recordings" in result.cause
    assert "deleted irisx-invalid" in result.cause
    assert instance_ids(result.world) == [SOURCE]
    assert result.states()[-4:] == ["ValidateRestore", "CleanUpAfterFailure", "RecordFailure", "RestoreFailedWithOriginalError"]


def test_a_cleanup_retried_after_its_delete_was_taken_says_the_copy_was_deleted_not_that_none_was_made(rehearsal):
    # Given a restore that fails validation, and a cleanup whose answer is lost once after it deleted the copy
    world = rehearsal(
        settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'},
        inject=["CleanUpAfterFailure=Lambda.SdkClientException:1@after"],
    )

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-deleted-once"})

    # Then the retry finds no copy, and says it was created and deleted: "nothing was created" would be false
    assert (result.status, result.error) == ("FAILED", "ValidationFailed")
    assert [i["error"] for i in result.invocations if i["state"] == "CleanUpAfterFailure"] == ["Lambda.SdkClientException", None]
    assert result.cause.endswith(
        "[cleanup: irisx-deleted-once no longer exists: this execution created it, and an earlier attempt of this cleanup "
        "(or someone else) deleted it]"
    )
    assert instance_ids(result.world) == [SOURCE]


def test_keep_on_failure_keeps_the_copy_for_inspection(rehearsal):
    world = rehearsal(settings_overrides={"VALIDATION_TABLES": '["calls", "recordings"]'})

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-inspect", "keep_on_failure": True})

    assert (result.status, result.error) == ("FAILED", "ValidationFailed")
    assert "kept irisx-inspect for inspection" in result.cause
    assert instance_ids(result.world) == sorted([SOURCE, "irisx-inspect"])


def test_a_throttled_step_is_retried_and_the_restore_still_succeeds_once(rehearsal):
    world = rehearsal(inject=["StartRestore=Lambda.TooManyRequestsException:2", "DescribeRestore=Lambda.ServiceException:1"])

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-retried"})

    assert result.status == "SUCCEEDED", result.cause
    start_calls = [i for i in result.invocations if i["state"] == "StartRestore"]
    assert [i["error"] for i in start_calls] == ["Lambda.TooManyRequestsException", "Lambda.TooManyRequestsException", None]
    assert instance_ids(result.world) == sorted([SOURCE, "irisx-retried"])


def test_a_failing_cleanup_still_reports_the_original_error_and_says_what_may_be_left(rehearsal):
    world = rehearsal(restore_outcome="failed", inject=["CleanUpAfterFailure=ConnectTimeoutError"])

    result = world.run("restore", {"mode": "snapshot", "target_instance": "irisx-left-behind"})

    assert (result.status, result.error) == ("FAILED", "RestoreFailed")
    assert "cleanup FAILED" in result.cause
    assert "must be deleted by hand" in result.cause


def test_a_retried_start_finds_its_own_restore_instead_of_failing(rehearsal):
    from restore_runbook.restore.instance import start_restore
    from restore_runbook.restore.request import plan_restore
    from restore_runbook.settings import settings

    world = rehearsal()
    assert world  # the emulated world is up; call the step's domain code as a retry would
    plan = plan_restore({"mode": "snapshot", "target_instance": "irisx-twice"}, settings())
    first = start_restore(plan, "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-restore:one", settings())
    again = start_restore(plan, "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-restore:one", settings())

    assert (first["already_started"], again["already_started"]) == (False, True)
    assert instance_ids(world.describe_world()) == sorted([SOURCE, "irisx-twice"])
    from restore_runbook.common.errors import TargetAlreadyExists

    with pytest.raises(TargetAlreadyExists):
        start_restore(plan, "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-restore:other", settings())
