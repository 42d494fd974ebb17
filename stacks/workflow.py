"""A workflow: one ASL file from `statemachines/`, the Lambda steps it references, its state machine.

Every workflow (restore, rollback, snapshot, drill, ...) is built the same way, so this construct
knows nothing about RDS: the caller says which IAM statements each step needs. The ASL deployed is
the file on disk, loaded with `DefinitionBody.from_string` and substitutions, so the definition in
the template is the one the workflow tests execute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from restore_runbook.contract import state_machine_name
from stacks import nag
from stacks.functions import LOG_RETENTION, FunctionDefaults, FunctionSpec, StepPermissions

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders_in(asl_text: str) -> set[str]:
    """Names of the `${Placeholders}` an ASL definition expects to be substituted."""
    return set(PLACEHOLDER.findall(asl_text))


def handler_module(handler: str) -> str:
    """`restore_runbook.restore.handlers.start_restore.handler` -> `start_restore`: the step's short name."""
    parts = handler.split(".")
    if len(parts) < 2:
        raise ValueError(f"handler {handler!r} is not a dotted path like package.module.function")
    return parts[-2]


class Workflow(Construct):
    """One state machine and its Lambda steps.

    `manifest` maps placeholder -> handler path (`statemachines/functions.json`); only the entries the
    ASL references become functions. `steps` maps a handler's module name -> its permissions; a
    referenced step without permissions is an error, so no function is ever deployed unscoped.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow_name: str,
        asl_path: Path,
        manifest: Mapping[str, str],
        steps: Mapping[str, StepPermissions],
        defaults: FunctionDefaults,
        extra_substitutions: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.workflow_name = workflow_name
        self._defaults = defaults
        asl_text = self._read_asl(asl_path)
        extra = dict(extra_substitutions or {})
        self.handlers = self._referenced_handlers(asl_path, asl_text, manifest, extra)
        self.functions: dict[str, lambda_.Function] = {
            placeholder: self._build_function(handler, self._permissions_for(steps, handler))
            for placeholder, handler in sorted(self.handlers.items())
        }
        self.state_machine = self._build_state_machine(asl_text, extra)
        self._grant_invoke()

    @staticmethod
    def _read_asl(asl_path: Path) -> str:
        if not asl_path.is_file():
            raise ValueError(f"state machine definition {asl_path} does not exist")
        text = asl_path.read_text(encoding="utf-8")
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"state machine definition {asl_path} is not valid JSON: {exc}") from exc
        return text

    @staticmethod
    def _referenced_handlers(asl_path: Path, asl_text: str, manifest: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
        wanted = placeholders_in(asl_text)
        unknown = sorted(wanted - set(manifest) - set(extra))
        if unknown:
            raise ValueError(
                f"{asl_path.name} references {', '.join(unknown)}, which statemachines/functions.json does not map to a handler"
            )
        return {name: manifest[name] for name in wanted if name in manifest}

    def _permissions_for(self, steps: Mapping[str, StepPermissions], handler: str) -> StepPermissions:
        module = handler_module(handler)
        if module not in steps:
            raise ValueError(
                f"workflow {self.workflow_name!r} uses step {module!r} ({handler}) but grants it no permissions; "
                "add its IAM statements to the workflow's construct"
            )
        return steps[module]

    def _build_function(self, handler: str, permissions: StepPermissions) -> lambda_.Function:
        module = handler_module(handler)
        spec = FunctionSpec(
            handler=handler,
            service=self.workflow_name,
            description=f"{self.workflow_name} workflow: {handler}",
            role_description=f"{self._defaults.name_prefix} {self.workflow_name}: {module} step",
            permissions=permissions,
        )
        return self._defaults.build(self, "".join(part.title() for part in module.split("_")), spec)

    def _build_state_machine(self, asl_text: str, extra: Mapping[str, str]) -> sfn.StateMachine:
        name = state_machine_name(self._defaults.name_prefix, self.workflow_name)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing per log group.
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_string(asl_text),
            definition_substitutions={
                **extra,
                **{placeholder: fn.function_arn for placeholder, fn in self.functions.items()},
            },
            # States carry identifiers and reports only (never the DB password), so execution data is
            # safe to log and is what an on-call engineer needs when a step fails.
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        nag.acknowledge(
            state_machine,
            nag.wildcard_resource("*"),
            "Log delivery (logs:CreateLogDelivery etc.) and X-Ray calls support no resource-level permissions",
        )
        return state_machine

    def _grant_invoke(self) -> None:
        """One statement naming each step's function by its ARN: the definition invokes them unqualified
        (the substitutions above), so no version or alias (`<arn>:*`, which grant_invoke adds) is needed,
        and one statement keeps the role's inline policy under IAM's size limit for the workflows with
        thirty functions (past it CDK spills statements into a separate managed policy)."""
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn for fn in self.functions.values()])
        )

    def add_arn_output(self, output_id: str) -> CfnOutput:
        """The output an operator CLI looks the state machine up by."""
        return CfnOutput(
            Stack.of(self),
            output_id,
            value=self.state_machine.state_machine_arn,
            description=f"ARN of the {self.workflow_name} state machine",
        )
