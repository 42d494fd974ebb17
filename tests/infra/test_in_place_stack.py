"""in-place-restore as deployed: renaming production is the one named exception to the production
fence, for the swap's renames (and the new production's settings) only; nothing may delete production
or the production a swap replaced; the final snapshot, monitoring and the app steps are scoped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks import ssm_documents

from .conftest import Synthesized
from .test_drill_stack import roles_by_workflow, without_own_logs
from .test_stack import RENAME_STEPS, as_list, function_role, role_policies, roles_allowing

pytestmark = pytest.mark.infra


def source_arn(synthesized: Synthesized) -> str:
    s = synthesized.settings
    return f"arn:aws:rds:{s.region}:{s.account}:db:{s.source_instance}"


def may_modify_production(synthesized: Synthesized, statements: list[dict[str, Any]]) -> bool:
    source = source_arn(synthesized)
    allowed = any(
        s["Effect"] == "Allow"
        and "rds:ModifyDBInstance" in as_list(s["Action"])
        and set(as_list(s["Resource"])) & {source, source.rsplit(":", 1)[0] + ":*"}
        for s in statements
    )
    denied = any(
        s["Effect"] == "Deny"
        and "rds:ModifyDBInstance" in as_list(s["Action"])
        and as_list(s["Resource"]) == [source]
        and "Condition" not in s
        for s in statements
    )
    return allowed and not denied


def test_only_the_swaps_renames_and_the_new_productions_settings_may_modify_production(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    modifiers = {role for role, statements in policies.items() if may_modify_production(synthesized, statements)}
    renames = {function_role(synthesized, s) for s in RENAME_STEPS}
    apply_settings = function_role(synthesized, "apply_production_settings")
    assert modifiers == {*renames, apply_settings}
    # The settings step: production's name, and only while it is the new production (a copy this tool made,
    # marked production by the swap): never the original, which has no management tag.
    s = synthesized.settings
    (modify,) = [st for st in policies[apply_settings] if st["Effect"] == "Allow" and "rds:ModifyDBInstance" in as_list(st["Action"])]
    assert as_list(modify["Resource"]) == [source_arn(synthesized)]
    assert modify["Condition"] == {
        "StringEquals": {
            f"aws:ResourceTag/{s.management_tag_key}": s.management_tag_value,
            "aws:ResourceTag/irisx-restore:role": "production",
        }
    }


@pytest.mark.parametrize("step", [*RENAME_STEPS, "apply_production_settings"])
def test_the_exception_still_denies_deleting_production_and_removing_its_tags(synthesized: Synthesized, step: str) -> None:
    statements = role_policies(synthesized)[function_role(synthesized, step)]
    (fence,) = [s for s in statements if s["Effect"] == "Deny" and as_list(s["Resource"]) == [source_arn(synthesized)]]
    assert {"rds:DeleteDBInstance", "rds:RemoveTagsFromResource"} <= set(as_list(fence["Action"]))
    if step == "apply_production_settings":
        assert "rds:AddTagsToResource" in as_list(fence["Action"])
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert not allowed & {"rds:DeleteDBInstance", "rds:RemoveTagsFromResource", "rds:CreateDBSnapshot"}


def test_no_role_of_any_workflow_may_delete_production_or_the_production_a_swap_replaced(synthesized: Synthesized) -> None:
    deleters = roles_allowing(synthesized, "rds:DeleteDBInstance")
    assert deleters
    for role in deleters:
        assert any(
            s["Effect"] == "Deny"
            and as_list(s["Action"]) == ["rds:DeleteDBInstance"]
            and as_list(s["Resource"]) == [source_arn(synthesized).rsplit(":", 1)[0] + ":*"]
            and s["Condition"] == {"StringEquals": {"aws:ResourceTag/irisx-restore:role": ["production", "replaced-production"]}}
            for s in role_policies(synthesized)[role]
        ), role


def test_the_final_snapshot_is_of_production_only_tagged_as_this_tools_and_never_as_the_snapshot_workflows(
    synthesized: Synthesized,
) -> None:
    s = synthesized.settings
    statements = role_policies(synthesized)[function_role(synthesized, "start_final_snapshot")]
    final = f"arn:aws:rds:{s.region}:{s.account}:snapshot:*-pre-restore-*"
    managed = {"StringEquals": {f"aws:RequestTag/{s.management_tag_key}": s.management_tag_value}}
    (create,) = [st for st in statements if st["Effect"] == "Allow" and "rds:CreateDBSnapshot" in as_list(st["Action"])]
    assert (as_list(create["Resource"]), create["Condition"]) == ([source_arn(synthesized), final], managed)
    (tag,) = [st for st in statements if st["Effect"] == "Allow" and "rds:AddTagsToResource" in as_list(st["Action"])]
    assert (as_list(tag["Resource"]), tag["Condition"]) == ([final], managed)
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"StringEquals": {"aws:RequestTag/irisx-restore:workflow": "snapshot"}}
        for st in statements
    )


def test_the_wait_for_the_final_snapshot_is_the_snapshot_workflows_own_step(synthesized: Synthesized) -> None:
    roles = roles_by_workflow(synthesized, "describe_snapshot")
    policies = role_policies(synthesized)
    assert without_own_logs(policies[roles["in-place-restore"]]) == without_own_logs(policies[roles["snapshot"]])


def test_monitoring_may_create_and_delete_only_the_alarms_a_carry_over_made(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    over = policies[function_role(synthesized, "carry_monitoring_over")]
    back = policies[function_role(synthesized, "carry_monitoring_back")]

    def actions(statements: list[dict[str, Any]]) -> set[str]:
        return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"]) if not a.startswith(("logs:", "xray:"))}

    reads = {"cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource", "rds:DescribeEventSubscriptions"}
    assert actions(over) == reads | {"cloudwatch:PutMetricAlarm", "cloudwatch:TagResource", "rds:AddSourceIdentifierToSubscription"}
    assert actions(back) == reads | {"cloudwatch:DeleteAlarms", "rds:RemoveSourceIdentifierFromSubscription"}
    (put,) = [s for s in over if "cloudwatch:PutMetricAlarm" in as_list(s["Action"])]
    assert put["Condition"] == {"Null": {"aws:RequestTag/irisx-restore:carried-from": "false"}}
    (delete,) = [s for s in back if "cloudwatch:DeleteAlarms" in as_list(s["Action"])]
    assert delete["Condition"] == {"Null": {"aws:ResourceTag/irisx-restore:carried-from": "false"}}


@pytest.mark.parametrize(
    ("step", "workflows"),
    [("carry_monitoring_over", {"in-place-restore", "restore"}), ("carry_monitoring_back", {"in-place-restore", "rollback"})],
)
def test_restore_and_rollback_carry_monitoring_with_their_own_roles_and_the_swaps_permissions(
    synthesized: Synthesized, step: str, workflows: set[str]
) -> None:
    # One builder (stacks/permissions/monitoring.py): restore's cutover and rollback get the swap's statements,
    # each function its own role.
    roles = roles_by_workflow(synthesized, step)
    assert set(roles) == workflows
    assert len(set(roles.values())) == len(workflows)
    policies = role_policies(synthesized)
    statements = {workflow: without_own_logs(policies[role]) for workflow, role in roles.items()}
    assert len({json.dumps(s) for s in statements.values()}) == 1, statements


@pytest.mark.parametrize("step", ["read_hosts_db_host", "stop_app_hosts", "start_app_hosts", "stop_started_app", "check_app_health"])
def test_the_app_steps_send_only_the_app_control_document(synthesized: Synthesized, step: str) -> None:
    (role,) = [r for w, r in roles_by_workflow(synthesized, step).items() if w == "in-place-restore"]
    documents = [
        r
        for s in role_policies(synthesized)[role]
        if s["Effect"] == "Allow" and "ssm:SendCommand" in as_list(s["Action"])
        for r in as_list(s["Resource"])
        if ":document/" in r
    ]
    assert documents == [f"arn:aws:ssm:us-east-1:123456789012:document/{ssm_documents.APP_CONTROL.name('irisx-restore')}"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"replaced_suffix_format": "_old"}, "replaced_suffix_format"),
        ({"rename_poll_seconds": 0}, "rename_poll_seconds"),
        ({"rename_stable_reads": True}, "rename_stable_reads"),
    ],
)
def test_in_place_settings_are_checked_by_name(runbook_context: dict[str, Any], change: dict[str, Any], named: str) -> None:
    from stacks.settings import StackSettings

    with pytest.raises(ValueError, match=named):
        StackSettings.from_context({**runbook_context, **change})


def test_the_input_check_reads_what_restores_does_and_finds_the_api_hosts_and_changes_nothing(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    check = without_own_logs(policies[function_role(synthesized, "check_in_place_input")])
    restore_check = without_own_logs(policies[function_role(synthesized, "check_restore_input")])
    assert set(restore_check) <= set(check)
    extra = [json.loads(s) for s in set(check) - set(restore_check)]
    assert [as_list(s["Action"]) for s in extra] == [["ec2:DescribeInstances"]]


def test_only_the_settings_step_may_pass_a_role_and_only_to_rds_enhanced_monitoring(synthesized: Synthesized) -> None:
    settings_step = function_role(synthesized, "apply_production_settings")
    assert roles_allowing(synthesized, "iam:PassRole") == {settings_step}
    (passing,) = [s for s in role_policies(synthesized)[settings_step] if "iam:PassRole" in as_list(s["Action"])]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "monitoring.rds.amazonaws.com"}}
