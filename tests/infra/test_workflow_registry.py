"""Every workflow is an entry of one registry: the stack builds each the same way, with its output,
and watches every one of them for abandoned executions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks import restore_runbook_stack
from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings
from stacks.workflows import WORKFLOWS, RegisteredWorkflow

from .conftest import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra


def test_every_asl_file_is_a_registered_workflow_and_every_registered_workflow_has_one() -> None:
    on_disk = {path.name.removesuffix(".asl.json") for path in (REPO_ROOT / "statemachines").glob("*.asl.json")}
    assert {workflow.NAME for workflow in WORKFLOWS} == on_disk


def test_each_workflow_has_its_state_machine_and_the_output_the_cli_reads(synthesized: Synthesized) -> None:
    outputs = synthesized.template.to_json()["Outputs"]
    machines = {m["Properties"]["StateMachineName"]: k for k, m in synthesized.of_type("AWS::StepFunctions::StateMachine").items()}
    # restorectl/start.py finds the state machines by these output names
    assert {w.output_id() for w in WORKFLOWS} == {
        "RestoreStateMachineArn",
        "RollbackStateMachineArn",
        "SnapshotStateMachineArn",
        "DrillStateMachineArn",
        "RecordingsRestoreStateMachineArn",
        "InPlaceRestoreStateMachineArn",
    }
    for workflow in WORKFLOWS:
        assert outputs[workflow.output_id()]["Value"] == {"Ref": machines[f"irisx-restore-{workflow.NAME}"]}


class ToyDrillWorkflow(RegisteredWorkflow):
    """A workflow added the way the next ones will be: an ASL file, a handler, this class."""

    NAME = "toy-drill"

    def steps(self) -> dict[str, Any]:
        return {}  # its only step is the journal's, which every workflow gets


def test_a_new_workflow_needs_only_its_asl_file_its_handlers_and_its_registry_entry(
    tmp_path: Path, runbook_context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the real ASL files plus one more, whose one step is already in functions.json
    machines = tmp_path / "statemachines"
    shutil.copytree(REPO_ROOT / "statemachines", machines)
    asl = {
        "Comment": "toy",
        "TimeoutSeconds": 60,
        "StartAt": "RecordStart",
        "States": {"RecordStart": {"Type": "Task", "Resource": "${RecordStartFunctionArn}", "End": True}},
    }
    (machines / "toy-drill.asl.json").write_text(json.dumps(asl))
    (tmp_path / "layer" / "python").mkdir(parents=True)
    # And the registry listing it
    monkeypatch.setattr(restore_runbook_stack, "WORKFLOWS", (*WORKFLOWS, ToyDrillWorkflow))
    # When the stack is built
    settings = StackSettings.from_context(runbook_context)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = RestoreRunbookStack(
        app,
        "Registry",
        settings=settings,
        layer_asset_path=tmp_path / "layer",
        statemachines_path=machines,
        env=cdk.Environment(account=settings.account, region=settings.region),
    )
    template = Template.from_stack(stack).to_json()
    # Then it has its state machine, its journal function, its output, and the abandoned-execution rule watches it
    state_machines = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::StepFunctions::StateMachine"}
    (toy_id,) = [k for k, m in state_machines.items() if m["Properties"]["StateMachineName"] == "irisx-restore-toy-drill"]
    assert template["Outputs"]["ToyDrillStateMachineArn"]["Value"] == {"Ref": toy_id}
    functions = [
        v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function" and k.startswith("ToyDrill")
    ]
    assert [f["Handler"] for f in functions] == ["restore_runbook.journal.handlers.record_start.handler"]
    assert functions[0]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "irisx-restore-toy-drill"
    (rule,) = [v for v in template["Resources"].values() if v["Type"] == "AWS::Events::Rule"]
    assert sorted(r["Ref"] for r in rule["Properties"]["EventPattern"]["detail"]["stateMachineArn"]) == sorted(state_machines)
