"""Every Lambda function of the stack is built here: workflow steps and the abandoned-execution handler.

One runtime, architecture, logging and tracing configuration, one role and one log group per
function, the same environment everywhere: a function added anywhere cannot drift from the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from restore_runbook.contract import ENV_METRICS_NAMESPACE, ENV_SERVICE_NAME
from stacks import nag

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
LOGGING_FORMAT = lambda_.LoggingFormat.JSON
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


@dataclass(frozen=True)
class StepPermissions:
    """What one function may do, why any wildcard in it is acceptable, and how long it may run."""

    statements: Sequence[iam.PolicyStatement]
    # nag rule id -> reason; every wildcard must be justified here, next to the statement that has it.
    acknowledgements: Mapping[str, str] = field(default_factory=dict)
    timeout: Duration = field(default_factory=lambda: Duration.seconds(30))
    memory_size: int = 256
    in_vpc: bool = False


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between two functions: the handler, what it may do, how it describes itself."""

    handler: str
    # POWERTOOLS_SERVICE_NAME is `<name_prefix>-<service>`.
    service: str
    description: str
    role_description: str
    permissions: StepPermissions


@dataclass(frozen=True)
class FunctionDefaults:
    """What every function of the stack shares."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    environment: Mapping[str, str]
    name_prefix: str
    vpc: ec2.IVpc | None = None
    security_groups: Sequence[ec2.ISecurityGroup] = ()

    def build(self, scope: Construct, name: str, spec: FunctionSpec) -> lambda_.Function:
        """`<name>Logs`, `<name>Role` and `<name>Function` under `scope`."""
        log_group = logs.LogGroup(scope, f"{name}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        role = iam.Role(
            scope,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=spec.role_description,
        )
        for statement in spec.permissions.statements:
            role.add_to_policy(statement)
        log_group.grant_write(role)
        vpc_props = {}
        if spec.permissions.in_vpc:
            if self.vpc is None:
                raise ValueError(f"step {spec.handler} must run in the VPC, but no VPC was given")
            vpc_props = {
                "vpc": self.vpc,
                "vpc_subnets": ec2.SubnetSelection(subnets=self.vpc.private_subnets),
                "security_groups": list(self.security_groups),
            }
            _grant_network_interfaces(role)
        function = lambda_.Function(
            scope,
            f"{name}Function",
            code=self.code,
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            layers=list(self.layers),
            role=role,
            log_group=log_group,
            logging_format=LOGGING_FORMAT,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=spec.permissions.timeout,
            memory_size=spec.permissions.memory_size,
            environment={
                **self.environment,
                ENV_SERVICE_NAME: f"{self.name_prefix}-{spec.service}",
                # The abandoned-execution handler strips this prefix from a state machine's name.
                ENV_METRICS_NAMESPACE: self.name_prefix,
            },
            description=spec.description,
            **vpc_props,
        )
        wildcard_reason = nag.XRAY_REASON
        if spec.permissions.in_vpc:
            wildcard_reason += "; the Lambda ENI calls for VPC placement take no resource ARNs either"
        nag.acknowledge(role, nag.wildcard_resource("*"), wildcard_reason)
        nag.acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12: the dependency layer is built for cp312 and both assets carry CPython 3.12 bytecode",
        )
        for rule_id, reason in spec.permissions.acknowledgements.items():
            nag.acknowledge(role, rule_id, reason)
        return function


def _grant_network_interfaces(role: iam.Role) -> None:
    # What AWSLambdaVPCAccessExecutionRole grants, inline: ENI calls take no resource ARNs.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=["*"],
        )
    )
