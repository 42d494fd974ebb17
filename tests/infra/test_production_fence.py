"""The production fence as synthesized: by name for every listed production instance, by marker wherever
production runs after a cutover or a swap, with its named exceptions only; read steps that cannot change RDS;
and cdk-nag acknowledgements whose reasons speak for every statement on the wildcard they cover."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings
from stacks.workflow import handler_module

from .conftest import Synthesized
from .test_stack import RENAME_STEPS, as_list, function_role, function_roles, role_policies

pytestmark = pytest.mark.infra

DB = "arn:aws:rds:us-east-1:123456789012:db:"
MARKER = "aws:ResourceTag/irisx-restore:role"
# What changes RDS: every role allowed any of these is a "destructive or modifying role".
CHANGING = re.compile(r"^rds:(Modify|Delete|Create|AddTags|RemoveTags|Restore|Reboot|Stop|Start|Promote|Failover)")
# The steps allowed to change RDS at all, by handler module; every other step only reads RDS, or not at all.
RDS_CHANGING_STEPS = {
    "start_restore",
    "cleanup_restore",
    "protect_new_production",
    "delete_restored_instance",
    "tear_down_drill_instance",
    "sweep_drill_instances",
    "start_snapshot",
    "apply_retention",
    "cleanup_snapshot",
    "start_final_snapshot",
    *RENAME_STEPS,
    "apply_production_settings",
}
# Read steps by what their names say they do: none may hold an RDS change.
READ_STEP = re.compile(r"(health|describe|validate|explain|report|check|warm|measure|publish|record|release|take_lock|plan|aggregate)")


def handlers_by_role(synthesized: Synthesized) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        roles.setdefault(function["Properties"]["Role"]["Fn::GetAtt"][0], set()).add(handler_module(function["Properties"]["Handler"]))
    return roles


def changing_roles(policies: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {
        role
        for role, statements in policies.items()
        if any(s["Effect"] == "Allow" and any(CHANGING.match(a) for a in as_list(s["Action"])) for s in statements)
    }


def denies(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s["Effect"] == "Deny"]


def marker_denied(statements: list[dict[str, Any]], role: str) -> set[str]:
    """Actions denied on instances marked `role` with no other condition (the fence by marker)."""
    denied: set[str] = set()
    for s in denies(statements):
        if as_list(s["Resource"]) != [f"{DB}*"] or set(s.get("Condition", {})) != {"StringEquals"}:
            continue
        if set(s["Condition"]["StringEquals"]) == {MARKER} and role in as_list(s["Condition"]["StringEquals"][MARKER]):
            denied |= set(as_list(s["Action"]))
    return denied


@pytest.fixture(scope="module")
def two_productions(runbook_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The stack synthesized with a second production instance listed (a reporting primary, say)."""
    settings = StackSettings.from_context(
        {**runbook_context, "production_instances": ["irisx-prod-rds-postgres", "irisx-reporting-primary"]}
    )
    layer = tmp_path_factory.mktemp("layer-two")
    (layer / "python").mkdir()
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk.out-two")))
    stack = RestoreRunbookStack(
        app,
        "TwoProductions",
        settings=settings,
        layer_asset_path=layer,
        env=cdk.Environment(account=settings.account, region=settings.region),
    )
    template = Template.from_stack(stack).to_json()["Resources"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for resource in template.values():
        if resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"]["Roles"]:
                by_role.setdefault(role["Ref"], []).extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return by_role


def test_every_role_that_changes_rds_is_denied_every_listed_production_instance_by_name(two_productions) -> None:
    listed = [f"{DB}irisx-prod-rds-postgres", f"{DB}irisx-reporting-primary"]
    roles = changing_roles(two_productions)
    assert len(roles) >= 15
    for role in roles:
        by_name = [s for s in denies(two_productions[role]) if "Condition" not in s and as_list(s["Resource"]) == listed]
        assert by_name, role
        # deleting production and removing its tags are denied to every role, the swap's renames included
        assert {"rds:DeleteDBInstance", "rds:RemoveTagsFromResource"} <= set().union(*(as_list(s["Action"]) for s in by_name)), role


def test_the_snapshot_workflow_may_snapshot_every_listed_production_instance_and_nothing_else(two_productions) -> None:
    creates = [
        as_list(s["Resource"])
        for statements in two_productions.values()
        for s in statements
        if s["Effect"] == "Allow"
        and "rds:CreateDBSnapshot" in as_list(s["Action"])
        and any(":snapshot:irisx-*" in r for r in as_list(s["Resource"]))
    ]
    assert creates == [
        [f"{DB}irisx-prod-rds-postgres", f"{DB}irisx-reporting-primary", "arn:aws:rds:us-east-1:123456789012:snapshot:irisx-*"]
    ]


def test_every_role_that_changes_rds_is_denied_what_is_marked_production_with_only_the_named_exceptions(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    fenced = {"rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource"}
    renames = {function_role(synthesized, s) for s in RENAME_STEPS}
    settings_step = function_role(synthesized, "apply_production_settings")
    rollback_delete = function_role(synthesized, "delete_restored_instance")
    for role in changing_roles(policies):
        statements = policies[role]
        expected_production = set(fenced)
        expected_replaced = set(fenced)
        if role in renames:
            # the swap renames and re-marks production and the production it replaced
            expected_production -= {"rds:ModifyDBInstance", "rds:AddTagsToResource"}
            expected_replaced -= {"rds:ModifyDBInstance", "rds:AddTagsToResource"}
        elif role == settings_step:
            expected_production -= {"rds:ModifyDBInstance"}
            expected_replaced -= {"rds:ModifyDBInstance"}
        elif role == rollback_delete:
            expected_production -= {"rds:RemoveTagsFromResource"}
        assert expected_production <= marker_denied(statements, "production"), role
        assert expected_replaced <= marker_denied(statements, "replaced-production"), role
        # and no role may delete either while it is marked
        assert {"rds:DeleteDBInstance"} <= marker_denied(statements, "production") & marker_denied(statements, "replaced-production"), role


def test_only_the_rollbacks_delete_may_unmark_and_only_the_production_marker_of_a_managed_copy(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    policies = role_policies(synthesized)
    rollback_delete = function_role(synthesized, "delete_restored_instance")
    removers = {
        role
        for role, statements in policies.items()
        for s in statements
        if s["Effect"] == "Allow" and "rds:RemoveTagsFromResource" in as_list(s["Action"])
    }
    assert removers == {rollback_delete}
    (unmark,) = [s for s in policies[rollback_delete] if s["Effect"] == "Allow" and "rds:RemoveTagsFromResource" in as_list(s["Action"])]
    assert as_list(unmark["Action"]) == ["rds:RemoveTagsFromResource"]
    assert unmark["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value, MARKER: "production"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["irisx-restore:role"]},
    }
    # any other key stays denied, on a production copy; the replaced production's tags on every key
    assert any(
        s.get("Condition")
        == {"StringEquals": {MARKER: "production"}, "ForAnyValue:StringNotEquals": {"aws:TagKeys": ["irisx-restore:role"]}}
        and as_list(s["Action"]) == ["rds:RemoveTagsFromResource"]
        for s in denies(policies[rollback_delete])
    )
    assert "rds:RemoveTagsFromResource" in marker_denied(policies[rollback_delete], "replaced-production")


def test_the_steps_that_change_rds_are_exactly_the_named_ones_and_no_read_step_is_among_them(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    by_role = handlers_by_role(synthesized)
    changing = {step for role in changing_roles(policies) for step in by_role.get(role, set())}
    assert changing == RDS_CHANGING_STEPS
    read_steps = {step for steps in by_role.values() for step in steps if READ_STEP.search(step)}
    assert {"check_app_health", "describe_restore", "validate_restore", "explain_rollback_failure", "report_in_place_restore"} <= read_steps
    for role, steps in by_role.items():
        if steps & read_steps:
            assert role not in changing_roles(policies), (steps, role)
    # restore's own read steps, in every workflow that runs them
    for step in ("check_app_health", "describe_restore", "validate_restore", "warm_restored_copy", "check_rename"):
        for role in function_roles(synthesized, step):
            assert not [a for s in policies[role] if s["Effect"] == "Allow" for a in as_list(s["Action"]) if CHANGING.match(a)], step


def acknowledgements_by_role(synthesized: Synthesized) -> dict[str, dict[str, str]]:
    """Role logical id -> {wildcard resource: reason} for every IAM5 acknowledgement on a role."""
    stack = synthesized.stack
    found: dict[str, dict[str, str]] = {}
    for construct in synthesized.app.node.find_all():
        child = construct.node.default_child if construct.node.default_child is not None else None
        if not isinstance(child, cdk.CfnResource) or child.cfn_resource_type != "AWS::IAM::Role":
            continue
        logical = stack.resolve(child.logical_id)
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            for rule, reason in entry.data.items():
                match = re.search(r"AwsSolutions-IAM5\[Resource::(.*)\]$", rule)
                if match:
                    found.setdefault(logical, {})[match.group(1)] = reason
    return found


def test_every_acknowledged_wildcard_has_a_reason_that_speaks_for_each_statement_on_it(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    acknowledged = acknowledgements_by_role(synthesized)
    assert acknowledged
    mutating_reasons = 0
    for role, wildcards in acknowledged.items():
        for resource, reason in wildcards.items():
            actions = {
                a
                for s in policies.get(role, [])
                if s["Effect"] == "Allow" and resource in as_list(s["Resource"])
                for a in as_list(s["Action"])
            }
            changes = {a for a in actions if not re.match(r"^[a-z0-9-]+:(Describe|List|Get)", a)}
            if changes:
                # A "read-only" reason must not be what silences a statement that changes something.
                assert "read-only" not in reason.lower(), (role, resource, sorted(changes), reason)
                mutating_reasons += 1
    assert mutating_reasons >= 5


# -- the journal: each role writes only the partition keys it needs -----------------------------------------

WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def leading_keys(statement: dict[str, Any]) -> list[str]:
    condition = statement.get("Condition") or {}
    assert condition.get("Null") == {"dynamodb:LeadingKeys": "false"}, statement
    return sorted(as_list(condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]))


def workflow_of(function: dict[str, Any]) -> str:
    # "<workflow> workflow: <handler>", as every function describes itself
    return str(function["Properties"]["Description"]).split(" workflow: ", 1)[0]


def test_every_journal_write_carries_leading_keys_and_they_are_the_keys_its_step_needs(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    policies = role_policies(synthesized)
    lock_kind = {"restore": "rds", "rollback": "rds", "in-place-restore": "rds", "drill": "drill", "recordings-restore": "s3"}

    def locks(workflow: str) -> list[str]:
        kind = lock_kind.get(workflow)
        if kind == "s3":
            return sorted(f"LOCK#s3:{b}/*" for b in settings.recordings_buckets)
        return sorted(f"LOCK#{kind}:{n}" for n in settings.production_names) if kind else []

    writers = 0
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        role, step = function["Properties"]["Role"]["Fn::GetAtt"][0], handler_module(function["Properties"]["Handler"])
        journal = [s for s in policies[role] if s["Effect"] == "Allow" and any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
        if not any(WRITES & set(as_list(s["Action"])) for s in journal):
            continue
        writers += 1
        workflow = workflow_of(function)
        granted: dict[tuple[str, ...], list[str]] = {}
        for s in journal:
            granted.setdefault(tuple(sorted(as_list(s["Action"]))), []).extend(leading_keys(s))
        granted = {actions: sorted(keys) for actions, keys in granted.items()}
        own = [f"WORKFLOW#{workflow}"]
        # the registries of held prefixes, one per configured recordings bucket (journal/prefix_registry.py)
        every_registry = sorted(f"PREFIXES#s3:{b}" for b in settings.recordings_buckets)
        registries = every_registry if lock_kind.get(workflow) == "s3" else []
        expected = {
            "record_start": {("dynamodb:PutItem",): own},
            "take_lock": {("dynamodb:GetItem", "dynamodb:PutItem"): locks(workflow)},
            # the lock read first: one kept for recovery is left for a person
            "release_without_record": ({("dynamodb:DeleteItem", "dynamodb:GetItem"): locks(workflow)} if locks(workflow) else {})
            | ({("dynamodb:UpdateItem",): registries} if registries else {}),
            "record_outcome": {("dynamodb:GetItem", "dynamodb:UpdateItem"): own}
            | ({("dynamodb:DeleteItem", "dynamodb:GetItem"): locks(workflow)} if locks(workflow) else {})
            | ({("dynamodb:UpdateItem",): registries} if registries else {}),
            "check_drill_input": {("dynamodb:GetItem", "dynamodb:PutItem"): [f"DRILL#{n}" for n in settings.production_names]},
            # a consistent read and a conditional write of the registries, nothing else in the table
            "check_overlapping_restores": {("dynamodb:GetItem", "dynamodb:PutItem"): every_registry},
            "record_abandoned_execution": {
                ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"): sorted(
                    f"WORKFLOW#{w}" for w in ("restore", "rollback", "snapshot", "drill", "recordings-restore", "in-place-restore")
                ),
                # a lock released, or kept and marked as needing recovery (journal/lock.py keep_for_recovery)
                ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"): ["LOCK#*"],
                # a recordings lock's entry in its bucket's registry, released with the lock
                ("dynamodb:UpdateItem",): every_registry,
                # the locks an execution holds, found through the index's LOCK partition
                ("dynamodb:Query",): ["LOCK"],
            },
        }[step]
        assert granted == expected, (workflow, step)
    # the record start and outcome of six workflows, five lock steps, the drill's claim, the recordings
    # overlap check and the abandoned-execution function
    assert writers >= 19


def test_the_journal_keys_in_iam_are_the_ones_the_steps_write() -> None:
    from restore_runbook.drill.request import DEDUPE_PK
    from restore_runbook.journal.table import execution_pk, lock_pk
    from restore_runbook.journal.workflows import traits_of

    assert execution_pk("restore") == "WORKFLOW#restore"
    lock = traits_of("rollback").lock
    assert lock is not None and lock_pk(lock.resource({"source_instance": "irisx-prod-rds-postgres"})) == "LOCK#rds:irisx-prod-rds-postgres"
    assert DEDUPE_PK.format(source="irisx-prod-rds-postgres") == "DRILL#irisx-prod-rds-postgres"
