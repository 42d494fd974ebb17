"""Executions that time out or are aborted never reach their own journal step: an EventBridge rule
sends those status changes of this stack's state machines to one function that journals them,
releases the lock the execution held and notifies (lambdas/restore_runbook/journal/abandoned.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import nag
from stacks.arns import partition_of
from stacks.journal import Journal
from stacks.settings import StackSettings
from stacks.workflow import FunctionDefaults, Workflow

HANDLER = "restore_runbook.journal.handlers.record_abandoned_execution.handler"
STATUSES = ["TIMED_OUT", "ABORTED"]


class AbandonedExecutions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        defaults: FunctionDefaults,
        journal: Journal,
        state_machines: Sequence[sfn.IStateMachine],
    ) -> None:
        super().__init__(scope, construct_id)
        executions = f"arn:{partition_of(settings.region)}:states:{settings.region}:{settings.account}:execution:{settings.name_prefix}-*"
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{settings.name_prefix}: journal, unlock and notify TIMED_OUT/ABORTED executions",
        )
        for statement in (
            iam.PolicyStatement(
                actions=["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[journal.table.table_arn],
            ),
            iam.PolicyStatement(actions=["sns:Publish"], resources=[journal.topic.topic_arn]),
            iam.PolicyStatement(actions=["states:GetExecutionHistory"], resources=[executions]),
        ):
            role.add_to_policy(statement)
        log_group = logs.LogGroup(self, "Logs", retention=Workflow.LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        log_group.grant_write(role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=defaults.code,
            handler=HANDLER,
            runtime=Workflow.RUNTIME,
            architecture=Workflow.ARCHITECTURE,
            layers=list(defaults.layers),
            role=role,
            log_group=log_group,
            logging_format=Workflow.LOGGING_FORMAT,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(60),
            memory_size=256,
            environment={
                **defaults.environment,
                "POWERTOOLS_SERVICE_NAME": f"{settings.name_prefix}-abandoned",
                "POWERTOOLS_METRICS_NAMESPACE": settings.name_prefix,
            },
            # "<name> workflow: <handler>" like every step function; not a state machine step, though.
            description=f"abandoned workflow: {HANDLER} (journal, unlock and notify executions that timed out or were aborted)",
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"{settings.name_prefix}: executions of this stack's workflows that ended {' or '.join(STATUSES)}",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": STATUSES, "stateMachineArn": [m.state_machine_arn for m in state_machines]},
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=8, max_event_age=Duration.hours(6))],
        )
        nag.acknowledge(role, nag.wildcard_resource("*"), nag.XRAY_REASON)
        nag.acknowledge(
            role,
            nag.wildcard_resource(executions),
            "The execution is named only by the event; GetExecutionHistory is limited to executions of this stack's state machines",
        )
        nag.acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12: the dependency layer is built for cp312 and the local rehearsal runs 3.12",
        )
