"""The `drill` workflow (runbook "Tested Restore", monthly): its steps' permissions, its schedule,
the daily sweep and days-since functions, and the alarms that page when a drill fails or is overdue.

A drill runs restore's own check/start/describe/validate steps, so those roles are built by the same
builders as restore's (stacks/permissions/restore.py). Its one destructive call, the teardown's
DeleteDBInstance, is allowed only on instances tagged with the management tag AND as a drill's copy;
the source and whatever an in-place swap made or replaced as production are denied.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack, TimeZone
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from restore_runbook.contract import PURPOSE_DRILL, TAG_PURPOSE
from stacks import nag
from stacks.dead_letters import dead_letter_alarms, dead_letter_queue
from stacks.functions import FunctionDefaults, FunctionSpec, StepPermissions
from stacks.permissions.journal import drill_claim_keys, execution_keys, executions_arn
from stacks.permissions.rds import production_fence
from stacks.permissions.restore import RestoreSteps, with_statements
from stacks.workflows.base import RegisteredWorkflow, WorkflowContext
from stacks.workflows.recordings import RecordingsRestoreWorkflow

SWEEP_HANDLER = "restore_runbook.drill.handlers.sweep_drill_instances.handler"
DAYS_SINCE_HANDLER = "restore_runbook.drill.handlers.publish_days_since_drill.handler"
# What the drill code publishes through Powertools Metrics (drill/measure.py, drill/overdue.py), under
# the namespace the stack sets (the name prefix) and the dimensions Powertools writes: `service`
# (POWERTOOLS_SERVICE_NAME, `<name_prefix>-drill` for every drill function) and `Source`.
DRILL_FAILED_METRIC = "DrillFailed"
DAYS_SINCE_METRIC = "DaysSinceLastSuccessfulDrill"
OBJECTIVES_MISSED_METRIC = "DrillObjectivesMissed"
DAILY_SWEEP = scheduler.ScheduleExpression.cron(minute="30", hour="3", time_zone=TimeZone.ETC_UTC)
DAILY_DAYS_SINCE = scheduler.ScheduleExpression.cron(minute="0", hour="6", time_zone=TimeZone.ETC_UTC)


def cron_of(expression: str, time_zone: str) -> scheduler.ScheduleExpression:
    """`cron(0 10 ? * TUE#1 *)` (a setting) as Scheduler's cron fields, in `time_zone`."""
    minute, hour, day, month, week_day, year = expression.removeprefix("cron(").removesuffix(")").split(" ")
    return scheduler.ScheduleExpression.cron(
        minute=minute,
        hour=hour,
        # CDK writes `?` itself for the field left out; Scheduler needs one of day/week-day to be `?`.
        day=None if day == "?" else day,
        month=month,
        week_day=None if week_day == "?" else week_day,
        year=year,
        time_zone=TimeZone.of(time_zone),
    )


class DrillWorkflow(RegisteredWorkflow):
    """`statemachines/drill.asl.json`, its schedule, its daily functions and its alarms."""

    NAME = "drill"

    def __init__(self, scope: Construct, context: WorkflowContext) -> None:
        super().__init__(scope, context)
        self.dead_letters = self._build_dead_letter_queue()
        self.schedule = self._build_drill_schedule()
        self.sweep = self._build_daily_function("SweepDrillInstances", SWEEP_HANDLER, self._sweep(), DAILY_SWEEP)
        self.days_since = self._build_daily_function("PublishDaysSinceDrill", DAYS_SINCE_HANDLER, self._days_since(), DAILY_DAYS_SINCE)
        self.alarms = self._build_alarms()

    def function_defaults(self, context: WorkflowContext) -> FunctionDefaults:
        # The recordings check copies to recordings-restore's work bucket (its scratch prefix only).
        recordings = context.earlier(RecordingsRestoreWorkflow.NAME)
        if not isinstance(recordings, RecordingsRestoreWorkflow):
            raise TypeError(f"{RecordingsRestoreWorkflow.NAME!r} is not the recordings-restore workflow")
        self.recordings = recordings
        # The daily functions too: every drill function is built with the same environment.
        self.defaults = recordings.with_work_bucket(context.functions)
        return self.defaults

    def steps(self) -> Mapping[str, StepPermissions]:
        restore = RestoreSteps(self.settings)
        return {
            "check_drill_input": self._check_drill_input(restore),
            # Restore's own steps, with restore's own permissions.
            "start_restore": restore.start_restore(),
            "describe_restore": restore.describe_restore(),
            "validate_restore": restore.validate_restore(),
            "tear_down_drill_instance": self._tear_down(restore),
            # Reads versions of the configured recordings buckets; writes and deletes under the work bucket's scratch prefix only.
            "check_drill_recordings": self.recordings.drill_check_permissions(),
            "remove_drill_scratch": self.recordings.drill_scratch_removal_permissions(),
            # Pure computation on the state: measures, verdicts, metrics (EMF, through the log).
            "measure_drill": StepPermissions(statements=[]),
            "explain_drill_failure": StepPermissions(statements=[]),
        }

    # -- steps -------------------------------------------------------------------------------------

    def _check_drill_input(self, restore: RestoreSteps) -> StepPermissions:
        # restore's input check (plan_restore), plus the journal claim of a scheduled time (a conditional
        # PutItem, then GetItem to name the execution that holds it).
        claim = self.context.journal.table_statement(["dynamodb:PutItem", "dynamodb:GetItem"], drill_claim_keys(self.settings))
        return with_statements(restore.check_restore_input(), claim)

    def _delete_drill_copies(self) -> list[iam.PolicyStatement]:
        s = self.settings
        # No final snapshot and automated backups deleted (a throwaway copy): the role has no
        # CreateDBSnapshot, so a delete that asked for a final snapshot would be refused.
        return [
            iam.PolicyStatement(
                actions=["rds:DeleteDBInstance"],
                resources=[self.arns.db()],
                conditions={
                    "StringEquals": {
                        f"aws:ResourceTag/{s.management_tag_key}": s.management_tag_value,
                        f"aws:ResourceTag/{TAG_PURPOSE}": PURPOSE_DRILL,
                    }
                },
            ),
            *production_fence(s),
        ]

    DELETE_DRILL_COPIES_REASON = (
        "Describing any instance, and deleting one only when it carries the management tag and the drill purpose tag "
        "(a drill's own copy); production by name and anything marked production are denied"
    )

    def _tear_down(self, restore: RestoreSteps) -> StepPermissions:
        permissions = with_statements(restore.describe(["rds:DescribeDBInstances"], [self.arns.db()]), *self._delete_drill_copies())
        permissions.acknowledgements[nag.wildcard_resource(self.arns.db())] = self.DELETE_DRILL_COPIES_REASON  # type: ignore[index]
        return permissions

    def _sweep(self) -> StepPermissions:
        s = self.settings
        drill_executions = f"{executions_arn(s).removesuffix('*')}{self.NAME}:*"
        base = RestoreSteps(s).describe(["rds:DescribeDBInstances"], [self.arns.db()])
        permissions = with_statements(
            base,
            *self._delete_drill_copies(),
            # Whether the drill that made a copy still runs (its execution ARN is the copy's tag).
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[drill_executions]),
            *self.context.journal.publish_statements(),
            timeout=Duration.minutes(2),
        )
        permissions.acknowledgements[nag.wildcard_resource(self.arns.db())] = self.DELETE_DRILL_COPIES_REASON  # type: ignore[index]
        permissions.acknowledgements[nag.wildcard_resource(drill_executions)] = (  # type: ignore[index]
            "The copy names the drill execution that made it only at run time; DescribeExecution is limited to "
            "executions of this stack's drill state machine"
        )
        return permissions

    def _days_since(self) -> StepPermissions:
        # One Query on the drill workflow's partition of the journal.
        return StepPermissions(statements=[self.context.journal.table_statement(["dynamodb:Query"], execution_keys(self.NAME))])

    # -- schedule, daily functions, alarms ---------------------------------------------------------

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return dead_letter_queue(self, "ScheduleDeadLetters", dead_letters_of="the drill's schedules (EventBridge Scheduler targets)")

    def _build_drill_schedule(self) -> scheduler.Schedule:
        s = self.settings
        return scheduler.Schedule(
            self,
            "Schedule",
            description=f"{s.name_prefix}: the monthly restore drill (runbook: Tested Restore)",
            schedule=cron_of(s.drill_schedule, s.drill_schedule_timezone),
            # Disabled is still deployed, so turning it back on is a setting, not a new resource.
            enabled=s.drill_schedule_enabled,
            target=scheduler_targets.StepFunctionsStartExecution(
                self.state_machine,
                # The drill claims the scheduled time in the journal: a Scheduler retry does nothing twice.
                input=scheduler.ScheduleTargetInput.from_object({"scheduled_time": scheduler.ContextAttribute.scheduled_time}),
                retry_attempts=3,
                max_event_age=Duration.hours(2),
                dead_letter_queue=self.dead_letters,
                role=self._scheduler_role("ScheduleRole", "start the drill state machine"),
            ),
        )

    def _build_daily_function(
        self, name: str, handler: str, permissions: StepPermissions, expression: scheduler.ScheduleExpression
    ) -> lambda_.Function:
        module = handler.split(".")[-2]
        spec = FunctionSpec(
            handler=handler,
            # `<name_prefix>-drill`, like the workflow's steps: the metrics' service dimension.
            service=self.NAME,
            description=f"{self.NAME} workflow: {handler} (daily, not a state machine step)",
            role_description=f"{self.settings.name_prefix} {self.NAME}: {module} (daily)",
            permissions=permissions,
        )
        function = self.defaults.build(self, name, spec)
        role = self._scheduler_role(f"{name}ScheduleRole", f"invoke {module} daily")
        scheduler.Schedule(
            self,
            f"{name}Schedule",
            description=f"{self.settings.name_prefix}: {module}, daily",
            schedule=expression,
            target=scheduler_targets.LambdaInvoke(
                function, retry_attempts=3, max_event_age=Duration.hours(6), dead_letter_queue=self.dead_letters, role=role
            ),
        )
        logical_id = Stack.of(self).get_logical_id(function.node.default_child)  # type: ignore[arg-type]
        nag.acknowledge(
            role,
            nag.wildcard_resource(f"<{logical_id}.Arn>:*"),
            "Scheduler's invoke grant covers the function's own versions and aliases only; no other function matches",
        )
        return function

    def _scheduler_role(self, construct_id: str, purpose: str) -> iam.Role:
        # Its own role per schedule, assumable by Scheduler for this account only (confused deputy).
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.settings.account}}
            ),
            description=f"{self.settings.name_prefix} {self.NAME}: EventBridge Scheduler may {purpose}",
        )

    def _count_alarm(self, construct_id: str, description: str, metric_name: str, dimensions: dict[str, str]) -> cloudwatch.Alarm:
        """In alarm in any hour in which the drill functions published `metric_name` at least once."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=cloudwatch.Metric(
                namespace=self.settings.name_prefix,
                metric_name=metric_name,
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.hours(1),
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _build_alarms(self) -> list[cloudwatch.Alarm]:
        s = self.settings
        dimensions = {"service": f"{s.name_prefix}-{self.NAME}", "Source": s.source_instance}
        failed = self._count_alarm(
            "DrillFailedAlarm",
            f"A restore drill of {s.source_instance} failed: see the drill's journal record and execution",
            DRILL_FAILED_METRIC,
            dimensions,
        )
        # A drill that restored, validated and tore down but took longer than the RTO, or restored to a point
        # older than the RPO allows, succeeds as an execution (its copy worked); the objective it missed is
        # what the runbook's drill is for, so it pages as a failure does.
        missed = self._count_alarm(
            "DrillObjectivesMissedAlarm",
            (
                f"A restore drill of {s.source_instance} restored its copy but missed an objective (RTO or RPO, or the data "
                "gap): see the drill's journal record (`restorectl drills`) for the measures and the objectives"
            ),
            OBJECTIVES_MISSED_METRIC,
            dimensions,
        )
        # CloudWatch cannot look back a month (Period x EvaluationPeriods <= 7 days), so the daily
        # function publishes the age of the last success and this alarm reads one day of it; no data
        # (no success on record, or the publisher stopped) is breaching.
        overdue = cloudwatch.Alarm(
            self,
            "DrillOverdueAlarm",
            alarm_description=(
                f"No successful restore drill of {s.source_instance} for more than {s.drill_overdue_days} days "
                "(or the days-since publisher stopped): run `restorectl drills`"
            ),
            metric=cloudwatch.Metric(
                namespace=s.name_prefix,
                metric_name=DAYS_SINCE_METRIC,
                dimensions_map=dimensions,
                statistic="Maximum",
                period=Duration.days(1),
            ),
            threshold=s.drill_overdue_days,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self.context.journal.topic)
        for alarm in (failed, missed, overdue):
            alarm.add_alarm_action(action)
        dead_letters = dead_letter_alarms(
            self,
            "ScheduleDeadLettersAlarm",
            queue=self.dead_letters,
            description="A drill schedule could not start its target (drill, sweep or days-since): see the dead-letter queue",
            topic=self.context.journal.topic,
        )
        return [failed, missed, overdue, *dead_letters]
