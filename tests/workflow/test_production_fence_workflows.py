"""The production fence in the workflows, end to end: a cut-over copy is production, so rolling it back
needs its name typed as `confirm`; and no workflow works from a source the IAM fence does not name."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.workflow.conftest import SOURCE, instance_ids, state_output
from tests.workflow.test_cutover_workflow import endpoint_of, tags_of

pytestmark = pytest.mark.workflow

MARKER = "irisx-restore:role"


def hosts_of(result: Any) -> list[tuple[str, str]]:
    return [(h["db_host"], h["health"]) for h in result.world["app_hosts"]]


def a_cut_over_copy(world: Any) -> str:
    restored = world.run("restore", {"mode": "snapshot", "cutover": True})
    assert restored.status == "SUCCEEDED", restored.cause
    return str(restored.output["target_instance"])


def deletion_protection(instance_id: str) -> bool:
    return bool(boto3.client("rds").describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DeletionProtection"])


@pytest.mark.parametrize(
    ("confirm", "said"),
    [(None, "no confirm was given"), ("irisx-prod-rds-postgres", "confirm was 'irisx-prod-rds-postgres'"), ("UPPER", "confirm was")],
    ids=["no-confirm", "the-source-named", "the-copy-in-upper-case"],
)
def test_rolling_back_a_copy_production_runs_on_without_its_name_as_confirm_changes_nothing(rehearsal, confirm, said):
    # Given production cut over to a restored copy (marked production, deletion protection on)
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = a_cut_over_copy(world)
    copy_host = endpoint_of(target)
    commands_before = len(world.app_hosts.commands_run)
    request: dict[str, Any] = {"restored_instance": target}
    if confirm is not None:
        request["confirm"] = target.upper() if confirm == "UPPER" else confirm

    # When the rollback is started without the copy's exact name as confirm
    result = world.run("rollback", request)

    # Then it fails with ConfirmationRequired saying why, before the app is stopped
    assert (result.status, result.error) == ("FAILED", "ConfirmationRequired")
    assert f"{target} is marked {MARKER}=production" in result.cause
    assert f'"confirm": "{target}"' in result.cause and said in result.cause and "Nothing was touched" in result.cause
    assert "StopApp" not in result.states() and "TakeLock" not in result.states()
    assert result.states()[-1] == "RollbackFailed"
    # And nothing changed: no command sent, the app still on the copy and healthy, the copy marked and protected
    assert len(world.app_hosts.commands_run) == commands_before
    assert hosts_of(result) == [(copy_host, "connected")] * 2
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert tags_of(target)[MARKER] == "production" and deletion_protection(target)


def test_rolling_back_a_copy_production_runs_on_with_its_name_as_confirm_unmarks_and_deletes_it_last(rehearsal):
    # Given production cut over to a restored copy
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = a_cut_over_copy(world)

    # When the rollback is started with the copy's name typed as confirm
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then every host is back on the original and healthy, and only then was the copy deleted, a final snapshot kept
    assert result.status == "SUCCEEDED", result.cause
    states = result.states()
    assert states.index("StopApp") < states.index("CheckHealthOnOriginal") < states.index("DeleteRestoredInstance")
    assert hosts_of(result) == [(endpoint_of(SOURCE), "connected")] * 2
    assert instance_ids(result.world) == [SOURCE]
    assert result.output["deleted"].startswith(f"deleted {target} (final snapshot {target}-final-")
    # And the delete step removed the production marker, then the protection, before deleting (its own record says so)
    assert [s["id"] for s in result.world["db_snapshots"] if s["id"].startswith(f"{target}-final-")]
    deleted = state_output(result, "DeleteRestoredInstance")["deleted"]
    assert deleted["production_marker"] == (
        f"removed the marker {MARKER}=production from {target} (every host healthy on {endpoint_of(SOURCE)})"
    )
    assert deleted["deletion_protection"].startswith(f"turned off deletion protection on {target}")


def test_a_confirm_naming_another_copy_is_refused_even_for_a_copy_production_never_ran_on(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]

    result = world.run("rollback", {"restored_instance": target, "confirm": "irisx-some-other-copy"})

    assert (result.status, result.error) == ("FAILED", "ConfirmationRequired")
    assert "a confirmation, when given, must name the restored instance" in result.cause
    assert world.app_hosts.commands_run == []
    assert target in instance_ids(result.world)


# -- any source is fenced: a source the IAM fence does not name is refused by every workflow -----------------

UNLISTED = "irisx-staging"


@pytest.mark.parametrize(
    ("workflow", "execution_input"),
    [
        ("restore", {"mode": "snapshot", "source_instance": UNLISTED}),
        ("restore", {"mode": "point-in-time", "source_instance": "IRISX-Staging", "cutover": True}),
        ("drill", {"source_instance": UNLISTED}),
        ("drill", {"source_instance": UNLISTED, "scheduled_time": "2025-11-04T10:00:00Z"}),
        ("snapshot", {"reason": "manual", "source_instance": UNLISTED}),
    ],
    ids=["restore", "restore-cutover-upper-case", "drill", "scheduled-drill", "snapshot"],
)
def test_a_source_that_is_not_a_listed_production_instance_is_refused_by_name_creating_nothing(rehearsal, workflow, execution_input):
    # Given an instance that exists but is not listed as production (so no IAM deny names it)
    world = rehearsal(calls_rows=300, restore_minutes=3)
    boto3.client("rds").create_db_instance(
        DBInstanceIdentifier=UNLISTED,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="postgres",
        MasterUserPassword="not-used-by-the-rehearsal",
    )
    before = world.describe_world()

    result = world.run(workflow, execution_input)

    # Then the workflow fails with InvalidInput naming it and the listed instances, and nothing was created
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert f"source_instance '{UNLISTED}' is not one of the production instances this deployment fences ({SOURCE})" in result.cause
    assert "production_instances" in result.cause
    assert instance_ids(result.world) == instance_ids(before)
    assert [s["id"] for s in result.world["db_snapshots"]] == [s["id"] for s in before["db_snapshots"]]
    assert world.app_hosts.commands_run == []
    assert "StartRestore" not in result.states() and "StartSnapshot" not in result.states()


def test_a_listed_production_instance_other_than_the_configured_source_may_be_restored(rehearsal):
    # Given a second production instance listed in production_instances: the fence names it, so it may be a source
    world = rehearsal(
        calls_rows=300, restore_minutes=3, settings_overrides={"PRODUCTION_INSTANCES": json.dumps([SOURCE, "irisx-prod-replica-b"])}
    )

    # When a restore, a snapshot or a drill names it but it does not exist, the refusal is that it does not exist, not the fence
    for workflow, execution_input in (
        ("restore", {"mode": "snapshot", "source_instance": "irisx-prod-replica-b"}),
        ("snapshot", {"reason": "manual", "source_instance": "irisx-prod-replica-b"}),
        ("drill", {"source_instance": "irisx-prod-replica-b"}),
    ):
        result = world.run(workflow, execution_input)
        assert (result.status, result.error) == ("FAILED", "SourceNotFound"), (workflow, result.cause)
        assert "source DB instance 'irisx-prod-replica-b' does not exist" in result.cause

    # And the configured source stays listed and restorable
    ok = world.run("restore", {"mode": "snapshot"})
    assert ok.status == "SUCCEEDED", ok.cause


def test_a_rollback_of_a_copy_made_from_an_unlisted_instance_is_refused_before_the_app_is_touched(rehearsal):
    # Given a managed copy whose source tag names an instance the fence does not list
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]
    rds = boto3.client("rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier=target)["DBInstances"][0]["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "irisx-restore:source", "Value": UNLISTED}])

    result = world.run("rollback", {"restored_instance": target})

    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert f"the rollback's original: source_instance '{UNLISTED}' is not one of the production instances" in result.cause
    assert world.app_hosts.commands_run == []
    assert target in instance_ids(result.world)
