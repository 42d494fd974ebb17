"""What the synthesized restore stack guarantees: the deployed ASL, scoped IAM, observability, nag, lint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from stacks.workflow import handler_module, placeholders_in

from .conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra

ASL = REPO_ROOT / "statemachines" / "restore.asl.json"
MANIFEST: dict[str, str] = json.loads((REPO_ROOT / "statemachines" / "functions.json").read_text(encoding="utf-8"))


def statements_of(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return policy["Properties"]["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_policies(synthesized: Synthesized) -> dict[str, list[dict[str, Any]]]:
    """Role logical id -> every statement attached to it."""
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            by_role.setdefault(role["Ref"], []).extend(statements_of(policy))
    return by_role


def function_role(synthesized: Synthesized, step: str) -> str:
    """Logical id of the role of the function whose handler module is `step`."""
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        if handler_module(function["Properties"]["Handler"]) == step:
            return function["Properties"]["Role"]["Fn::GetAtt"][0]
    raise AssertionError(f"no function for step {step}")


# The in-place swap's steps that rename (and so ModifyDBInstance and tag) production.
RENAME_STEPS = ("rename_production_away", "rename_copy_to_production", "rename_back")


def function_roles(synthesized: Synthesized, step: str) -> set[str]:
    """Logical ids of the roles of every function running handler module `step` (restore's own steps
    run in each workflow that reuses them, one function per workflow)."""
    return {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if handler_module(f["Properties"]["Handler"]) == step
    }


def restore_cleanup_role(synthesized: Synthesized) -> str:
    """The restore workflow's cleanup, not the in-place restore's (the same handler): after a reverted
    cutover it deletes the copy the hosts were pointed at with a final snapshot."""
    (role,) = [r for r in function_roles(synthesized, "cleanup_restore") if r.startswith("RestoreWorkflow")]
    return role


def roles_allowing(synthesized: Synthesized, action: str) -> set[str]:
    return {
        role
        for role, statements in role_policies(synthesized).items()
        for statement in statements
        if statement["Effect"] == "Allow" and action in as_list(statement["Action"])
    }


def referenced_handlers() -> dict[str, str]:
    return {name: MANIFEST[name] for name in placeholders_in(ASL.read_text(encoding="utf-8"))}


# -- the state machine runs the ASL file, with every function substituted -------------------------------


def test_state_machine_deploys_the_asl_file_with_every_placeholder_substituted(synthesized: Synthesized) -> None:
    # Given the state machine in the template
    machines = synthesized.of_type("AWS::StepFunctions::StateMachine").values()
    (machine,) = [m for m in machines if m["Properties"]["StateMachineName"] == "irisx-restore-restore"]
    props = machine["Properties"]
    functions = synthesized.of_type("AWS::Lambda::Function")
    # Then its substitutions map each placeholder of the ASL to the ARN of the function running that handler
    substitutions = props["DefinitionSubstitutions"]
    assert set(substitutions) == set(referenced_handlers())
    for placeholder, handler in referenced_handlers().items():
        logical_id = substitutions[placeholder]["Fn::GetAtt"][0]
        assert functions[logical_id]["Properties"]["Handler"] == handler
    # And the definition is the file on disk, untouched
    assert json.loads(props["DefinitionString"]) == json.loads(ASL.read_text(encoding="utf-8"))
    assert props["StateMachineName"] == "irisx-restore-restore"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_operator_cli_finds_the_state_machine_by_its_output(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]
    machine_id = next(iter(synthesized.of_type("AWS::StepFunctions::StateMachine")))
    assert outputs["RestoreStateMachineArn"]["Value"] == {"Ref": machine_id}


def workflow_functions(synthesized: Synthesized, machine_id: str) -> set[str]:
    """Logical ids of the functions built by the same Workflow construct as the state machine."""
    prefix = machine_id.split("StateMachine")[0]
    return {f for f in synthesized.of_type("AWS::Lambda::Function") if f.startswith(prefix)}


def test_state_machine_may_invoke_exactly_its_functions(synthesized: Synthesized) -> None:
    for machine_id, machine in synthesized.of_type("AWS::StepFunctions::StateMachine").items():
        statements = role_policies(synthesized)[machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]
        invoked = {
            resource["Fn::GetAtt"][0]
            for statement in statements
            if "lambda:InvokeFunction" in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
            if "Fn::GetAtt" in resource
        }
        assert invoked == workflow_functions(synthesized, machine_id), machine_id


# -- functions ------------------------------------------------------------------------------------------


def test_one_function_per_step_the_asl_references(synthesized: Synthesized) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function")
    for machine_id, machine in synthesized.of_type("AWS::StepFunctions::StateMachine").items():
        workflow = machine["Properties"]["StateMachineName"].removeprefix("irisx-restore-")
        asl = (REPO_ROOT / "statemachines" / f"{workflow}.asl.json").read_text(encoding="utf-8")
        handlers = sorted(functions[f]["Properties"]["Handler"] for f in workflow_functions(synthesized, machine_id))
        assert handlers == sorted(MANIFEST[name] for name in placeholders_in(asl)), workflow
    restore_machine = next(m for m in synthesized.of_type("AWS::StepFunctions::StateMachine") if m.startswith("Restore"))
    assert sorted(referenced_handlers().values()) == sorted(
        functions[f]["Properties"]["Handler"] for f in workflow_functions(synthesized, restore_machine)
    )


def test_functions_share_runtime_tracing_and_json_logging(synthesized: Synthesized) -> None:
    (table_id,) = synthesized.of_type("AWS::DynamoDB::GlobalTable")
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    (layer_id,) = synthesized.of_type("AWS::Lambda::LayerVersion")
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        props = function["Properties"]
        workflow = props["Description"].split(" workflow: ")[0]
        expected_env = {
            **synthesized.settings.lambda_environment(),
            "JOURNAL_TABLE_NAME": {"Ref": table_id},
            "NOTIFY_TOPIC_ARN": {"Ref": topic_id},
            "POWERTOOLS_SERVICE_NAME": f"irisx-restore-{workflow}",
            "POWERTOOLS_METRICS_NAMESPACE": "irisx-restore",
        }
        if workflow in ("recordings-restore", "drill"):
            # the stack's work bucket, told to the recordings functions and the drill's (its recordings check) only
            (bucket_id,) = [k for k in synthesized.of_type("AWS::S3::Bucket") if k.startswith("RecordingsRestoreWorkBucket")]
            expected_env["RECORDINGS_WORK_BUCKET"] = {"Ref": bucket_id}
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["Environment"]["Variables"] == expected_env
        assert props["Layers"] == [{"Ref": layer_id}]


def test_every_function_has_its_own_role_and_its_own_log_group_with_retention(synthesized: Synthesized) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function").values()
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
    log_groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions]
    assert len(set(roles)) == len(roles) == len(functions)
    assert len(set(log_groups)) == len(log_groups)
    # functions' roles plus one per state machine and one per schedule, nothing shared
    machines = synthesized.of_type("AWS::StepFunctions::StateMachine")
    schedules = synthesized.of_type("AWS::Scheduler::Schedule")
    assert len({s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in schedules.values()}) == len(schedules)
    assert len(synthesized.of_type("AWS::IAM::Role")) == len(functions) + len(machines) + len(schedules)
    for log_group in synthesized.of_type("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] > 0


def test_lambda_environment_is_what_the_lambda_settings_read(synthesized: Synthesized) -> None:
    # Given the variables the stack writes, When the Lambda side reads them at cold start
    lambdas = str(REPO_ROOT / "lambdas")
    import sys

    if lambdas not in sys.path:
        sys.path.insert(0, lambdas)
    from restore_runbook.settings import RunbookSettings

    read = RunbookSettings.from_env(synthesized.settings.lambda_environment())
    # Then every shared setting arrives with the value cdk.json holds
    for name in (
        "source_instance",
        "database_name",
        "db_secret_arn",
        "validation_tables",
        "recency_column",
        "statement_timeout_ms",
        "management_tag_key",
        "management_tag_value",
        "restore_poll_initial_seconds",
        "restore_poll_max_seconds",
        "restore_poll_max_attempts",
    ):
        assert getattr(read, name) == getattr(synthesized.settings, name), name


# The steps that open a connection to a restored database; nothing else needs the VPC.
DATABASE_READERS = {"validate_restore", "warm_restored_copy"}


def test_only_the_steps_that_read_a_database_run_in_the_vpc(synthesized: Synthesized) -> None:
    for function in synthesized.of_type("AWS::Lambda::Function").values():
        props = function["Properties"]
        if handler_module(props["Handler"]) in DATABASE_READERS:
            assert props["VpcConfig"] == {
                "SubnetIds": list(synthesized.settings.subnet_ids),
                "SecurityGroupIds": list(synthesized.settings.security_group_ids),
            }
            assert props["Timeout"] > 30
        else:
            assert "VpcConfig" not in props


# -- IAM --------------------------------------------------------------------------------------------------


def test_no_statement_allows_every_action_of_a_service(synthesized: Synthesized) -> None:
    for role, statements in role_policies(synthesized).items():
        for statement in statements:
            for action in as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (role, action)


def test_delete_is_allowed_only_to_cleanup_and_only_on_tagged_instances(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    # restore's cleanup, in restore and in the in-place restore (the copy, when a failure precedes the swap)
    cleanups = function_roles(synthesized, "cleanup_restore")
    assert len(cleanups) == 2
    # The rollback workflow's delete step (runbook Rollback Procedure step 2) is the only other deleter.
    rollback_delete = function_role(synthesized, "delete_restored_instance")
    # The drill's teardown and its daily sweep delete drill copies only (tests/infra/test_drill_stack.py).
    drill_deleters = {function_role(synthesized, "tear_down_drill_instance"), function_role(synthesized, "sweep_drill_instances")}
    assert roles_allowing(synthesized, "rds:DeleteDBInstance") == {*cleanups, rollback_delete, *drill_deleters}
    managed = {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}
    for role in (*cleanups, rollback_delete, *drill_deleters):
        (delete,) = [
            s for s in role_policies(synthesized)[role] if s["Effect"] == "Allow" and "rds:DeleteDBInstance" in as_list(s["Action"])
        ]
        expected = managed if role in (*cleanups, rollback_delete) else {**managed, "aws:ResourceTag/irisx-restore:purpose": "drill"}
        assert delete["Condition"] == {"StringEquals": expected}


def test_restores_must_tag_what_they_create(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    # restore's start step, in restore and in every workflow that reuses it (drill, in-place-restore)
    starts = function_roles(synthesized, "start_restore")
    assert len(starts) == 3
    for action in ("rds:RestoreDBInstanceToPointInTime", "rds:RestoreDBInstanceFromDBSnapshot"):
        assert roles_allowing(synthesized, action) == starts, action
    # tagging at creation: the restore's start step, the snapshot workflow's (its own snapshots), and the
    # rollback's delete and the restore's cleanup after a reverted cutover (the copy's tags copied to its final snapshot)
    # the in-place restore's final snapshot of production (tagged at creation too), and the swap's renames,
    # which tag what exists (only the swap's own keys; see test_no_role_may_tag_any_instance_but_the_restores_new_one)
    renames = {function_role(synthesized, s) for s in RENAME_STEPS}
    # and the step that marks the copy a cutover made production (only that marker; see the next test)
    marker = function_role(synthesized, "protect_new_production")
    assert roles_allowing(synthesized, "rds:AddTagsToResource") == {
        *starts,
        function_role(synthesized, "start_snapshot"),
        function_role(synthesized, "delete_restored_instance"),
        restore_cleanup_role(synthesized),
        function_role(synthesized, "start_final_snapshot"),
        *renames,
        marker,
    }
    for role in roles_allowing(synthesized, "rds:AddTagsToResource") - renames - {marker}:
        for statement in role_policies(synthesized)[role]:
            actions = as_list(statement["Action"])
            if statement["Effect"] == "Allow" and any(a.startswith("rds:Restore") or a == "rds:AddTagsToResource" for a in actions):
                assert statement["Condition"] == {
                    "StringEquals": {f"aws:RequestTag/{settings.management_tag_key}": settings.management_tag_value}
                }


def test_roles_that_change_rds_are_denied_the_source_instance(synthesized: Synthesized) -> None:
    source = f"arn:aws:rds:us-east-1:123456789012:db:{synthesized.settings.source_instance}"
    for step in ("start_restore", "cleanup_restore", "delete_restored_instance"):
        denies = [s for s in role_policies(synthesized)[function_role(synthesized, step)] if s["Effect"] == "Deny"]
        assert any("rds:DeleteDBInstance" in as_list(s["Action"]) and as_list(s["Resource"]) == [source] for s in denies), step


def test_every_role_that_can_tag_or_delete_in_rds_is_denied_changing_or_tagging_the_source(synthesized: Synthesized) -> None:
    source = f"arn:aws:rds:us-east-1:123456789012:db:{synthesized.settings.source_instance}"
    fenced = {"rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource"}
    risky = ("rds:AddTagsToResource", "rds:DeleteDBInstance", "rds:DeleteDBSnapshot", "rds:CreateDBSnapshot")
    roles = set().union(*(roles_allowing(synthesized, action) for action in risky))
    snapshot_roles = {function_role(synthesized, s) for s in ("start_snapshot", "apply_retention", "cleanup_snapshot")}
    assert snapshot_roles <= roles
    # The one named exception: the in-place swap's renames (ModifyDBInstance, and the role tags written
    # first) on production; deleting it and removing its tags stay denied (tests/infra/test_in_place_stack.py).
    renames = {function_role(synthesized, s) for s in RENAME_STEPS}
    assert renames <= roles
    for role in roles:
        denies = [s for s in role_policies(synthesized)[role] if s["Effect"] == "Deny" and as_list(s["Resource"]) == [source]]
        expected = fenced - {"rds:ModifyDBInstance", "rds:AddTagsToResource"} if role in renames else fenced
        assert any(expected <= set(as_list(s["Action"])) and "Condition" not in s for s in denies), role


def test_no_role_may_tag_any_instance_but_the_restores_new_one(synthesized: Synthesized) -> None:
    # The restore's start may tag db ARNs only with the management tag in the request (tag-on-create);
    # the snapshot workflow and the rollback's delete may tag snapshots only, never an instance.
    settings = synthesized.settings
    starts = function_roles(synthesized, "start_restore")
    # and the in-place swap's renames, which mark each instance's role before renaming it: the swap's
    # tag keys only (a Deny of any other key), on production by name, managed copies and the replaced production
    renames = {function_role(synthesized, s) for s in RENAME_STEPS}
    # and the cutover's ProtectNewProduction, which writes the production marker (that key, that value) on a managed copy
    marker = function_role(synthesized, "protect_new_production")
    db_prefix = f"arn:aws:rds:{settings.region}:{settings.account}:db:"
    for role in roles_allowing(synthesized, "rds:AddTagsToResource"):
        for statement in role_policies(synthesized)[role]:
            if statement["Effect"] != "Allow" or "rds:AddTagsToResource" not in as_list(statement["Action"]):
                continue
            resources = as_list(statement["Resource"])
            if role in renames:
                assert resources in ([f"{db_prefix}{settings.source_instance}"], [f"{db_prefix}*"]), resources
                if resources == [f"{db_prefix}*"]:
                    ((key, value),) = statement["Condition"]["StringEquals"].items()
                    assert (key, value) in (
                        (f"aws:ResourceTag/{settings.management_tag_key}", settings.management_tag_value),
                        ("aws:ResourceTag/irisx-restore:role", "replaced-production"),
                    )
                assert any(
                    s["Effect"] == "Deny"
                    and as_list(s["Action"]) == ["rds:AddTagsToResource"]
                    and s["Condition"]
                    == {
                        "ForAnyValue:StringNotEquals": {
                            "aws:TagKeys": ["irisx-restore:role", "irisx-restore:swapped-by", "irisx-restore:swapped-at"]
                        }
                    }
                    for s in role_policies(synthesized)[role]
                ), role
            elif role == marker:
                assert resources == [f"{db_prefix}*"], resources
                assert statement["Condition"] == {
                    "StringEquals": {
                        f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value,
                        "aws:RequestTag/irisx-restore:role": "production",
                    },
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["irisx-restore:role"]},
                }
            elif role in starts:
                assert resources == [f"{db_prefix}*"], resources
            else:
                assert all(":snapshot:" in r for r in resources), (role, resources)
    snapshot_tagging = [
        s
        for s in role_policies(synthesized)[function_role(synthesized, "start_snapshot")]
        if s["Effect"] == "Allow" and "rds:AddTagsToResource" in as_list(s["Action"])
    ]
    assert [as_list(s["Resource"]) for s in snapshot_tagging] == [
        [f"arn:aws:rds:{settings.region}:{settings.account}:snapshot:{settings.snapshot.prefix}-*"]
    ]


def test_only_the_steps_that_read_a_database_read_its_secret(synthesized: Synthesized) -> None:
    validates = function_roles(synthesized, "validate_restore")
    assert len(validates) == 3  # restore's, the drill's and the in-place restore's
    readers = validates | function_roles(synthesized, "warm_restored_copy")
    assert roles_allowing(synthesized, "secretsmanager:GetSecretValue") == readers
    secret = synthesized.settings.db_secret_arn
    for statement in (s for role in readers for s in role_policies(synthesized)[role]):
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            assert as_list(statement["Resource"]) == [secret, f"{secret}-??????"]


# -- cdk-nag and cfn-lint ---------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(synthesized: Synthesized) -> None:
    report_path = synthesized.outdir / "validation-report.json"
    violations = []
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        violations = [
            (v["ruleName"], [c["constructPath"] for c in v["violatingConstructs"]])
            for plugin in report["pluginReports"]
            if plugin["pluginName"] == "AwsSolutions"
            for v in plugin["violations"]
        ]
    assert violations == []
    assert synthesized.synth_error is None


def test_every_nag_acknowledgement_gives_a_reason(synthesized: Synthesized) -> None:
    acknowledgements = {
        (construct.node.path, rule): reason
        for construct in synthesized.app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }
    assert acknowledgements, "expected the X-Ray and describe wildcards to be acknowledged"
    for (path, rule), reason in acknowledgements.items():
        assert len(reason.strip()) >= 20, (path, rule, reason)
    # nothing but IAM5 wildcards, the pinned runtime, and the dead-letter queues of the drill schedules and of
    # the status-change function (DLQs of Scheduler targets and Lambda destinations, which SQS3 cannot see) is acknowledged
    assert {re.sub(r"\[.*", "", rule) for _, rule in acknowledgements} <= {
        "Annotation::AwsSolutions-IAM5",
        "Annotation::AwsSolutions-L1",
        "Annotation::AwsSolutions-SQS3",
        "Annotation::AwsSolutions-S1",
    }
    sqs3 = [path for path, rule in acknowledgements if rule.endswith("AwsSolutions-SQS3")]
    dead_letter_queues = ["irisx-restore-runbook/AbandonedExecutions/DeadLetters", "irisx-restore-runbook/Drill/ScheduleDeadLetters"]
    assert sorted(sqs3) == dead_letter_queues, sqs3
    # the recordings work bucket keeps no access logs (the journal and execution history are its trail)
    s1 = [path for path, rule in acknowledgements if rule.endswith("AwsSolutions-S1")]
    assert s1 == ["irisx-restore-runbook/RecordingsRestore/WorkBucket"], s1


# W3005 "dependency already enforced by a GetAtt": the Lambda and Step Functions L2 constructs add an
# explicit DependsOn on their role next to the Role GetAtt. Redundant, harmless, and not ours to remove.
CFN_LINT_IGNORED = ["W3005"]


def test_cfn_lint_reports_nothing(synthesized: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(Path(synthesized.template_path), config=ManualArgs(regions=["us-east-1"], ignore_checks=CFN_LINT_IGNORED))
    assert [f"{m.rule.id} {m.path} {m.message}" for m in matches] == []
