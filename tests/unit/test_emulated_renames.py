"""The emulated RDS rename: phases, timing, collisions and the endpoint, as RDS does it and moto does not."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restorectl.emulated_renames import FALSE_AVAILABLE_SECONDS, EmulatedRenames
from restorectl.simclock import SimulatedClock

pytestmark = pytest.mark.unit


@dataclass
class EndpointMap:
    """What the renames read and move on EmulatedRds: instance identifier -> local database."""

    instance_db: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    rds: Any
    clock: SimulatedClock
    renames: EmulatedRenames
    endpoints: EndpointMap

    def create(self, identifier: str) -> dict[str, Any]:
        self.rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="postgres",
            MasterUserPassword="not-a-real-password",
            AllocatedStorage=20,
        )
        self.endpoints.instance_db[identifier] = f"db_{identifier.replace('-', '_')}"
        return self.by_name(identifier)

    def by_name(self, identifier: str) -> dict[str, Any]:
        return self.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]

    def by_resource_id(self, resource_id: str) -> dict[str, Any]:
        found = self.rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [resource_id]}])["DBInstances"]
        assert len(found) == 1
        return found[0]

    def rename(self, old: str, new: str, **extra: Any) -> None:
        self.rds.modify_db_instance(DBInstanceIdentifier=old, NewDBInstanceIdentifier=new, ApplyImmediately=True, **extra)

    def error_code(self, call: Any) -> str:
        with pytest.raises(Exception) as caught:
            call()
        return str(caught.value.response["Error"]["Code"])  # type: ignore[attr-defined]


@pytest.fixture
def world() -> Iterator[World]:
    clock = SimulatedClock(datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc))
    endpoints = EndpointMap()
    renames = EmulatedRenames(endpoints, clock, rename_minutes=10)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock_aws())
        stack.enter_context(clock.installed())
        stack.enter_context(renames.installed())
        yield World(boto3.client("rds", region_name="us-east-1"), clock, renames, endpoints)


def test_a_rename_passes_through_renaming_a_false_available_and_rebooting_over_the_rename_minutes(world: World) -> None:
    resource_id = world.create("prod")["DbiResourceId"]

    world.rename("prod", "prod-old")

    # Phase 1: still the old identifier, status renaming, "not found" by either name.
    seen = world.by_resource_id(resource_id)
    assert (seen["DBInstanceIdentifier"], seen["DBInstanceStatus"]) == ("prod", "renaming")
    assert world.error_code(lambda: world.by_name("prod")) == "DBInstanceNotFound"
    assert world.error_code(lambda: world.by_name("prod-old")) == "DBInstanceNotFound"
    world.clock.advance(4 * 60)
    assert world.by_resource_id(resource_id)["DBInstanceStatus"] == "renaming"

    # Phase 2: the new identifier, and an `available` that is not the end (the reboot has not happened).
    world.clock.advance(60 + 1)
    seen = world.by_resource_id(resource_id)
    assert (seen["DBInstanceIdentifier"], seen["DBInstanceStatus"]) == ("prod-old", "available")
    assert "prod-old" not in world.endpoints.instance_db, "the new DNS name must not answer before the rename is done"

    # Phase 3: rebooting under the new name.
    world.clock.advance(FALSE_AVAILABLE_SECONDS)
    assert world.by_name("prod-old")["DBInstanceStatus"] == "rebooting"

    world.clock.advance(5 * 60)
    done = world.by_name("prod-old")
    assert done["DBInstanceStatus"] == "available"
    assert done["DbiResourceId"] == resource_id
    assert done["Endpoint"]["Address"].startswith("prod-old.")
    assert world.renames.completed[0]["from"] == "prod" and world.renames.completed[0]["to"] == "prod-old"


def test_the_database_behind_the_endpoint_leaves_the_old_name_at_once_and_arrives_under_the_new_one_when_done(world: World) -> None:
    world.create("prod")
    database = world.endpoints.instance_db["prod"]

    world.rename("prod", "prod-old")

    assert "prod" not in world.endpoints.instance_db, "the old DNS name is deleted at once"
    world.clock.advance(10 * 60)
    world.by_name("prod-old")
    assert world.endpoints.instance_db["prod-old"] == database


def test_a_name_that_exists_or_that_a_rename_in_flight_will_take_is_refused(world: World) -> None:
    world.create("prod")
    world.create("copy")
    world.create("other")

    assert world.error_code(lambda: world.rename("copy", "prod")) == "DBInstanceAlreadyExists"
    assert world.by_name("prod")["DBInstanceStatus"] == "available", "the existing instance is untouched"

    world.rename("other", "spare")
    assert world.error_code(lambda: world.rename("copy", "spare")) == "DBInstanceAlreadyExists"


def test_the_freed_name_can_be_taken_once_the_first_rename_is_done(world: World) -> None:
    world.create("prod")
    copy_id = world.create("copy")["DbiResourceId"]
    world.rename("prod", "prod-old")
    assert world.error_code(lambda: world.rename("copy", "prod")) == "DBInstanceAlreadyExists", "prod still holds its name in phase 1"

    world.clock.advance(10 * 60)
    world.by_name("prod-old")
    world.rename("copy", "prod")
    world.clock.advance(10 * 60)

    assert world.by_name("prod")["DbiResourceId"] == copy_id
    assert world.endpoints.instance_db["prod"] == "db_copy"


def test_an_instance_being_renamed_cannot_be_modified_or_renamed_again(world: World) -> None:
    world.create("prod")
    world.rename("prod", "prod-old")
    world.clock.advance(6 * 60)  # past the identifier change

    code = world.error_code(lambda: world.rds.modify_db_instance(DBInstanceIdentifier="prod-old", DeletionProtection=True))
    assert code == "InvalidDBInstanceState"
    assert world.error_code(lambda: world.rename("prod-old", "prod-again")) == "InvalidDBInstanceState"


def test_without_apply_immediately_the_name_does_not_change(world: World) -> None:
    world.create("prod")

    world.rds.modify_db_instance(DBInstanceIdentifier="prod", NewDBInstanceIdentifier="prod-old", ApplyImmediately=False)
    world.clock.advance(30 * 60)

    assert world.by_name("prod")["DBInstanceStatus"] == "available"
    assert world.error_code(lambda: world.by_name("prod-old")) == "DBInstanceNotFound"


def test_other_settings_given_with_the_rename_are_applied(world: World) -> None:
    world.create("prod")

    world.rename("prod", "prod-old", DeletionProtection=True)
    world.clock.advance(10 * 60)

    assert world.by_name("prod-old")["DeletionProtection"] is True


def test_every_instance_has_its_own_resource_id_and_keeps_it_through_a_rename(world: World) -> None:
    first, second = world.create("prod")["DbiResourceId"], world.create("copy")["DbiResourceId"]
    assert first != second

    world.rename("prod", "prod-old")

    assert world.by_resource_id(first)["DBInstanceIdentifier"] == "prod"
    assert world.by_resource_id(second)["DBInstanceIdentifier"] == "copy"


def test_an_instance_deleted_while_it_is_being_renamed_stays_deleting_and_never_answers_under_the_new_name() -> None:
    from restorectl.emulated_rds import EmulatedRds

    clock = SimulatedClock(datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc))
    # No database behind any endpoint here, so the PostgreSQL cluster is never reached.
    rds_world = EmulatedRds(None, clock, run_id="t", restore_minutes=1, delete_minutes=15)  # type: ignore[arg-type]
    renames = EmulatedRenames(rds_world, clock, rename_minutes=10)
    with mock_aws(), clock.installed(), rds_world.installed(), renames.installed():
        world = World(boto3.client("rds", region_name="us-east-1"), clock, renames, EndpointMap())
        resource_id = world.create("prod")["DbiResourceId"]
        world.rename("prod", "prod-old")
        clock.advance(360)
        assert world.by_resource_id(resource_id)["DBInstanceIdentifier"] == "prod-old"  # past the identifier change
        world.rds.delete_db_instance(DBInstanceIdentifier="prod-old", SkipFinalSnapshot=True)

        clock.advance(360)  # past the rename's end, before the delete's
        deleting = world.by_resource_id(resource_id)

        assert (deleting["DBInstanceIdentifier"], deleting["DBInstanceStatus"]) == ("prod-old", "deleting")
        assert renames.report()["renames"] == {"completed": [], "pending": []}
        assert "prod-old" not in rds_world.instance_db
        clock.advance(600)  # the delete is done
        assert world.rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [resource_id]}])["DBInstances"] == []


def test_the_database_behind_an_instance_deleted_mid_rename_is_dropped_with_the_rename() -> None:
    from restorectl.emulated_rds import EmulatedRds

    class RecordingCluster:
        def __init__(self) -> None:
            self.dropped: list[str] = []

        def drop_database(self, name: str, **kwargs: object) -> None:
            self.dropped.append(name)

        def drop_databases(self, names: object, **kwargs: object) -> None:
            self.dropped.extend(list(names))  # type: ignore[call-overload]

    cluster = RecordingCluster()
    clock = SimulatedClock(datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc))
    rds_world = EmulatedRds(cluster, clock, run_id="t", restore_minutes=1, delete_minutes=15)  # type: ignore[arg-type]
    renames = EmulatedRenames(rds_world, clock, rename_minutes=10)
    with mock_aws(), clock.installed(), rds_world.installed(), renames.installed():
        world = World(boto3.client("rds", region_name="us-east-1"), clock, renames, EndpointMap())
        resource_id = world.create("prod")["DbiResourceId"]
        rds_world.instance_db["prod"] = "t_prod"  # the local database answering on prod's endpoint
        world.rename("prod", "prod-old")
        clock.advance(360)
        assert world.by_resource_id(resource_id)["DBInstanceIdentifier"] == "prod-old"
        world.rds.delete_db_instance(DBInstanceIdentifier="prod-old", SkipFinalSnapshot=True)

        clock.advance(360)  # past the rename's end, before the delete's
        assert world.by_resource_id(resource_id)["DBInstanceStatus"] == "deleting"

        assert cluster.dropped == ["t_prod"]
        assert "t_prod" not in rds_world.instance_db.values()
