"""The drill as deployed: restore's own step roles, a teardown that can delete only drill copies, the
monthly schedule with its dead-letter queue, the daily sweep and days-since functions, the alarms."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings
from stacks.workflow import handler_module

from .conftest import Synthesized
from .test_stack import as_list, role_policies

pytestmark = pytest.mark.infra

SOURCE_FENCE = {"rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:AddTagsToResource", "rds:RemoveTagsFromResource"}


def roles_by_workflow(synthesized: Synthesized, step: str) -> dict[str, str]:
    """Workflow name -> role logical id of that workflow's function for handler module `step`."""
    return {
        f["Properties"]["Description"].split(" workflow: ")[0]: f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in synthesized.of_type("AWS::Lambda::Function").values()
        if handler_module(f["Properties"]["Handler"]) == step
    }


def without_own_logs(statements: list[dict[str, Any]]) -> list[str]:
    # Each function writes to its own log group: the one statement that must differ between two roles.
    return sorted(json.dumps(s, sort_keys=True) for s in statements if not any(a.startswith("logs:") for a in as_list(s["Action"])))


def drill_machine(synthesized: Synthesized) -> str:
    (machine,) = [
        k
        for k, m in synthesized.of_type("AWS::StepFunctions::StateMachine").items()
        if m["Properties"]["StateMachineName"] == "irisx-restore-drill"
    ]
    return machine


@pytest.mark.parametrize("step", ["start_restore", "describe_restore", "validate_restore"])
def test_the_drill_and_the_in_place_restore_run_restores_own_steps_with_restores_own_permissions(
    synthesized: Synthesized, step: str
) -> None:
    roles = roles_by_workflow(synthesized, step)
    assert set(roles) == {"restore", "drill", "in-place-restore"}
    policies = role_policies(synthesized)
    for workflow in ("drill", "in-place-restore"):
        assert without_own_logs(policies[roles[workflow]]) == without_own_logs(policies[roles["restore"]]), workflow


def test_the_drill_input_check_may_do_what_restores_does_and_claim_its_scheduled_time_in_the_journal(synthesized: Synthesized) -> None:
    policies = role_policies(synthesized)
    check = without_own_logs(policies[roles_by_workflow(synthesized, "check_drill_input")["drill"]])
    restore_check = without_own_logs(policies[roles_by_workflow(synthesized, "check_restore_input")["restore"]])
    assert set(restore_check) <= set(check)
    (extra,) = [json.loads(s) for s in set(check) - set(restore_check)]
    assert sorted(as_list(extra["Action"])) == ["dynamodb:GetItem", "dynamodb:PutItem"]


@pytest.mark.parametrize("step", ["tear_down_drill_instance", "sweep_drill_instances"])
def test_drill_copies_are_deleted_only_when_tagged_as_managed_and_as_a_drill_never_the_source_or_production(
    synthesized: Synthesized, step: str
) -> None:
    settings = synthesized.settings
    (role,) = roles_by_workflow(synthesized, step).values()
    statements = role_policies(synthesized)[role]
    (delete,) = [s for s in statements if s["Effect"] == "Allow" and "rds:DeleteDBInstance" in as_list(s["Action"])]
    assert as_list(delete["Action"]) == ["rds:DeleteDBInstance"]
    assert delete["Condition"] == {
        "StringEquals": {
            f"aws:ResourceTag/{settings.management_tag_key}": settings.management_tag_value,
            "aws:ResourceTag/irisx-restore:purpose": "drill",
        }
    }
    source = f"arn:aws:rds:{settings.region}:{settings.account}:db:{settings.source_instance}"
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert any(set(as_list(s["Action"])) >= SOURCE_FENCE and as_list(s["Resource"]) == [source] for s in denies)
    assert any(
        as_list(s["Action"]) == ["rds:DeleteDBInstance"]
        and s["Condition"] == {"StringEquals": {"aws:ResourceTag/irisx-restore:role": ["production", "replaced-production"]}}
        for s in denies
    )
    # A throwaway copy: no final snapshot can be asked for, nothing else may be changed.
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert not allowed & {"rds:CreateDBSnapshot", "rds:ModifyDBInstance", "rds:AddTagsToResource"}


def test_the_drill_starts_on_the_configured_schedule_with_its_scheduled_time_and_a_dead_letter_queue(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    schedules = synthesized.of_type("AWS::Scheduler::Schedule")
    machine = drill_machine(synthesized)
    (drill,) = [s["Properties"] for s in schedules.values() if s["Properties"]["Target"]["Arn"] == {"Ref": machine}]
    assert drill["ScheduleExpression"] == settings.drill_schedule == "cron(0 10 ? * TUE#1 *)"
    assert drill["ScheduleExpressionTimezone"] == settings.drill_schedule_timezone == "UTC"
    assert drill["State"] == "ENABLED"
    target = drill["Target"]
    # The drill's input check dedupes on `scheduled_time`: a Scheduler retry does nothing twice.
    assert json.loads(target["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = synthesized.resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    (queue_policy,) = [p for p in synthesized.of_type("AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in queue_policy["Properties"]["PolicyDocument"]["Statement"]
    )
    # Its role may start the drill and nothing else but dead-lettering.
    role = target["RoleArn"]["Fn::GetAtt"][0]
    actions = {a for s in role_policies(synthesized)[role] for a in as_list(s["Action"])}
    assert actions == {"states:StartExecution", "sqs:SendMessage"}
    dlq_alarms = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/SQS"
        and a["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]
    assert [a["MetricName"] for a in dlq_alarms] == ["ApproximateNumberOfMessagesVisible"]


@pytest.mark.parametrize("step", ["sweep_drill_instances", "publish_days_since_drill"])
def test_the_sweep_and_the_days_since_publisher_run_daily_each_with_its_own_role(synthesized: Synthesized, step: str) -> None:
    functions = {
        k: f for k, f in synthesized.of_type("AWS::Lambda::Function").items() if handler_module(f["Properties"]["Handler"]) == step
    }
    ((function_id, function),) = functions.items()
    assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "irisx-restore-drill"
    (schedule,) = [
        s["Properties"]
        for s in synthesized.of_type("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    # Daily: every day of every month, at one fixed time.
    minute, hour, day, month, week_day, year = schedule["ScheduleExpression"].removeprefix("cron(").removesuffix(")").split()
    assert (minute.isdigit(), hour.isdigit(), day, month, week_day, year) == (True, True, "*", "*", "?", "*")
    assert schedule["State"] == "ENABLED" and "DeadLetterConfig" in schedule["Target"]


def test_days_since_reads_only_the_journal(synthesized: Synthesized) -> None:
    (role,) = roles_by_workflow(synthesized, "publish_days_since_drill").values()
    (table_id,) = synthesized.of_type("AWS::DynamoDB::GlobalTable")
    (query,) = [s for s in role_policies(synthesized)[role] if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert (as_list(query["Action"]), query["Resource"]) == (["dynamodb:Query"], {"Fn::GetAtt": [table_id, "Arn"]})


def test_a_failed_overdue_or_objective_missing_drill_alarms_to_the_notification_topic(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    every_alarm = [a["Properties"] for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()]
    alarms = {a["MetricName"]: a for a in every_alarm if "MetricName" in a}
    # The dimensions Powertools writes on the drill functions' metrics: their service, and Source.
    dimensions = [{"Name": "Source", "Value": settings.source_instance}, {"Name": "service", "Value": "irisx-restore-drill"}]
    failed, overdue, missed = alarms["DrillFailed"], alarms["DaysSinceLastSuccessfulDrill"], alarms["DrillObjectivesMissed"]
    for alarm in (failed, overdue, missed):
        assert alarm["Namespace"] == settings.name_prefix
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == dimensions
    assert (failed["Statistic"], failed["ComparisonOperator"], failed["Threshold"]) == ("Sum", "GreaterThanOrEqualToThreshold", 1)
    # A drill whose copy worked but that missed its RTO or RPO pages too: it ends SUCCEEDED, and succeeded drills send no notice
    assert (missed["Statistic"], missed["ComparisonOperator"], missed["Threshold"]) == ("Sum", "GreaterThanOrEqualToThreshold", 1)
    assert missed["TreatMissingData"] == "notBreaching"
    from restore_runbook.drill import measure

    published = {name: value for name, _unit, value in measure.metrics_of({"verdict": measure.OBJECTIVES_MISSED, "missed": ["rto"]})}
    assert published[missed["MetricName"]] == 1, "the alarm reads what a drill that missed one objective publishes"
    assert (overdue["Statistic"], overdue["ComparisonOperator"], overdue["Threshold"]) == (
        "Maximum",
        "GreaterThanThreshold",
        settings.drill_overdue_days,
    )
    assert (overdue["Period"], overdue["EvaluationPeriods"], overdue["TreatMissingData"]) == (86400, 1, "breaching")
    for alarm in every_alarm:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_every_alarm_evaluates_a_window_cloudwatch_accepts(synthesized: Synthesized) -> None:
    # moto and the CloudFormation-less tests accept any window; CloudWatch refuses more than 7 days,
    # or more than 1 day when the period is under an hour.
    alarms = synthesized.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm_id, alarm in alarms.items():
        properties = alarm["Properties"]
        # A metric-math alarm's period is its metrics'; it evaluates the longest of them
        periods = (
            [properties["Period"]]
            if "Period" in properties
            else [m["MetricStat"]["Period"] for m in properties["Metrics"] if "MetricStat" in m]
        )
        assert periods, alarm_id
        period, evaluations = max(periods), properties["EvaluationPeriods"]
        assert period * evaluations <= 604800, alarm_id
        if period < 3600:
            assert period * evaluations <= 86400, alarm_id


def test_a_disabled_drill_schedule_is_deployed_disabled(runbook_context: dict[str, Any], tmp_path) -> None:
    # Given the schedule switched off in settings
    settings = StackSettings.from_context({**runbook_context, "drill_schedule_enabled": False, "drill_schedule_timezone": "Europe/Berlin"})
    (tmp_path / "layer" / "python").mkdir(parents=True)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = RestoreRunbookStack(
        app,
        "Disabled",
        settings=settings,
        layer_asset_path=tmp_path / "layer",
        env=cdk.Environment(account=settings.account, region=settings.region),
    )
    # Then the schedule is still there, DISABLED, in the configured time zone
    schedules = Template.from_stack(stack).find_resources("AWS::Scheduler::Schedule")
    (drill,) = [s["Properties"] for s in schedules.values() if "monthly restore drill" in s["Properties"]["Description"]]
    assert (drill["State"], drill["ScheduleExpressionTimezone"]) == ("DISABLED", "Europe/Berlin")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"drill_schedule": "rate(30 days)"}, "drill_schedule"),
        ({"drill_schedule_timezone": "not a zone"}, "drill_schedule_timezone"),
        ({"drill_schedule_enabled": "yes"}, "drill_schedule_enabled"),
        ({"drill_overdue_days": 0}, "drill_overdue_days"),
        ({"drill_lifetime_hours": 4, "drill_max_keep_minutes": 240}, "drill_lifetime_hours"),
    ],
)
def test_drill_settings_are_checked_by_name(runbook_context: dict[str, Any], change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        StackSettings.from_context({**runbook_context, **change})
