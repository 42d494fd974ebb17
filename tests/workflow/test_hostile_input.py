"""Hostile input to each workflow ends FAILED with InvalidInput, and nothing in the world changed:
no instance or snapshot created, no SSM command sent, every API host still serving on the source.

These are the values that used to get through (a `$`-anchored match accepts a final newline):
a rollback of `"irisx-prod-rds-postgres\\n"` stopped and restarted every host, and a rollback
back to `"<endpoint>\\n"` stopped the app and left it down when SSM refused the value.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_snapshot_workflow import manual_snapshots

pytestmark = pytest.mark.workflow


def ssm_commands_sent() -> list[dict[str, Any]]:
    import boto3

    return boto3.client("ssm").list_commands()["Commands"]


def assert_hosts_untouched(world: Any, result: Any, hosts_before: list[dict[str, Any]]) -> None:
    assert world.app_hosts.commands_run == []  # nothing ran on any host, in this execution or the one before
    assert result.world["app_hosts"] == hosts_before
    assert [h["health"] for h in result.world["app_hosts"]] == ["connected"] * len(hosts_before)


@pytest.mark.parametrize(
    "execution_input",
    [
        {"mode": "snapshot", "source_instance": f"{SOURCE}\n"},
        {"mode": "snapshot", "target_instance": "irisx-copy\n", "cutover": True},
        {"mode": "point-in-time", "restore_time": "0001-01-01T00:00:00+01:00", "cutover": True},
        {"mode": "snapshot", "cutover": None},
    ],
    ids=["source-newline", "target-newline", "overflowing-time", "null-flag"],
)
def test_a_hostile_restore_input_fails_before_anything_is_created_or_any_host_touched(rehearsal, execution_input):
    # Given the IRISX world, its hosts on the source
    world = rehearsal(calls_rows=300, restore_minutes=3)
    hosts_before = world.describe_world()["app_hosts"]

    # When a restore is started with one hostile field
    result = world.run("restore", execution_input)

    # Then it fails at the input check with a named error, and nothing was created or sent
    assert result.status == "FAILED"
    assert result.error == ("RestoreTimeOutOfRange" if "restore_time" in execution_input else "InvalidInput")
    assert "nothing was created" in result.cause
    assert instance_ids(result.world) == [SOURCE]
    assert "StartRestore" not in result.states()
    assert ssm_commands_sent() == []
    assert_hosts_untouched(world, result, hosts_before)


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("restored_instance", f"{SOURCE}\n", "begins or ends with whitespace"),
        ("restored_instance", SOURCE.upper(), "is the source instance"),
        ("original_endpoint", "ENDPOINT\n", "begins or ends with whitespace"),
        ("original_endpoint", "ENDPOINT;pm2 stop all", "not a valid host name"),
    ],
    ids=["source-newline", "source-upper-case", "endpoint-newline", "endpoint-shell"],
)
def test_a_hostile_rollback_input_fails_before_any_host_is_stopped(rehearsal, field, value, why):
    # Given a restored copy of the source, which a rollback may delete, and the hosts on the source
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = world.run("restore", {"mode": "snapshot"}).output["target_instance"]
    before = instance_ids(world.describe_world())
    hosts_before = world.describe_world()["app_hosts"]
    commands_before = ssm_commands_sent()
    source_endpoint = hosts_before[0]["db_host"]
    execution_input = {"restored_instance": target, field: value.replace("ENDPOINT", source_endpoint)}

    # When the rollback is started with one hostile field
    result = world.run("rollback", execution_input)

    # Then it fails at the input check: no host stopped or repointed, no instance deleted
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert why in result.cause
    assert "nothing was touched" in result.cause.lower()
    assert "StopApp" not in result.states()
    assert instance_ids(result.world) == before
    assert ssm_commands_sent() == commands_before
    assert_hosts_untouched(world, result, hosts_before)


@pytest.mark.parametrize(
    "execution_input",
    [
        {"reason": "manual", "source_instance": f"{SOURCE}\n"},
        {"reason": "manual", "label": "before v2\n$(reboot)"},
        {"reason": "manual", "requested_by": None},
    ],
    ids=["source-newline", "label-control", "null-requested-by"],
)
def test_a_hostile_snapshot_input_fails_before_a_snapshot_is_requested(rehearsal, execution_input):
    world = rehearsal(calls_rows=300)
    before = manual_snapshots(world.describe_world())
    hosts_before = world.describe_world()["app_hosts"]

    result = world.run("snapshot", execution_input)

    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert "nothing was created" in result.cause
    assert manual_snapshots(result.world) == before
    assert "StartSnapshot" not in result.states()
    assert instance_ids(result.world) == [SOURCE]
    assert_hosts_untouched(world, result, hosts_before)
