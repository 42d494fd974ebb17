"""A cleanup after a start step that failed after RDS accepted its create: it looks for what the plan
named before it says what was created, so the cause describes the world as it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from restore_runbook.common import aws, rds
from restore_runbook.restore.instance import clean_up_failed_restore
from restore_runbook.settings import RunbookSettings
from restore_runbook.snapshot.snapshots import clean_up_failed_snapshot

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"
ME = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-snapshot:me"
SOMEONE_ELSE = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-snapshot:other"
SNAPSHOT = "irisx-pre-migration-20251102-120000"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws.client.cache_clear()
    with mock_aws():
        import boto3

        rds_client = boto3.client("rds")
        rds_client.create_db_instance(
            DBInstanceIdentifier=SOURCE,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="postgres",
            MasterUserPassword="not-a-secret",
        )
        yield rds_client
    aws.client.cache_clear()


def settings() -> RunbookSettings:
    return RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE})


def snapshot_by(client: Any, snapshot_id: str, execution: str) -> None:
    client.create_db_snapshot(
        DBInstanceIdentifier=SOURCE,
        DBSnapshotIdentifier=snapshot_id,
        Tags=[{"Key": "irisx-restore:managed-by", "Value": "restore-runbook"}, {"Key": rds.TAG_EXECUTION, "Value": execution}],
    )


def test_a_snapshot_the_start_step_never_reported_is_found_by_its_planned_name(client):
    snapshot_by(client, SNAPSHOT, ME)

    said = clean_up_failed_snapshot(None, ME, settings(), plan={"snapshot_id": SNAPSHOT})

    # moto makes a snapshot available at once; the words say it exists and came from this execution
    assert said == f"kept snapshot {SNAPSHOT} (created by this execution although its start step did not report it): it is available"


def test_a_planned_snapshot_that_does_not_exist_is_said_not_to_exist(client):
    assert clean_up_failed_snapshot(None, ME, settings(), plan={"snapshot_id": SNAPSHOT}) == (
        f"nothing was created (no snapshot named {SNAPSHOT} exists)"
    )
    assert clean_up_failed_snapshot(None, ME, settings(), plan=None) == "nothing was created"


def test_a_missing_snapshot_the_start_reported_or_a_retry_cannot_find_is_not_said_never_taken(client):
    # The start step reported it, so it existed: gone now means deleted since
    assert clean_up_failed_snapshot({"snapshot_id": SNAPSHOT}, ME, settings(), plan={"snapshot_id": SNAPSHOT}) == (
        f"{SNAPSHOT} no longer exists: this execution took it, and an earlier attempt of this cleanup (or someone else) deleted it"
    )
    # A retry after a start that did not answer cannot tell "never taken" from "deleted by my first attempt"
    said = clean_up_failed_snapshot(None, ME, settings(), plan={"snapshot_id": SNAPSHOT}, retried=True)
    assert said.startswith(f"no snapshot named {SNAPSHOT} exists, so nothing is left to delete; an earlier attempt")
    assert "nothing was created" not in said


def test_a_snapshot_of_that_name_taken_by_another_execution_is_left_alone(client):
    snapshot_by(client, SNAPSHOT, SOMEONE_ELSE)

    said = clean_up_failed_snapshot(None, ME, settings(), plan={"snapshot_id": SNAPSHOT})

    assert said == f"left {SNAPSHOT} untouched: this execution did not create it"
    assert [s["DBSnapshotIdentifier"] for s in client.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]] == [SNAPSHOT]


def test_an_in_place_cleanup_says_whether_its_final_snapshot_exists(client):
    final = f"{SOURCE}-pre-restore-20251102-120000"
    plan = {"target_instance": f"{SOURCE}-inplace-20251102-120000", "source_instance": SOURCE, "final_snapshot": final}

    assert (
        clean_up_failed_restore(plan, ME, settings())
        == f"no restored copy was created; no final snapshot was taken ({final} does not exist)"
    )
    snapshot_by(client, final, ME)
    assert clean_up_failed_restore(plan, ME, settings()) == (
        f"no restored copy was created; kept the final snapshot {final} of production (available): production as it was before this restore"
    )
