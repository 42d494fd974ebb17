"""What every entry of the workflow registry is: a name, its step permissions, its outputs.

A workflow is `statemachines/<NAME>.asl.json`, the handlers `functions.json` maps its placeholders
to, and a subclass of `RegisteredWorkflow` that says what each step may do in IAM. The stack builds
every class in `stacks.workflows.WORKFLOWS` the same way; the journal's steps (record start, lock,
record outcome) are every workflow's, so a subclass lists only its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from aws_cdk import CfnOutput
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.functions import FunctionDefaults, StepPermissions
from stacks.journal import Journal
from stacks.permissions.journal import journal_steps
from stacks.permissions.rds import RdsArns
from stacks.settings import StackSettings
from stacks.workflow import Workflow
from stacks.workflows.budgets import check_outlasts_its_waits


@dataclass(frozen=True)
class WorkflowContext:
    """What the stack hands every workflow; `manifest` is `statemachines/functions.json`, read once."""

    settings: StackSettings
    functions: FunctionDefaults
    journal: Journal
    manifest: Mapping[str, str]
    statemachines: Path
    # The workflows built so far, in registry order (the stack fills it): a workflow that uses another's
    # resources (the drill uses recordings-restore's work bucket) is listed after it.
    built: Mapping[str, RegisteredWorkflow] = field(default_factory=dict)

    def earlier(self, name: str) -> RegisteredWorkflow:
        if name not in self.built:
            raise ValueError(f"workflow {name!r} must be built before the one asking for it: list it earlier in stacks/workflows/WORKFLOWS")
        return self.built[name]


def title(name: str) -> str:
    """`in-place-restore` -> `InPlaceRestore`."""
    return "".join(part.title() for part in name.split("-"))


class RegisteredWorkflow(Construct):
    # The workflow's name: its ASL file, its state machine `<name_prefix>-<NAME>`, its output.
    NAME: ClassVar[str]

    @classmethod
    def construct_id(cls) -> str:
        return title(cls.NAME)

    @classmethod
    def output_id(cls) -> str:
        """The stack output `restorectl` finds the state machine by, e.g. `RestoreStateMachineArn`."""
        return f"{title(cls.NAME)}StateMachineArn"

    def __init__(self, scope: Construct, context: WorkflowContext) -> None:
        super().__init__(scope, self.construct_id())
        asl_path = context.statemachines / f"{self.NAME}.asl.json"
        check_outlasts_its_waits(self.NAME, context.settings.lambda_environment(), asl_path)
        # Before the Workflow: `steps()` may need the journal, a bucket or the function defaults.
        self.context = context
        self.settings = context.settings
        self.arns = RdsArns.for_settings(context.settings)
        defaults = self.function_defaults(context)
        self.workflow = Workflow(
            self,
            "Workflow",
            workflow_name=self.NAME,
            asl_path=asl_path,
            manifest=context.manifest,
            steps={**journal_steps(context.journal, context.settings, self.NAME), **self.steps()},
            defaults=defaults,
            extra_substitutions=self.substitutions(),
        )
        self.state_machine: sfn.StateMachine = self.workflow.state_machine
        self.functions: dict[str, lambda_.Function] = self.workflow.functions

    def steps(self) -> Mapping[str, StepPermissions]:
        """Handler module name -> what that step may do, for every step of the ASL but the journal's."""
        raise NotImplementedError(f"{type(self).__name__} must say what each of its steps may do")

    def function_defaults(self, context: WorkflowContext) -> FunctionDefaults:
        """What this workflow's functions are built with: the stack's defaults, or those plus what only
        this workflow's functions need (a bucket only it has, say). Called before `steps()`."""
        return context.functions

    def substitutions(self) -> Mapping[str, str]:
        """`${Placeholders}` of the ASL that are not functions (a bucket name, a topic)."""
        return {}

    def add_outputs(self) -> list[CfnOutput]:
        return [self.workflow.add_arn_output(self.output_id())]
