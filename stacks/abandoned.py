"""Executions that time out or are aborted never reach their own journal step, and one whose end
record could not be written leaves it RUNNING: an EventBridge rule sends every end of this stack's
state machines to one function that journals the abandoned ones (releasing the lock the execution
held and notifying) and reconciles a RUNNING record of one that ended
(lambdas/restore_runbook/journal/abandoned.py and reconcile.py)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from restore_runbook.contract import STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS
from stacks import nag
from stacks.dead_letters import dead_letter_alarms, dead_letter_queue
from stacks.functions import FunctionDefaults, FunctionSpec, StepPermissions
from stacks.journal import INDEX, Journal
from stacks.permissions.journal import every_execution_key, every_lock_key, every_prefix_registry_key, executions_arn
from stacks.settings import StackSettings

HANDLER = "restore_runbook.journal.handlers.record_abandoned_execution.handler"
# Every end: TIMED_OUT and ABORTED to journal them; SUCCEEDED and FAILED to reconcile a record left RUNNING.
STATUSES = ["TIMED_OUT", "ABORTED", "SUCCEEDED", "FAILED"]


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
        executions = executions_arn(settings)
        permissions = StepPermissions(
            statements=[
                # Any workflow's execution record, and any lock (the one the ended execution held: released,
                # or kept and marked for recovery).
                journal.table_statement(["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"], every_execution_key()),
                journal.table_statement(["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"], every_lock_key()),
                # A recordings lock's entry in its bucket's registry of held prefixes, released with the lock.
                journal.table_statement(["dynamodb:UpdateItem"], every_prefix_registry_key(settings)),
                # The locks an execution holds, by holder: only the index's LOCK partition is read.
                iam.PolicyStatement(
                    actions=["dynamodb:Query"],
                    resources=[f"{journal.table.table_arn}/index/{INDEX}"],
                    conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["LOCK"]}, "Null": {"dynamodb:LeadingKeys": "false"}},
                ),
                *journal.publish_statements(),
                # How an execution whose record reads RUNNING really ended, whether it was redriven since, and (the
                # history) the last state it entered, or its first attempt entered (journal/attempts.py).
                iam.PolicyStatement(actions=["states:GetExecutionHistory", "states:DescribeExecution"], resources=[executions]),
            ],
            acknowledgements={
                nag.wildcard_resource(executions): (
                    "The execution is named only by the event; GetExecutionHistory and DescribeExecution are limited to "
                    "executions of this stack's state machines"
                )
            },
            # journal/notice.py reads a notice still pending this long after its write as one never sent.
            timeout=Duration.seconds(STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS),
        )
        # "<name> workflow: <handler>" like every step function; not a state machine step, though.
        description = (
            f"abandoned workflow: {HANDLER} (journal, unlock and notify executions that timed out or were aborted; "
            "reconcile RUNNING records of ended ones)"
        )
        spec = FunctionSpec(
            handler=HANDLER,
            service="abandoned",
            description=description,
            role_description=f"{settings.name_prefix}: journal, unlock and notify TIMED_OUT/ABORTED executions, reconcile ended ones",
            permissions=permissions,
        )
        # No name: "Logs", "Role", "Function" under this construct keep the logical ids already deployed.
        self.function = defaults.build(self, "", spec)
        # An invocation that fails every retry (the table or the topic down, a notice it could not send:
        # journal/notice.py) lands here rather than vanishing; so does an event EventBridge could not deliver.
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", dead_letters_of="the status-change function (its failed invocations and undeliverable events)"
        )
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letters), retry_attempts=2, max_event_age=Duration.hours(6)
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"{settings.name_prefix}: executions of this stack's workflows that ended ({', '.join(STATUSES)})",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": STATUSES, "stateMachineArn": [m.state_machine_arn for m in state_machines]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.function, retry_attempts=8, max_event_age=Duration.hours(6), dead_letter_queue=self.dead_letters
                )
            ],
        )
        self.alarms = dead_letter_alarms(
            self,
            "DeadLettersAlarm",
            queue=self.dead_letters,
            description=(
                "An execution's end could not be journaled or announced (the status-change function failed every retry, "
                "or EventBridge could not invoke it): read the message in the dead-letter queue, then run `restorectl status`"
            ),
            topic=journal.topic,
        )
