"""Pure logic of cutover and rollback: input fields, script output parsing, error explanations, settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restore_runbook.common.errors import CutoverFailed, InvalidInput, RollbackFailed
from restore_runbook.hosts import commands, cutover, explain, health, ssm
from restore_runbook.restore.request import check_shape
from restore_runbook.rollback.procedure import plan_rollback
from restore_runbook.settings import RunbookSettings
from stacks.settings import StackSettings

pytestmark = pytest.mark.unit

# A second production instance is listed, so a copy made from it may be rolled back (the fence names it).
SETTINGS = RunbookSettings.from_env(
    {"SOURCE_INSTANCE": "irisx-prod-rds-postgres", "PRODUCTION_INSTANCES": json.dumps(["irisx-prod-rds-postgres", "irisx-other-prod"])}
)


def test_cutover_defaults_to_false_and_must_be_a_boolean():
    assert check_shape({"mode": "snapshot"})["cutover"] is False
    assert check_shape({"mode": "snapshot", "cutover": True})["cutover"] is True
    with pytest.raises(InvalidInput, match="cutover must be true or false"):
        check_shape({"mode": "snapshot", "cutover": "yes"})


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ("irisx", "JSON object"),
        ({}, "restored_instance must be"),
        ({"restored_instance": "x", "force": True}, "unknown input field"),
        ({"restored_instance": "bad--name"}, "restored_instance must be"),
        ({"restored_instance": "irisx-prod-rds-postgres"}, "is the source instance"),
        ({"restored_instance": "copy", "stop_app_first": "no"}, "stop_app_first must be"),
    ],
)
def test_rollback_input_is_refused_before_anything_is_touched(request_: Any, message: str):
    with pytest.raises(InvalidInput, match=message):
        plan_rollback(request_, SETTINGS)


def _world_with_copy(monkeypatch: pytest.MonkeyPatch, made_from: str | None) -> list[str]:
    """A managed copy (tagged with its source when `made_from` is given), one API host; returns the endpoints asked for."""
    from restore_runbook.common import rds

    tags = [{"Key": SETTINGS.management_tag_key, "Value": SETTINGS.management_tag_value}]
    if made_from is not None:
        tags.append({"Key": rds.TAG_SOURCE, "Value": made_from})
    copy = {"DBInstanceIdentifier": "irisx-copy", "Endpoint": {"Address": "irisx-copy.example"}, "TagList": tags}
    asked: list[str] = []
    monkeypatch.setattr(rds, "find_instance", lambda identifier: copy if identifier == "irisx-copy" else None)
    monkeypatch.setattr(rds, "all_instances", lambda: iter([copy]))
    monkeypatch.setattr(cutover, "source_endpoint", lambda source: asked.append(source) or f"{source}.example")
    monkeypatch.setattr(ssm, "find_hosts", lambda settings: ["i-1"])
    monkeypatch.setattr(ssm, "find_stopped_hosts", lambda settings: [])
    return asked


@pytest.mark.parametrize(
    ("made_from", "expected"), [("irisx-other-prod", "irisx-other-prod"), (None, "irisx-prod-rds-postgres")], ids=["tag", "settings"]
)
def test_the_rollback_source_is_the_one_the_copy_was_made_from_else_the_configured_one(monkeypatch, made_from, expected):
    asked = _world_with_copy(monkeypatch, made_from)

    plan = plan_rollback({"restored_instance": "irisx-copy", "requested_by": "ana"}, SETTINGS)

    # the lock (TakeLock reads plan.source_instance and plan.requested_by) and the default endpoint follow the source
    assert (plan["source_instance"], plan["requested_by"]) == (expected, "ana")
    assert (asked, plan["original_endpoint"]) == ([expected], f"{expected}.example")


def test_a_rollback_naming_another_source_than_the_copys_tag_is_refused(monkeypatch):
    asked = _world_with_copy(monkeypatch, "irisx-other-prod")

    with pytest.raises(InvalidInput, match=r"was restored from 'irisx-other-prod'.*Nothing was touched"):
        plan_rollback({"restored_instance": "irisx-copy", "source_instance": "irisx-prod-rds-postgres"}, SETTINGS)
    assert asked == []
    # naming the same source is fine
    plan = plan_rollback({"restored_instance": "irisx-copy", "source_instance": "irisx-other-prod"}, SETTINGS)
    assert plan["source_instance"] == "irisx-other-prod"


def test_script_output_is_read_as_key_value_lines_the_last_one_winning():
    out = "previous_db_host=old.host\nbackup=/x/.env.bak.1\n[PM2] restarting\ndb_host=new.host\ndb_host=newer.host\n"
    assert ssm.parse_output(out) == {"previous_db_host": "old.host", "backup": "/x/.env.bak.1", "db_host": "newer.host"}
    assert ssm.parse_output("previous_db_host=\n") == {"previous_db_host": ""}


def test_each_phase_has_its_error_and_an_unknown_phase_is_a_broken_definition():
    assert commands.phase_error("cutover") is CutoverFailed
    assert commands.phase_error("rollback") is RollbackFailed
    with pytest.raises(InvalidInput):
        commands.phase_error("deploy")


def test_a_failed_rollback_is_explained_with_the_original_error_and_the_copy_kept():
    lambda_cause = json.dumps({"errorMessage": "the rollback command failed on i-2; where the hosts stand: i-1: Success, DB_HOST=prod"})
    outcome = explain.explain_rollback_failure(
        {"Error": "HealthCheckFailed", "Cause": json.dumps({"errorMessage": "not healthy on the restored database"})},
        {"Error": "RollbackFailed", "Cause": lambda_cause},
        {"target_instance": "irisx-copy"},
    )
    assert outcome["error"] == "RollbackFailed"
    assert outcome["cause"].startswith("rollback failed: the rollback command failed on i-2")
    assert "[original error HealthCheckFailed: not healthy on the restored database]" in outcome["cause"]
    assert "irisx-copy was NOT deleted" in outcome["cause"]


def test_a_refused_rollback_input_keeps_its_own_error():
    outcome = explain.explain_rollback_failure(None, {"Error": "InvalidInput", "Cause": "nothing was touched"}, None)
    assert outcome == {"error": "InvalidInput", "cause": "nothing was touched"}


def test_health_verdicts_need_connected_and_the_expected_db_host():
    ok = {"status": "Success", "output": {"db_host": "a", "health": '{"database": "connected"}'}}
    assert health._health_of(ok, "a")[0] is True
    assert health._health_of(ok, None)[0] is True
    assert health._health_of(ok, "b") == (False, ".env names DB_HOST=a, expected b")
    shouted = {
        "status": "Success",
        "output": {"db_host": "IRISX-DB.ABC.US-EAST-1.RDS.AMAZONAWS.COM", "health": '{"database": "connected"}'},
    }
    assert health._health_of(shouted, "irisx-db.abc.us-east-1.rds.amazonaws.com")[0] is True  # DNS names ignore case
    bad = {"status": "Failed", "output": {"db_host": "a", "health": '{"database": "error", "error": "refused"}'}, "error": "HTTP 503"}
    assert health._health_of(bad, "a") == (False, "database='error': refused")
    assert health._health_of({"status": "Failed", "output": {}, "error": "curl: (7)"}, "a") == (False, "curl: (7)")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("app_env_file", "relative/.env"),
        ("app_env_file", "/home/ubuntu/my app/.env"),
        ("app_pm2_name", "irisx api"),
        ("app_health_url", "http://localhost:3000/health?x=$(id)"),
        ("command_poll_seconds", 0),
        ("health_check_attempts", True),
    ],
)
def test_an_app_host_setting_ssm_would_refuse_stops_synth_by_name(key: str, value: Any):
    context = json.loads((__import__("pathlib").Path(__file__).parents[2] / "cdk.json").read_text())["context"]["runbook"]
    with pytest.raises(ValueError, match=key):
        StackSettings.from_context({**context, key: value})


def test_lambda_settings_reject_a_non_positive_poll_limit():
    with pytest.raises(InvalidInput, match="COMMAND_POLL_MAX_ATTEMPTS"):
        RunbookSettings.from_env({"SOURCE_INSTANCE": "irisx-prod-rds-postgres", "COMMAND_POLL_MAX_ATTEMPTS": "0"})
