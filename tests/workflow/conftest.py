"""Workflow tests: the real ASL, the real handlers, emulated AWS, a real PostgreSQL."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from restorectl.harness import Rehearsal, RehearsalOptions
from restorectl.lambda_bridge import Injection
from restorectl.localpg import LocalPostgres

SOURCE = "irisx-prod-rds-postgres"


@pytest.fixture
def rehearsal(local_pg: LocalPostgres) -> Iterator[Callable[..., Rehearsal]]:
    """Build an emulated IRISX world; call it with RehearsalOptions fields, `inject=["STATE=ERROR:N"]`."""
    with contextlib.ExitStack() as stack:

        def make(inject: list[str] | None = None, **options: Any) -> Rehearsal:
            injections = [Injection.parse(text) for text in inject or []]
            return stack.enter_context(Rehearsal(local_pg, RehearsalOptions(injections=injections, **options)))

        yield make


def instance_ids(world: dict[str, Any]) -> list[str]:
    return sorted(i["id"] for i in world["db_instances"])


def endpoint_of(instance_id: str) -> str:
    address: str = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["Endpoint"]["Address"]
    return address


def tags_of(instance_id: str) -> dict[str, str]:
    rds = boto3.client("rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBInstanceArn"]
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}


def state_output(result: Any, state: str) -> dict[str, Any]:
    """What `state` passed on, from the execution history (its last exit)."""
    exits = [
        e["stateExitedEventDetails"]
        for e in result.history
        if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
    ]
    assert exits, f"{state} never exited"
    return dict(json.loads(exits[-1]["output"]))


def terminate_host_before(world: Rehearsal, host_name: str, state: str) -> str:
    """Terminate the API host `host_name` just before `state`'s function runs, as an autoscaling
    group replacing it would; returns its instance id."""
    gone = next(h for h in world.app_hosts.hosts if h.name == host_name)
    answer = world.bridge.answer

    def terminate_first(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == state:
            boto3.client("ec2").terminate_instances(InstanceIds=[gone.instance_id])
        return answer(function_name, body, headers)

    world.bridge.answer = terminate_first  # type: ignore[method-assign]
    return str(gone.instance_id)


def start_tagged_host(world: Rehearsal, *, stopped: bool = False) -> str:
    """Launch a bare EC2 instance carrying the app-host tag, as an autoscaling group would (stopped:
    a warm pool's); it is no emulated API host, so SSM commands to it fail. Returns its id."""
    ec2 = boto3.client("ec2")
    (host,) = ec2.run_instances(
        ImageId="ami-1e749f67",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": world.app_hosts.tag_key, "Value": world.app_hosts.tag_value}]}],
    )["Instances"]
    if stopped:
        ec2.stop_instances(InstanceIds=[host["InstanceId"]])
    return str(host["InstanceId"])


def start_tagged_host_before(world: Rehearsal, state: str, *, stopped: bool = False) -> list[str]:
    """Start one tagged app host (`start_tagged_host`) just before `state`'s function first runs;
    the list returned holds its id once it has."""
    started: list[str] = []
    answer = world.bridge.answer

    def start_first(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == state and not started:
            started.append(start_tagged_host(world, stopped=stopped))
        return answer(function_name, body, headers)

    world.bridge.answer = start_first  # type: ignore[method-assign]
    return started
