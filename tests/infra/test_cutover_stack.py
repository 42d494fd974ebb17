"""What the stack guarantees for the API hosts: the project's own SSM documents, scoped SendCommand, the rollback workflow."""

from __future__ import annotations

import json
import re

import pytest

from stacks import ssm_documents
from stacks.workflow import handler_module

from .conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra

SEND_COMMAND_STEPS = {
    "start_cutover",
    "check_app_health",
    "revert_cutover",
    "stop_app_hosts",
    "point_hosts_back",
    "restart_app",
    # the in-place restore's restart after the swap or the rename-back
    "start_app_hosts",
    # the in-place restore's read of DB_HOST before the stop, and its stop on the copy before renaming back
    "read_hosts_db_host",
    "stop_started_app",
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements_by_role(synthesized: Synthesized) -> dict[str, list[dict]]:
    by_role: dict[str, list[dict]] = {}
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            by_role.setdefault(role["Ref"], []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return by_role


def step_of_role(synthesized: Synthesized) -> dict[str, str]:
    return {
        f["Properties"]["Role"]["Fn::GetAtt"][0]: handler_module(f["Properties"]["Handler"])
        for f in synthesized.of_type("AWS::Lambda::Function").values()
    }


def test_the_documents_are_command_documents_built_from_the_scripts_with_patterned_parameters(synthesized: Synthesized) -> None:
    documents = {d["Properties"]["Name"]: d["Properties"] for d in synthesized.of_type("AWS::SSM::Document").values()}
    assert set(documents) == {"irisx-restore-set-db-host", "irisx-restore-app-control"}
    for document in ssm_documents.DOCUMENTS:
        props = documents[document.name("irisx-restore")]
        assert props["DocumentType"] == "Command"
        content = props["Content"]
        assert content["schemaVersion"] == "2.2"
        (step,) = content["mainSteps"]
        assert step["action"] == "aws:runShellScript"
        run = "\n".join(step["inputs"]["runCommand"])
        # the script file itself is embedded, unchanged
        assert document.script_path().read_text().rstrip("\n") in run
        # each parameter reaches the script only as an environment variable, inside single quotes
        for name in content["parameters"]:
            uses = re.findall(r"[^\n]*\{\{ *" + name + r" *\}\}[^\n]*", run)
            assert len(uses) == 1 and re.fullmatch(r"export [A-Z_]+='\{\{ " + name + r" \}\}'", uses[0]), uses
    set_db_host = documents["irisx-restore-set-db-host"]["Content"]["parameters"]
    assert set(set_db_host) == {"DbHost", "EnvFile", "AppName"}
    assert all("allowedPattern" in spec for spec in set_db_host.values())
    app_control = documents["irisx-restore-app-control"]["Content"]["parameters"]
    assert app_control["Action"]["allowedValues"] == ["stop", "restart", "health"]
    for spec in (*set_db_host.values(), *app_control.values()):
        pattern = spec.get("allowedPattern")
        if pattern:
            # no value matching the pattern can leave its single quotes or start a command
            for bad in ("'", '"', ";", "$", "`", "\\", " ", "\n", "|", "&", "(", "<", "*"):
                assert not re.search(pattern, f"a{bad}b"), (pattern, bad)


def test_send_command_is_limited_to_the_projects_documents_and_tagged_instances(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    steps = step_of_role(synthesized)
    document_arns = {f"arn:aws:ssm:us-east-1:123456789012:document/{d.name('irisx-restore')}" for d in ssm_documents.DOCUMENTS}
    senders = set()
    for role, statements in statements_by_role(synthesized).items():
        for statement in statements:
            if statement["Effect"] != "Allow" or "ssm:SendCommand" not in as_list(statement["Action"]):
                continue
            senders.add(steps[role])
            assert as_list(statement["Action"]) == ["ssm:SendCommand"]
            resources = as_list(statement["Resource"])
            if any(":instance/" in r for r in resources):
                assert resources == ["arn:aws:ec2:us-east-1:123456789012:instance/*"]
                assert statement["Condition"] == {
                    "StringEquals": {f"ssm:resourceTag/{settings.app_host_tag_key}": settings.app_host_tag_value}
                }
            else:
                assert set(resources) <= document_arns, resources
    assert senders == SEND_COMMAND_STEPS


def test_no_aws_run_shell_script_anywhere_in_what_is_deployed() -> None:
    for folder in ("stacks", "lambdas", "statemachines", "ssm"):
        for path in (REPO_ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".json", ".sh"}:
                assert "AWS-RunShellScript" not in path.read_text(encoding="utf-8"), path


def test_the_template_sends_no_aws_run_shell_script(synthesized: Synthesized) -> None:
    assert "AWS-RunShellScript" not in json.dumps(synthesized.template.to_json())


def test_rollback_workflow_is_deployed_with_its_own_roles_and_only_it_and_cleanup_delete(synthesized: Synthesized) -> None:
    machines = {m["Properties"]["StateMachineName"]: m for m in synthesized.of_type("AWS::StepFunctions::StateMachine").values()}
    rollback = machines["irisx-restore-rollback"]["Properties"]
    assert json.loads(rollback["DefinitionString"]) == json.loads((REPO_ROOT / "statemachines/rollback.asl.json").read_text())
    outputs = synthesized.template.to_json()["Outputs"]
    assert "RollbackStateMachineArn" in outputs
    steps = step_of_role(synthesized)
    deleters = {
        steps[role]
        for role, statements in statements_by_role(synthesized).items()
        for s in statements
        if s["Effect"] == "Allow" and "rds:DeleteDBInstance" in as_list(s["Action"])
    }
    assert deleters <= {"cleanup_restore", "delete_restored_instance", "tear_down_drill_instance", "sweep_drill_instances"}
    for role, statements in statements_by_role(synthesized).items():
        if steps.get(role) == "delete_restored_instance":
            (delete,) = [s for s in statements if s["Effect"] == "Allow" and "rds:DeleteDBInstance" in as_list(s["Action"])]
            settings = synthesized.settings
            assert delete["Condition"] == {
                "StringEquals": {f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value}
            }
            assert any(s["Effect"] == "Deny" and "rds:DeleteDBInstance" in as_list(s["Action"]) for s in statements)


def test_cutover_steps_can_find_their_own_commands_and_protect_only_a_managed_copy(synthesized: Synthesized) -> None:
    statements = statements_by_role(synthesized)
    steps = step_of_role(synthesized)

    def allowed(step: str, action: str) -> list[dict]:
        return [
            s
            for role, module in steps.items()
            if module == step
            for s in statements.get(role, [])
            if s["Effect"] == "Allow" and action in as_list(s["Action"])
        ]

    # a retried start looks for the command it already sent; a revert without a record finds the hosts
    assert allowed("start_cutover", "ssm:ListCommands")
    assert allowed("revert_cutover", "ec2:DescribeInstances")
    # deletion protection for the new production instance: only on copies carrying the management tag
    modify = allowed("protect_new_production", "rds:ModifyDBInstance")
    assert modify and all(s["Condition"]["StringEquals"] == {"aws:ResourceTag/irisx-restore:managed-by": "restore-runbook"} for s in modify)
    denies = [
        s
        for role, module in steps.items()
        if module == "protect_new_production"
        for s in statements.get(role, [])
        if s["Effect"] == "Deny" and "rds:ModifyDBInstance" in as_list(s["Action"])
    ]
    assert any("db:irisx-prod-rds-postgres" in json.dumps(s["Resource"]) for s in denies)
    # and no health step may modify RDS: it only reads what the hosts answer
    assert not allowed("check_app_health", "rds:ModifyDBInstance")
