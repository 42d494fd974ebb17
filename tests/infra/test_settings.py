"""The runbook settings in cdk.json are checked at synth time, and a bad one is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings
from stacks.workflow import placeholders_in

from .conftest import cdk_json_context

pytestmark = pytest.mark.infra


def test_cdk_json_holds_the_irisx_defaults_with_the_runbooks_placeholders() -> None:
    settings = StackSettings.from_context(cdk_json_context())
    assert settings.source_instance == "irisx-prod-rds-postgres"
    assert settings.validation_tables == ("tenants", "users", "calls", "api_keys")
    assert settings.account == "123456789012"
    # the seed's example ids synthesize, and are reported as still to be set
    assert settings.placeholders() == ["vpc_id", "subnet_ids", "security_group_ids", "db_subnet_group_name"]


def test_app_reads_cdk_json_when_run_without_the_cdk_cli() -> None:
    import app

    assert app.runbook_context(cdk.App()) == cdk_json_context()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("source_instance", "irisx--prod", "RDS instance identifier"),
        ("validation_tables", [], "non-empty list"),
        ("validation_tables", ["users; drop table x"], "SQL identifier"),
        ("statement_timeout_ms", 0, "positive whole number"),
        ("statement_timeout_ms", "15000", "positive whole number"),
        ("restore_poll_max_attempts", True, "positive whole number"),
        ("subnet_ids", ["net-1"], "subnet ids"),
        ("security_group_ids", "sg-xxxxxx", "non-empty list"),
        ("account", "1234", "12-digit"),
        ("db_secret_arn", "irisx/prod/rds-postgres", "secret ARN"),
        ("restore_poll_initial_seconds", 600, "restore_poll_max_seconds"),
        ("availability_zones", ["us-west-2a", "us-west-2b"], "not in region"),
        ("integrity_budget_seconds", 421, "10-minute function"),
        ("count_budget_seconds", 106, "424 s of counting"),
    ],
)
def test_a_bad_setting_is_rejected_by_name(key: str, value: Any, expected: str) -> None:
    context = {**cdk_json_context(), key: value}
    with pytest.raises(ValueError, match=key) as error:
        StackSettings.from_context(context)
    assert expected in str(error.value)


def test_a_missing_or_unknown_setting_is_named() -> None:
    context = cdk_json_context()
    del context["region"]
    with pytest.raises(ValueError, match="'region' is missing"):
        StackSettings.from_context(context)
    with pytest.raises(ValueError, match="vpc_idd"):
        StackSettings.from_context({**cdk_json_context(), "vpc_idd": "vpc-1"})


def test_synth_without_a_built_layer_says_how_to_build_it(tmp_path: Path) -> None:
    settings = StackSettings.from_context(cdk_json_context())
    with pytest.raises(ValueError, match="make layer"):
        RestoreRunbookStack(cdk.App(), "NoLayer", settings=settings, layer_asset_path=tmp_path / "missing")


def test_an_asl_step_without_a_handler_is_refused(tmp_path: Path) -> None:
    # Given an ASL referencing a function the manifest does not know
    (tmp_path / "layer" / "python").mkdir(parents=True)
    machines = tmp_path / "statemachines"
    machines.mkdir()
    (machines / "functions.json").write_text('{"StartRestoreFunctionArn": "restore_runbook.restore.handlers.start_restore.handler"}')
    asl = '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${MysteryFunctionArn}", "End": true}}}'
    (machines / "restore.asl.json").write_text(asl)
    assert placeholders_in(asl) == {"MysteryFunctionArn"}
    settings = StackSettings.from_context(cdk_json_context())
    # Then building the stack names the placeholder
    with pytest.raises(ValueError, match="MysteryFunctionArn"):
        RestoreRunbookStack(cdk.App(), "Unknown", settings=settings, layer_asset_path=tmp_path / "layer", statemachines_path=machines)


def test_every_lambda_setting_can_be_set_in_cdk_json_and_arrives_as_set() -> None:
    from restore_runbook.settings import RunbookSettings, SnapshotSettings, declared

    # Given cdk.json with a different value for settings the functions could not be given before
    context = {
        **cdk_json_context(),
        "db_sslmode": "verify-full",
        "db_sslrootcert": "/opt/rds/global-bundle.pem",
        "snapshot_poll_initial_seconds": 10,
        "snapshot_poll_max_seconds": 90,
    }
    settings = StackSettings.from_context(context)
    # When the functions read the environment the stack writes
    env = settings.lambda_environment()
    runbook, snapshot = RunbookSettings.from_env(env), SnapshotSettings.from_env(env)
    # Then every declared setting arrives with the value synth parsed
    for name, _, _, _ in declared(RunbookSettings):
        assert getattr(runbook, name) == getattr(settings, name), name
    assert snapshot == settings.snapshot
    assert (runbook.db_sslmode, runbook.db_sslrootcert) == ("verify-full", "/opt/rds/global-bundle.pem")
    assert (snapshot.poll_initial_seconds, snapshot.poll_max_seconds) == (10, 90)
    # And every one of them but the document names (derived from name_prefix) is a cdk.json key
    for cls in (RunbookSettings, SnapshotSettings):
        for _name, key, spec, _ in declared(cls):
            assert spec.derived or key in cdk_json_context(), key
    assert runbook.set_db_host_document == f"{settings.name_prefix}-set-db-host"


def test_a_setting_with_a_default_may_be_left_out_of_cdk_json() -> None:
    context = cdk_json_context()
    for key in ("db_sslmode", "db_sslrootcert", "snapshot_poll_initial_seconds", "snapshot_poll_max_seconds"):
        del context[key]
    settings = StackSettings.from_context(context)
    assert (settings.db_sslmode, settings.db_sslrootcert) == ("require", None)
    assert (settings.snapshot.poll_initial_seconds, settings.snapshot.poll_max_seconds) == (30, 300)
    assert "DB_SSLROOTCERT" not in settings.lambda_environment()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("db_sslmode", "sometimes", "libpq sslmode"),
        ("snapshot_poll_initial_seconds", 600, "snapshot_poll_max_seconds"),
        ("app_health_url", "ftp://host/health", "http(s) URL"),
    ],
)
def test_the_newly_settable_settings_are_checked_at_synth_by_name(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ValueError, match=key) as error:
        StackSettings.from_context({**cdk_json_context(), key: value})
    assert expected in str(error.value)
