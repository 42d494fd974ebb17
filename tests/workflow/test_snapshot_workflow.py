"""The `snapshot` workflow, executed end to end: statemachines/snapshot.asl.json with its real handlers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.workflow.conftest import SOURCE

pytestmark = pytest.mark.workflow

START = datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc)
MANAGED = {"irisx-restore:managed-by": "restore-runbook"}


def manual_snapshots(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in world["db_snapshots"] if s["type"] == "manual"}


def outputs_of(result: Any, state: str) -> list[dict[str, Any]]:
    """The outputs of every successful run of Task `state`, in order, from the execution history."""
    outputs, current = [], None
    for event in result.history:
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif current == state and event["type"] in ("LambdaFunctionSucceeded", "TaskSucceeded"):
            details = next(v for k, v in event.items() if k.endswith("EventDetails"))
            outputs.append(json.loads(details["output"]))
    return outputs


def journal_of(result: Any, workflow: str = "snapshot") -> list[dict[str, Any]]:
    return [r for r in result.world["journal"] if r.get("workflow") == workflow and r["pk"].startswith("WORKFLOW#")]


def test_a_pre_migration_snapshot_is_named_tagged_waited_for_and_journaled(rehearsal):
    # Given IRISX production, and a snapshot that takes 8 simulated minutes
    world = rehearsal(snapshot_minutes=8)

    # When a pipeline asks for a pre-migration snapshot
    result = world.run(
        "snapshot",
        {
            "reason": "pre-migration",
            "label": "add calls.region",
            "requested_by": "deploy-bot",
            "pipeline_run": "https://github.com/irisx/api/actions/runs/42",
        },
    )

    # Then it succeeds with the runbook's naming, the size and how long it took
    assert result.status == "SUCCEEDED", result.cause
    output = result.output
    assert output["snapshot_id"] == "irisx-pre-migration-20251102-120000"
    assert output["size_gib"] == 100
    assert output["seconds"] >= 8 * 60
    assert output["source_instance"] == SOURCE

    # And the workflow waited in a loop, seeing PercentProgress grow, not in a Lambda
    progress = [o["percent_progress"] for o in outputs_of(result, "DescribeSnapshot")]
    assert len(progress) >= 3
    assert progress == sorted(progress) and progress[-1] == 100 and 0 < progress[0] < 100

    # And the snapshot is available and says why, who and which run asked for it
    snapshot = manual_snapshots(result.world)[output["snapshot_id"]]
    assert snapshot["status"] == "available"
    tags = snapshot["tags"]
    assert tags["irisx-restore:managed-by"] == "restore-runbook"
    assert tags["irisx-restore:workflow"] == "snapshot"
    assert tags["irisx-restore:reason"] == "pre-migration"
    assert tags["irisx-restore:label"] == "add calls.region"
    assert tags["irisx-restore:requested-by"] == "deploy-bot"
    assert tags["irisx-restore:pipeline-run"] == "https://github.com/irisx/api/actions/runs/42"
    assert tags["irisx-restore:execution"].startswith("arn:aws:states:us-east-1:123456789012:execution:irisx-restore-snapshot:")

    # And the journal holds the run; a snapshot's success pages nobody
    (record,) = journal_of(result)
    assert record["outcome"] == "SUCCEEDED"
    assert (record["requested_by"], record["pipeline_run"]) == ("deploy-bot", "https://github.com/irisx/api/actions/runs/42")
    assert record["input"]["reason"] == "pre-migration"
    assert record["result"]["snapshot_id"] == output["snapshot_id"]
    assert record["duration_seconds"] >= 8 * 60
    assert record["phases"] == [{"phase": "snapshot", "start": "2025-11-02T12:00:00Z", "end": output["available_at"]}]
    assert result.world["notifications"] == []


BAD_INPUTS = [
    ({"reason": "pre-migration", "reson": "x"}, "InvalidInput", "unknown input field(s) reson"),
    ({"reason": "yolo"}, "InvalidInput", "reason must be one of pre-migration, bulk-operation"),
    ({}, "InvalidInput", "reason must be one of"),
    ("pre-migration", "InvalidInput", "must be a JSON object"),
    ({"reason": "upgrade", "label": "v2; DROP TABLE"}, "InvalidInput", "has characters an RDS tag cannot hold"),
    ({"reason": "upgrade", "requested_by": 7}, "InvalidInput", "requested_by must be a non-empty string"),
    ({"reason": "upgrade", "pipeline_run": "r" * 300}, "InvalidInput", "pipeline_run is longer than 256 characters"),
    ({"reason": "manual", "source_instance": "Bad--name"}, "InvalidInput", "is not a valid RDS identifier"),
    # Not a listed production instance; a listed one that does not exist is SourceNotFound (test_production_fence_workflows.py).
    ({"reason": "manual", "source_instance": "irisx-staging"}, "InvalidInput", "'irisx-staging' is not one of the production"),
]


@pytest.mark.parametrize(("execution_input", "error", "cause"), BAD_INPUTS, ids=[c[2][:40] for c in BAD_INPUTS])
def test_bad_snapshot_input_fails_with_a_named_error_before_anything_is_created(rehearsal, execution_input, error, cause):
    world = rehearsal()
    before = manual_snapshots(world.describe_world())

    result = world.run("snapshot", execution_input)

    assert (result.status, result.error) == ("FAILED", error)
    assert cause in result.cause
    assert "nothing was created" in result.cause
    assert manual_snapshots(result.world) == before
    assert "StartSnapshot" not in result.states()
    (record,) = journal_of(result)
    assert (record["outcome"], record["error"]) == ("FAILED", error)


def test_a_stopped_source_is_refused_before_a_snapshot_is_requested(rehearsal):
    from moto.rds import models as rds_models

    world = rehearsal()
    rds_models.rds_backends["123456789012"]["us-east-1"].databases[SOURCE].status = "stopped"

    result = world.run("snapshot", {"reason": "config-change"})

    assert (result.status, result.error) == ("FAILED", "SourceNotAvailable")
    assert "is 'stopped'" in result.cause
    assert "StartSnapshot" not in result.states()


def test_a_snapshot_that_rds_fails_ends_in_snapshot_failed_and_the_failed_snapshot_is_deleted(rehearsal):
    world = rehearsal(snapshot_minutes=6, snapshot_outcome="failed")

    result = world.run("snapshot", {"reason": "bulk-operation", "requested_by": "ops"})

    assert (result.status, result.error) == ("FAILED", "SnapshotFailed")
    assert "into status 'failed'" in result.cause
    assert "deleted the failed snapshot irisx-bulk-operation-20251102-120000" in result.cause
    assert "irisx-bulk-operation-20251102-120000" not in manual_snapshots(result.world)
    assert result.states()[-3:] == ["CleanUpAfterFailure", "RecordFailure", "SnapshotFailedWithOriginalError"]
    (notification,) = result.world["notifications"]
    assert notification["subject"] == "[irisx-restore] snapshot FAILED: SnapshotFailed"
    assert "https://console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:" in notification["message"]
    assert "Left behind: deleted the failed snapshot" in notification["message"]


def test_a_snapshot_that_never_finishes_times_out_and_is_left_to_finish(rehearsal):
    world = rehearsal(snapshot_minutes=24 * 60, settings_overrides={"SNAPSHOT_POLL_MAX_ATTEMPTS": "3"})

    result = world.run("snapshot", {"reason": "upgrade"})

    assert (result.status, result.error) == ("FAILED", "SnapshotTimedOut")
    assert "after 3 checks" in result.cause
    assert result.states().count("DescribeSnapshot") == 3
    assert manual_snapshots(result.world)["irisx-upgrade-20251102-120000"]["status"] == "creating"
    assert "it may still become available" in result.cause


def _existing_snapshot(snapshot_id: str, age: timedelta, tags: dict[str, str]) -> None:
    """A snapshot as it would stand after an earlier run, `age` old and available."""
    import boto3
    from moto.rds import models as rds_models

    boto3.client("rds").create_db_snapshot(
        DBInstanceIdentifier=SOURCE, DBSnapshotIdentifier=snapshot_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    snapshot = rds_models.rds_backends["123456789012"]["us-east-1"].database_snapshots[snapshot_id]
    snapshot.status, snapshot.created = "available", (START - age).replace(tzinfo=None)


def own(reason: str) -> dict[str, str]:
    return {**MANAGED, "irisx-restore:workflow": "snapshot", "irisx-restore:reason": reason}


def test_retention_keeps_the_last_n_of_this_reason_and_deletes_only_this_tools_snapshots(rehearsal):
    # Given keep_last 2 for pre-migration, three older pre-migration snapshots of this tool, and
    # snapshots retention must never touch: another reason, someone else's, look-alikes, automated ones
    world = rehearsal(settings_overrides={"SNAPSHOT_KEEP_LAST": '{"pre-migration": 2}'})
    world.rds.pending_snapshots.clear()
    _existing_snapshot("irisx-pre-migration-20251101-100000", timedelta(days=1, hours=2), own("pre-migration"))
    _existing_snapshot("irisx-pre-migration-20251030-100000", timedelta(days=3, hours=2), own("pre-migration"))
    _existing_snapshot("irisx-pre-migration-20251025-100000", timedelta(days=8, hours=2), own("pre-migration"))
    _existing_snapshot("irisx-upgrade-20251020-100000", timedelta(days=13), own("upgrade"))
    _existing_snapshot("irisx-pre-migration-20251001-100000", timedelta(days=32), {"irisx-restore:reason": "pre-migration"})
    _existing_snapshot("dba-pre-migration-manual", timedelta(days=40), {**MANAGED, "irisx-restore:reason": "pre-migration"})
    world.rds.pending_snapshots.clear()
    before = world.describe_world()["db_snapshots"]

    # When a new pre-migration snapshot is taken
    result = world.run("snapshot", {"reason": "pre-migration"})

    # Then the new one and the newest older one of this tool and reason are kept; the two older ones go
    assert result.status == "SUCCEEDED", result.cause
    retention = result.output["retention"]
    assert retention["kept"] == ["irisx-pre-migration-20251102-120000", "irisx-pre-migration-20251101-100000"]
    assert sorted(retention["deleted"]) == ["irisx-pre-migration-20251025-100000", "irisx-pre-migration-20251030-100000"]
    after = {s["id"] for s in result.world["db_snapshots"]}
    expected = {s["id"] for s in before} - set(retention["deleted"]) | {"irisx-pre-migration-20251102-120000"}
    assert after == expected
    # and every automated snapshot, the untagged manual one and the look-alikes are still there
    assert {s["id"] for s in before if s["type"] == "automated"} <= after
    assert {"irisx-upgrade-20251020-100000", "irisx-pre-migration-20251001-100000", "dba-pre-migration-manual"} <= after


def test_retention_refuses_to_delete_a_snapshot_it_did_not_take(rehearsal):
    from restore_runbook.common.errors import UnsafeOperation
    from restore_runbook.settings import settings
    from restore_runbook.snapshot.snapshots import delete_own_snapshot

    world = rehearsal()
    _existing_snapshot("someone-elses", timedelta(days=1), {"irisx-restore:reason": "pre-migration"})
    automated = next(s["id"] for s in world.describe_world()["db_snapshots"] if s["type"] == "automated")

    for snapshot_id in ("someone-elses", automated):
        with pytest.raises(UnsafeOperation):
            delete_own_snapshot(snapshot_id, "pre-migration", None, settings())
    assert {"someone-elses", automated} <= {s["id"] for s in world.describe_world()["db_snapshots"]}


def test_a_failed_snapshot_whose_cleanup_answer_was_lost_is_said_deleted_not_never_taken(rehearsal):
    # Given a snapshot RDS fails, and a cleanup that deletes it and loses its answer once
    world = rehearsal(snapshot_minutes=6, snapshot_outcome="failed", inject=["CleanUpAfterFailure=Lambda.SdkClientException:1@after"])

    result = world.run("snapshot", {"reason": "bulk-operation", "requested_by": "ops"})

    # Then the retry finds it gone and says this execution took it and it was deleted since
    assert (result.status, result.error) == ("FAILED", "SnapshotFailed")
    assert [i["error"] for i in result.invocations if i["state"] == "CleanUpAfterFailure"] == ["Lambda.SdkClientException", None]
    assert result.cause.endswith(
        "[cleanup: irisx-bulk-operation-20251102-120000 no longer exists: this execution took it, and an earlier attempt of "
        "this cleanup (or someone else) deleted it]"
    ), result.cause
    assert "irisx-bulk-operation-20251102-120000" not in manual_snapshots(result.world)
    (notification,) = result.world["notifications"]
    assert "Left behind: irisx-bulk-operation-20251102-120000 no longer exists" in notification["message"]
