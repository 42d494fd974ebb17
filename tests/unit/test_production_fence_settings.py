"""The production instances setting (every source the IAM fence names), the refusal of any other source,
the rollback's confirmation, and the rollback's unmarking of a copy production ran on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from restore_runbook.common import fields, rds
from restore_runbook.common.errors import ConfirmationRequired, InvalidInput, UnsafeOperation
from restore_runbook.hosts import cutover, ssm
from restore_runbook.restore import protection
from restore_runbook.rollback.procedure import plan_rollback
from restore_runbook.settings import RunbookSettings
from stacks.settings import StackSettings

pytestmark = pytest.mark.unit

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]["runbook"]
SOURCE = "irisx-prod-rds-postgres"


def test_cdk_json_lists_the_configured_source_and_the_lambdas_read_the_same_list():
    stack = StackSettings.from_context(CONTEXT)
    read = RunbookSettings.from_env(stack.lambda_environment())
    assert stack.production_names == read.production_names == (SOURCE,)
    assert json.loads(stack.lambda_environment()["PRODUCTION_INSTANCES"]) == [SOURCE]


def test_left_out_the_configured_source_is_the_only_production_instance():
    context = {k: v for k, v in CONTEXT.items() if k != "production_instances"}
    assert StackSettings.from_context(context).production_names == (SOURCE,)
    assert RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE}).production_names == (SOURCE,)


def test_the_configured_source_is_always_fenced_first_and_names_are_lower_case_once():
    settings = StackSettings.from_context({**CONTEXT, "production_instances": ["IRISX-Reporting", SOURCE.upper()]})
    assert settings.production_names == (SOURCE, "irisx-reporting")


@pytest.mark.parametrize(("value", "message"), [(["bad--name"], "RDS instance identifiers"), ("irisx", "RDS instance identifiers")])
def test_a_bad_production_instances_value_is_named_at_synth(value: Any, message: str):
    with pytest.raises(ValueError, match=f"production_instances.*{message}|{message}.*"):
        StackSettings.from_context({**CONTEXT, "production_instances": value})


def test_a_bad_production_instances_variable_is_named_at_cold_start():
    with pytest.raises(InvalidInput, match="PRODUCTION_INSTANCES names 'bad--name', which is not an RDS instance identifier"):
        RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE, "PRODUCTION_INSTANCES": '["bad--name"]'})


def test_a_source_outside_the_list_is_refused_by_name_and_a_listed_one_passes():
    assert fields.fenced_source("irisx-reporting", (SOURCE, "irisx-reporting")) == "irisx-reporting"
    with pytest.raises(InvalidInput, match=r"source_instance 'irisx-staging' is not one of the .* \(irisx-prod-rds-postgres\)"):
        fields.fenced_source("irisx-staging", (SOURCE,))


# -- the rollback's confirmation ----------------------------------------------------------------------------

SETTINGS = RunbookSettings.from_env({"SOURCE_INSTANCE": SOURCE})


def world_with_copy(monkeypatch: pytest.MonkeyPatch, role: str | None, made_from: str = SOURCE) -> list[str]:
    """A managed copy, marked `role` if given, and one API host; returns the hosts looked for (so: whether it got that far)."""
    tags = [{"Key": SETTINGS.management_tag_key, "Value": SETTINGS.management_tag_value}, {"Key": rds.TAG_SOURCE, "Value": made_from}]
    if role:
        tags.append({"Key": rds.TAG_ROLE, "Value": role})
    copy = {"DBInstanceIdentifier": "irisx-copy", "Endpoint": {"Address": "irisx-copy.example"}, "TagList": tags}
    looked: list[str] = []
    monkeypatch.setattr(rds, "find_instance", lambda identifier: copy if identifier == "irisx-copy" else None)
    monkeypatch.setattr(rds, "all_instances", lambda: iter([copy]))
    monkeypatch.setattr(cutover, "source_endpoint", lambda source: f"{source}.example")
    monkeypatch.setattr(ssm, "find_hosts", lambda settings: looked.append("hosts") or ["i-1"])
    monkeypatch.setattr(ssm, "find_stopped_hosts", lambda settings: [])
    return looked


@pytest.mark.parametrize("confirm", [None, "IRISX-COPY", "irisx-copy ", SOURCE])
def test_a_copy_marked_production_needs_its_exact_name_as_confirm(monkeypatch, confirm):
    looked = world_with_copy(monkeypatch, rds.ROLE_PRODUCTION)
    request = {"restored_instance": "irisx-copy", **({} if confirm is None else {"confirm": confirm})}
    with pytest.raises(ConfirmationRequired, match=r'irisx-copy is marked irisx-restore:role=production.*"confirm": "irisx-copy"'):
        plan_rollback(request, SETTINGS)
    assert looked == []
    assert plan_rollback({"restored_instance": "irisx-copy", "confirm": "irisx-copy"}, SETTINGS)["restored_instance"] == "irisx-copy"


@pytest.mark.parametrize("original_endpoint", [None, "irisx-serving.example"])
def test_a_copy_is_not_rolled_back_onto_the_source_while_production_runs_on_another_copy_of_it(monkeypatch, original_endpoint):
    # Given the copy to roll back, and another copy of the same source a later cutover marked production
    world_with_copy(monkeypatch, None)
    copy = rds.find_instance("irisx-copy")
    serving_tags = [{"Key": rds.TAG_SOURCE, "Value": SOURCE}, {"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION}]
    serving = {"DBInstanceIdentifier": "irisx-serving", "Endpoint": {"Address": "irisx-serving.example"}, "TagList": serving_tags}
    monkeypatch.setattr(rds, "all_instances", lambda: iter([copy, serving]))
    request = {"restored_instance": "irisx-copy", **({"original_endpoint": original_endpoint} if original_endpoint else {})}

    if original_endpoint is None:
        # Then pointing the hosts back at the source is refused, naming the copy production runs on
        with pytest.raises(UnsafeOperation, match=r"production was cut over to irisx-serving .*Nothing was touched"):
            plan_rollback(request, SETTINGS)
    else:
        # Unless the hosts are to stay on that copy
        assert plan_rollback(request, SETTINGS)["original_endpoint"] == "irisx-serving.example"


def test_a_copy_production_never_ran_on_needs_no_confirm_but_a_wrong_one_is_refused(monkeypatch):
    world_with_copy(monkeypatch, None)
    assert plan_rollback({"restored_instance": "irisx-copy"}, SETTINGS)["source_instance"] == SOURCE
    with pytest.raises(ConfirmationRequired, match="a confirmation, when given, must name the restored instance"):
        plan_rollback({"restored_instance": "irisx-copy", "confirm": "irisx-other"}, SETTINGS)


@pytest.mark.parametrize(("confirm", "message"), [(None, "confirm is null"), (7, "confirm must be the restored instance's name as text")])
def test_a_confirm_that_is_not_text_is_invalid_input(monkeypatch, confirm, message):
    world_with_copy(monkeypatch, rds.ROLE_PRODUCTION)
    with pytest.raises(InvalidInput, match=message):
        plan_rollback({"restored_instance": "irisx-copy", "confirm": confirm}, SETTINGS)


def test_the_production_a_swap_replaced_is_never_rolled_back_even_confirmed(monkeypatch):
    world_with_copy(monkeypatch, rds.ROLE_REPLACED_PRODUCTION)
    with pytest.raises(InvalidInput, match=r"replaced-production.*never deletes it"):
        plan_rollback({"restored_instance": "irisx-copy", "confirm": "irisx-copy"}, SETTINGS)


def test_a_copy_made_from_an_unlisted_instance_is_refused_before_the_hosts_are_looked_for(monkeypatch):
    looked = world_with_copy(monkeypatch, None, made_from="irisx-staging")
    with pytest.raises(InvalidInput, match="the rollback's original: source_instance 'irisx-staging' is not one of the production"):
        plan_rollback({"restored_instance": "irisx-copy"}, SETTINGS)
    assert looked == []


# -- unmarking before the delete ------------------------------------------------------------------------------

ORIGINAL = "irisx-prod.example"


class RecordingRds:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def remove_tags_from_resource(self, **kwargs: Any) -> None:
        self.calls.append(("remove_tags_from_resource", kwargs))


def revert_record(expect: dict[str, str], healthy: dict[str, bool], state: str = "healthy") -> dict[str, Any]:
    return {"expect": expect, "health": {"state": state, "hosts": {h: {"healthy": ok, "detail": "x"} for h, ok in healthy.items()}}}


@pytest.fixture
def marked_copy(monkeypatch: pytest.MonkeyPatch) -> RecordingRds:
    client = RecordingRds()
    copy = {
        "DBInstanceIdentifier": "irisx-copy",
        "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:irisx-copy",
        "Endpoint": {"Address": "irisx-copy.example"},
        "TagList": [{"Key": rds.TAG_ROLE, "Value": rds.ROLE_PRODUCTION}],
    }
    monkeypatch.setattr(rds, "find_instance", lambda identifier: copy)
    monkeypatch.setattr(protection.aws, "client", lambda name: client)
    return client


@pytest.mark.parametrize(
    ("revert", "named"),
    [
        (revert_record({"i-1": ORIGINAL, "i-2": "irisx-copy.example"}, {"i-1": True, "i-2": True}), "i-2 was pointed at irisx-copy"),
        (revert_record({"i-1": ORIGINAL}, {"i-1": True}), "i-2 was pointed at nothing recorded"),
        (revert_record({"i-1": ORIGINAL, "i-2": ORIGINAL}, {"i-1": True, "i-2": False}, "retry"), "i-1 is not recorded healthy on it"),
        (None, "i-1 was pointed at nothing recorded"),
    ],
    ids=["a-host-on-the-copy", "a-host-missing", "not-healthy", "no-record"],
)
def test_a_copy_marked_production_is_not_unmarked_unless_every_host_is_recorded_back_and_healthy(marked_copy, revert, named):
    with pytest.raises(UnsafeOperation, match=f"refusing to unmark and delete irisx-copy.*{named}.*the marker is kept"):
        protection.unmark_production("irisx-copy", revert, original_endpoint=ORIGINAL, hosts=["i-1", "i-2"])
    assert marked_copy.calls == []


def test_a_copy_marked_production_is_unmarked_of_that_key_only_once_every_host_is_back(marked_copy):
    revert = revert_record({"i-1": ORIGINAL, "i-2": ORIGINAL}, {"i-1": True, "i-2": True})
    said = protection.unmark_production("irisx-copy", revert, original_endpoint=ORIGINAL, hosts=["i-1", "i-2"])
    assert said == f"removed the marker irisx-restore:role=production from irisx-copy (every host healthy on {ORIGINAL})"
    assert marked_copy.calls == [
        ("remove_tags_from_resource", {"ResourceName": "arn:aws:rds:us-east-1:123456789012:db:irisx-copy", "TagKeys": [rds.TAG_ROLE]})
    ]


def test_an_unmarked_copy_is_left_alone(monkeypatch):
    client = RecordingRds()
    monkeypatch.setattr(rds, "find_instance", lambda identifier: {"DBInstanceIdentifier": identifier, "TagList": []})
    monkeypatch.setattr(protection.aws, "client", lambda name: client)
    assert protection.unmark_production("irisx-copy", None, original_endpoint=ORIGINAL, hosts=["i-1"]) is None
    assert client.calls == []
