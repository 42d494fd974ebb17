"""The in-place restore's own logic: the confirmation, names, settings to re-apply, the rename wait and the fences."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restore_runbook.common import aws, rds
from restore_runbook.common.errors import ConfirmationRequired, InvalidInput, RenameFailed, RenameTimedOut, UnsafeOperation
from restore_runbook.inplace import rename
from restore_runbook.inplace.production_settings import settings_to_apply
from restore_runbook.inplace.request import check_confirmation, replaced_name, temporary_name
from restore_runbook.settings import RDS_IDENTIFIER, RunbookSettings
from restorectl.emulated_renames import FALSE_AVAILABLE_SECONDS, EmulatedRenames
from restorectl.simclock import SimulatedClock

pytestmark = pytest.mark.unit

PRODUCTION = "irisx-prod-rds-postgres"
TAG_KEY, TAG_VALUE = "irisx-restore:managed-by", "restore-runbook"


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env({"SOURCE_INSTANCE": PRODUCTION, **overrides})


class TestConfirmation:
    @pytest.mark.parametrize("confirm", [None, "", "irisx-prod", PRODUCTION.upper(), f" {PRODUCTION}"])
    def test_anything_but_the_exact_production_name_is_confirmation_required(self, confirm: Any) -> None:
        request = {"mode": "snapshot"} if confirm is None else {"mode": "snapshot", "confirm": confirm}
        with pytest.raises(ConfirmationRequired) as caught:
            check_confirmation(request, PRODUCTION)
        assert f'"confirm": "{PRODUCTION}"' in str(caught.value) and "Nothing was done" in str(caught.value)

    def test_unknown_fields_are_refused_before_the_confirmation_is_read(self) -> None:
        with pytest.raises(InvalidInput, match="target_instance"):
            check_confirmation({"confirm": PRODUCTION, "mode": "snapshot", "target_instance": "x"}, PRODUCTION)

    def test_the_exact_name_is_accepted_with_a_reason(self) -> None:
        assert check_confirmation({"confirm": PRODUCTION, "mode": "snapshot", "reason": " bad migration "}, PRODUCTION) == {
            "reason": "bad migration"
        }


def test_generated_names_are_valid_identifiers_even_for_a_long_production_name() -> None:
    for production in (PRODUCTION, "a" * 63):
        for name in (temporary_name(production), replaced_name(production, settings())):
            assert len(name) <= 63 and RDS_IDENTIFIER.match(name), name
    assert "-replaced-" in replaced_name(PRODUCTION, settings())


def test_a_replaced_suffix_format_that_does_not_change_with_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="REPLACED_SUFFIX_FORMAT"):
        settings(REPLACED_SUFFIX_FORMAT="-old")


class TestSettingsToApply:
    OLD: dict[str, Any] = {  # noqa: RUF012 - read only
        "PerformanceInsightsEnabled": True,
        "PerformanceInsightsRetentionPeriod": 731,
        "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/pi",
        "MonitoringInterval": 15,
        "MonitoringRoleArn": "arn:aws:iam::123456789012:role/rds-monitoring",
        "EnabledCloudwatchLogsExports": ["postgresql", "upgrade"],
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-04:00",
        "PreferredMaintenanceWindow": "sun:05:00-sun:06:00",
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "IAMDatabaseAuthenticationEnabled": True,
        "DeletionProtection": True,
    }

    def test_what_a_restore_cannot_set_is_copied_from_the_old_production(self) -> None:
        new = {
            "MonitoringInterval": 0,
            "EnabledCloudwatchLogsExports": ["upgrade"],
            "BackupRetentionPeriod": 1,
            "CACertificateIdentifier": "rds-ca-2019",
        }

        changes = settings_to_apply(self.OLD, new)

        assert changes == {
            "DeletionProtection": True,
            "EnablePerformanceInsights": True,
            "PerformanceInsightsRetentionPeriod": 731,
            "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/pi",
            "MonitoringInterval": 15,
            "MonitoringRoleArn": "arn:aws:iam::123456789012:role/rds-monitoring",
            "CloudwatchLogsExportConfiguration": {"EnableLogTypes": ["postgresql"], "DisableLogTypes": []},
            "BackupRetentionPeriod": 14,
            "PreferredBackupWindow": "03:00-04:00",
            "PreferredMaintenanceWindow": "sun:05:00-sun:06:00",
            "EnableIAMDatabaseAuthentication": True,
            "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        }

    def test_a_ca_certificate_already_equal_is_not_sent_again_since_changing_it_can_reboot(self) -> None:
        changes = settings_to_apply(self.OLD, {**self.OLD, "PerformanceInsightsEnabled": False})
        assert "CACertificateIdentifier" not in changes
        assert changes["DeletionProtection"] is True and changes["EnablePerformanceInsights"] is True


# ---------------------------------------------------------------------------------------- with emulated RDS


@pytest.fixture
def world() -> Iterator[tuple[Any, SimulatedClock]]:
    clock = SimulatedClock(datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc))

    class Endpoints:
        instance_db: dict[str, str] = {}  # noqa: RUF012 - one per test

    renames = EmulatedRenames(Endpoints(), clock, rename_minutes=10)
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock_aws())
        stack.enter_context(clock.installed())
        stack.enter_context(renames.installed())
        aws.client.cache_clear()
        stack.callback(aws.client.cache_clear)
        yield boto3.client("rds", region_name="us-east-1"), clock


def create(client: Any, identifier: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    client.create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )
    return client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def test_the_rename_wait_is_not_fooled_by_the_available_read_before_the_reboot(world: tuple[Any, SimulatedClock]) -> None:
    client, clock = world
    instance = create(client, PRODUCTION)
    rename.rename(instance, "irisx-prod-old", why="test")
    progress = rename.new_wait(instance, "irisx-prod-old", "production-away", settings())

    # The read in the short `available` between the identifier change and the reboot counts once, not as done.
    clock.advance(5 * 60 + 1)
    progress = rename.check_rename(progress, settings())
    assert (progress["state"], progress["status"], progress["stable_reads"]) == ("pending", "available", 1)
    clock.advance(FALSE_AVAILABLE_SECONDS)
    progress = rename.check_rename(progress, settings())
    assert (progress["status"], progress["stable_reads"]) == ("rebooting", 0)

    clock.advance(5 * 60)
    states = []
    for _ in range(3):
        progress = rename.check_rename(progress, settings())
        states.append(progress["state"])
        clock.advance(20)
    assert states == ["pending", "pending", "done"]
    assert progress["endpoint"]["address"].startswith("irisx-prod-old.")


def test_a_rename_that_never_settles_times_out_with_where_the_instance_is(world: tuple[Any, SimulatedClock]) -> None:
    client, _ = world
    instance = create(client, PRODUCTION)
    rename.rename(instance, "irisx-prod-old", why="test")
    progress = rename.new_wait(instance, "irisx-prod-old", "production-away", settings(RENAME_POLL_MAX_ATTEMPTS="2"))

    progress = rename.check_rename(progress, settings(RENAME_POLL_MAX_ATTEMPTS="2"))
    with pytest.raises(RenameTimedOut, match=r"irisx-prod-rds-postgres \(renaming\)"):
        rename.check_rename(progress, settings(RENAME_POLL_MAX_ATTEMPTS="2"))


def test_renaming_onto_a_name_that_exists_is_rename_failed_and_changes_nothing(world: tuple[Any, SimulatedClock]) -> None:
    client, _ = world
    create(client, PRODUCTION)
    copy = create(client, "irisx-copy")

    with pytest.raises(RenameFailed, match="DBInstanceAlreadyExists"):
        rename.rename(copy, PRODUCTION, why="test")
    assert client.describe_db_instances(DBInstanceIdentifier="irisx-copy")["DBInstances"][0]["DBInstanceStatus"] == "available"


@pytest.mark.parametrize("role", sorted(rds.PROTECTED_ROLES))
def test_the_delete_fence_refuses_an_instance_marked_production_or_replaced_production(
    world: tuple[Any, SimulatedClock], role: str
) -> None:
    client, _ = world
    create(client, "irisx-copy", {TAG_KEY: TAG_VALUE, rds.TAG_EXECUTION: "exec-1", rds.TAG_ROLE: role})

    with pytest.raises(UnsafeOperation, match=f"{rds.TAG_ROLE}={role}"):
        rds.delete_managed_instance("irisx-copy", source=PRODUCTION, tag_key=TAG_KEY, tag_value=TAG_VALUE, execution_id="exec-1")
    assert client.describe_db_instances(DBInstanceIdentifier="irisx-copy")["DBInstances"]


def test_a_copy_marked_as_a_failed_copy_is_deletable_again(world: tuple[Any, SimulatedClock]) -> None:
    client, _ = world
    create(client, "irisx-copy", {TAG_KEY: TAG_VALUE, rds.TAG_EXECUTION: "exec-1", rds.TAG_ROLE: "failed-copy"})

    deletion = rds.delete_managed_instance("irisx-copy", source=PRODUCTION, tag_key=TAG_KEY, tag_value=TAG_VALUE, execution_id="exec-1")

    assert deletion.outcome.startswith("deleted irisx-copy")


FINAL = "irisx-copy-final-20251102-120000"
LOOK = "check `aws rds describe-db-snapshots --db-instance-identifier irisx-copy` for one under another name"


@pytest.mark.parametrize(
    ("copy", "snapshot", "words", "kept"),
    [
        ("deleting", "available", f"irisx-copy is already being deleted; its final snapshot {FINAL} (available) keeps what it held", FINAL),
        (
            "deleting",
            "creating",
            f"irisx-copy is already being deleted; its final snapshot {FINAL} is being taken (creating)",
            FINAL,
        ),
        (
            "deleting",
            "failed",
            f"irisx-copy is already being deleted; its final snapshot {FINAL} is failed and does NOT keep what it held: "
            "look at the copy's retained automated backups",
            None,
        ),
        (
            "deleting",
            "copying",
            f"irisx-copy is already being deleted; its final snapshot {FINAL} is copying, so it may not keep what it held: "
            "look at it before anything else",
            None,
        ),
        (
            "deleting",
            None,
            f"irisx-copy is already being deleted, and no final snapshot {FINAL} is listed (RDS lists it once the deletion takes it; "
            f"otherwise the copy is being deleted without it, or with one under another name): {LOOK}",
            None,
        ),
        ("gone", "available", f"irisx-copy does not exist; its final snapshot {FINAL} (available) keeps what it held", FINAL),
        (
            "gone",
            None,
            f"irisx-copy does not exist, and no snapshot named {FINAL} does either (whoever deleted it kept none under this name): {LOOK}",
            None,
        ),
    ],
    ids=[
        "deleting-snapshot-available",
        "deleting-snapshot-creating",
        "deleting-snapshot-failed",
        "deleting-snapshot-copying",
        "deleting-no-snapshot-listed",
        "gone-snapshot-available",
        "gone-no-snapshot",
    ],
)
def test_a_delete_run_again_after_rds_took_it_says_only_what_rds_lists_of_the_final_snapshot(
    world: tuple[Any, SimulatedClock], copy: str, snapshot: str | None, words: str, kept: str | None
) -> None:
    # Given a copy RDS is deleting or has deleted (moto deletes at once; RDS takes minutes), with or without its final snapshot
    from moto.rds.models import rds_backends

    client, _ = world
    backend = rds_backends["123456789012"]["us-east-1"]
    create(client, "irisx-copy", {TAG_KEY: TAG_VALUE})
    if snapshot:
        client.create_db_snapshot(DBInstanceIdentifier="irisx-copy", DBSnapshotIdentifier=FINAL)
        backend.database_snapshots[FINAL].status = snapshot
    if copy == "deleting":
        backend.databases["irisx-copy"].status = "deleting"
    else:
        del backend.databases["irisx-copy"]

    # When the delete runs again with the same final snapshot name
    deletion = rds.delete_managed_instance(
        "irisx-copy", source=PRODUCTION, tag_key=TAG_KEY, tag_value=TAG_VALUE, execution_id=None, final_snapshot=FINAL
    )

    # Then nothing more is sent, and the words say where the copy's data is, no more than RDS lists
    assert deletion == rds.Deletion(words, kept)
    if copy == "deleting":
        assert client.describe_db_instances(DBInstanceIdentifier="irisx-copy")["DBInstances"][0]["DBInstanceStatus"] == "deleting"


@pytest.mark.parametrize("step", ["production-away", "copy-to-production"])
def test_a_retried_rename_that_rds_took_but_has_not_started_is_not_sent_twice(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    # Given a first rename call RDS accepted: the instance still reads available, the new name pending
    replaced = f"{PRODUCTION}-replaced-20251102-120000"
    temporary = f"{PRODUCTION}-inplace-20251102-120000"
    plan = {
        "production_instance": PRODUCTION,
        "replaced_instance": replaced,
        "temporary_instance": temporary,
        "production_resource_id": "db-PRODUCTION",
    }
    current, new_name = (PRODUCTION, replaced) if step == "production-away" else (temporary, PRODUCTION)
    pending = {
        "DBInstanceIdentifier": current,
        "DbiResourceId": "db-PRODUCTION" if step == "production-away" else "db-COPY",
        "DBInstanceStatus": "available",
        "PendingModifiedValues": {"DBInstanceIdentifier": new_name},
    }
    monkeypatch.setattr(rename, "by_resource_id", lambda resource_id: pending)
    monkeypatch.setattr(rename, "find_copy", lambda execution_id, settings: pending)
    monkeypatch.setattr(rename, "rename", lambda *a, **k: pytest.fail("a second rename was sent"))
    monkeypatch.setattr(rename, "tag", lambda *a, **k: pytest.fail("the instance was re-tagged"))

    # When the step is retried
    if step == "production-away":
        progress = rename.rename_production_away(plan, "exec-1", settings(), stopped_hosts=["i-1"], ec2_stopped_hosts=[])
    else:
        progress = rename.rename_copy_to_production(plan, "exec-1", settings())

    # Then it carries on waiting for the rename RDS already has
    assert progress["already_started"] is True
    assert (progress["from_name"], progress["expected_name"]) == (current, new_name)
