"""The stack: shared Lambda code, the dependency layer, the network, the journal, and every workflow
of the registry (stacks/workflows/), each with its output and watched for abandoned executions."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import bytecode, functions, layer
from stacks.abandoned import AbandonedExecutions
from stacks.app_hosts import AppHostDocuments
from stacks.functions import FunctionDefaults
from stacks.journal import Journal
from stacks.settings import StackSettings
from stacks.workflows import WORKFLOWS, RegisteredWorkflow, WorkflowContext

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SOURCE = REPO_ROOT / "lambdas"
STATEMACHINES = REPO_ROOT / "statemachines"


class RestoreRunbookStack(Stack):
    """`layer_asset_path`, when given, is a directory already holding the layer's `python/`; without it
    synth builds the layer from requirements.txt (stacks/layer.py). `statemachines_path` is where the
    `*.asl.json` files and `functions.json` are read from."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        layer_asset_path: Path | str | None = None,
        statemachines_path: Path | str = STATEMACHINES,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.settings = settings
        statemachines = Path(statemachines_path)
        # The journal and the topic come first: every step function is told where they are.
        self.journal = Journal(self, "Journal", settings=settings)
        self.defaults = FunctionDefaults(
            code=self._build_code(),
            layers=[self._build_layer(layer_asset_path)],
            environment={**settings.lambda_environment(), **self.journal.environment()},
            name_prefix=settings.name_prefix,
            **self._build_network(),
        )
        # The API hosts' own SSM documents, which the cutover and rollback steps send.
        self.app_host_documents = AppHostDocuments(self, "AppHostDocuments", settings=settings)
        self.workflows: dict[str, RegisteredWorkflow] = {}
        context = WorkflowContext(
            settings=settings,
            functions=self.defaults,
            journal=self.journal,
            manifest=json.loads((statemachines / "functions.json").read_text(encoding="utf-8")),
            statemachines=statemachines,
            built=self.workflows,
        )
        for workflow in WORKFLOWS:
            self.workflows[workflow.NAME] = workflow(self, context)
        # Executions that time out or are aborted never reach their own journal step.
        self.abandoned = AbandonedExecutions(
            self,
            "AbandonedExecutions",
            settings=settings,
            defaults=self.defaults,
            journal=self.journal,
            state_machines=[workflow.state_machine for workflow in self.workflows.values()],
        )
        for workflow in self.workflows.values():
            workflow.add_outputs()
        self.journal.add_outputs()

    def _build_code(self) -> lambda_.Code:
        # Handlers are pure Python and third-party packages live in the layer.
        missing = bytecode.missing_warning()
        if missing:
            cdk.Annotations.of(self).add_warning_v2("restore-runbook:no-bytecode", missing)
        return bytecode.function_code(LAMBDA_SOURCE)

    def _build_layer(self, layer_path: Path | str | None) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            "DependencyLayer",
            code=layer.bundled_code() if layer_path is None else layer.prebuilt_code(Path(layer_path)),
            compatible_runtimes=[functions.RUNTIME],
            compatible_architectures=[functions.ARCHITECTURE],
            description="requirements.txt for the runbook's Lambda steps",
        )

    def _build_network(self) -> dict[str, object]:
        # Imported from settings, never looked up, so synth needs no AWS credentials.
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id=self.settings.vpc_id,
            availability_zones=list(self.settings.availability_zones),
            private_subnet_ids=list(self.settings.subnet_ids),
        )
        security_groups = [
            ec2.SecurityGroup.from_security_group_id(self, f"SecurityGroup{index}", group_id, mutable=False)
            for index, group_id in enumerate(self.settings.security_group_ids)
        ]
        return {"vpc": vpc, "security_groups": security_groups}
