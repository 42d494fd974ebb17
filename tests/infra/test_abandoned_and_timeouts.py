"""Executions that time out or are aborted are journaled from outside (and a record left RUNNING by
one that ended is reconciled), and every bounded poll loop
ends in its own named error before the state machine's TimeoutSeconds does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from restore_runbook.contract import STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS
from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings
from stacks.workflow import handler_module

from .conftest import Synthesized
from .test_stack import as_list, role_policies

pytestmark = pytest.mark.infra

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"


def timeout_of(workflow: str) -> int:
    return int(json.loads((STATEMACHINES / f"{workflow}.asl.json").read_text(encoding="utf-8"))["TimeoutSeconds"])


def test_an_eventbridge_rule_sends_every_end_of_every_workflow_to_the_journal(synthesized: Synthesized) -> None:
    machines = synthesized.of_type("AWS::StepFunctions::StateMachine")
    functions = synthesized.of_type("AWS::Lambda::Function")
    (rule,) = synthesized.of_type("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    # TIMED_OUT and ABORTED are journaled there; SUCCEEDED and FAILED reconcile a record left RUNNING
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT"]
    assert sorted(ref["Ref"] for ref in pattern["detail"]["stateMachineArn"]) == sorted(machines)
    (target,) = rule["Properties"]["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    function = functions[function_id]["Properties"]
    assert function["Handler"] == "restore_runbook.journal.handlers.record_abandoned_execution.handler"
    # the handler strips this prefix from the state machine name to find the workflow
    prefix = function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert all(m["Properties"]["StateMachineName"].startswith(f"{prefix}-") for m in machines.values())
    # and EventBridge may invoke it
    permissions = [
        p["Properties"]
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert any(p["Principal"] == "events.amazonaws.com" for p in permissions)


def test_an_end_the_status_change_function_cannot_journal_or_announce_lands_in_a_dead_letter_queue_that_alarms(
    synthesized: Synthesized,
) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function")
    (function_id,) = [k for k, f in functions.items() if handler_module(f["Properties"]["Handler"]) == "record_abandoned_execution"]
    # Its timeout is the one journal/notice.py counts on: a notice pending longer was never sent; the
    # workflows' own end steps, which mark notices too, never run longer
    assert functions[function_id]["Properties"]["Timeout"] == STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS
    end_steps = [f["Properties"] for f in functions.values() if handler_module(f["Properties"]["Handler"]) == "record_outcome"]
    assert end_steps and all(f["Timeout"] <= STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS for f in end_steps)
    # An invocation that fails every retry is sent to the queue, not dropped
    configs = synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
    (invoke_config,) = [c["Properties"] for c in configs if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert invoke_config["MaximumRetryAttempts"] == 2 and invoke_config["MaximumEventAgeInSeconds"] == 6 * 3600
    queue_id = invoke_config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert synthesized.resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
    # So is an event EventBridge could not deliver to it
    (rule,) = synthesized.of_type("AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    (queue_policy,) = [p for p in synthesized.of_type("AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]]
    statements = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    (from_events,) = [s for s in statements if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}]
    (rule_id,) = synthesized.of_type("AWS::Events::Rule")
    assert from_events["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    # And the function's own role may send to it
    role = functions[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    sends = [s for s in role_policies(synthesized)[role] if "sqs:SendMessage" in as_list(s["Action"])]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    # One message in it alarms, to the notification topic
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    (alarm,) = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_the_abandoned_execution_function_may_only_journal_notify_and_read_this_stacks_executions(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    functions = synthesized.of_type("AWS::Lambda::Function").values()
    (function,) = [f for f in functions if handler_module(f["Properties"]["Handler"]) == "record_abandoned_execution"]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    (table_id,) = synthesized.of_type("AWS::DynamoDB::GlobalTable")
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    actions: dict[str, list[object]] = {}
    for statement in role_policies(synthesized)[role]:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            actions[action] = actions.get(action, []) + as_list(statement["Resource"])
    # UpdateItem: the execution's record, its lock when kept for recovery, and a recordings lock's entry in
    # its bucket's registry of held prefixes (each under its own keys)
    assert actions["dynamodb:UpdateItem"] == [{"Fn::GetAtt": [table_id, "Arn"]}] * 3
    # Query: the executions' partition on the table, and the index of locks to find the ones an execution holds
    assert actions["dynamodb:Query"] == [
        {"Fn::GetAtt": [table_id, "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, "/index/gsi1"]]},
    ]
    assert actions["sns:Publish"] == [{"Ref": topic_id}]
    executions = [f"arn:aws:states:{settings.region}:{settings.account}:execution:{settings.name_prefix}-*"]
    assert actions["states:GetExecutionHistory"] == executions
    # how an execution whose record reads RUNNING really ended, for this stack's executions only
    assert actions["states:DescribeExecution"] == executions
    assert not [a for a in actions if a.startswith("states:") and a not in ("states:GetExecutionHistory", "states:DescribeExecution")]
    assert not [a for a in actions if a.startswith("rds:") or a.startswith("ssm:")]


def test_every_bounded_poll_loop_ends_in_its_own_error_before_the_state_machine_times_out(synthesized: Synthesized) -> None:
    from restore_runbook.snapshot.snapshots import SnapshotSettings

    settings = synthesized.settings
    # restore: RestoreTimedOut after restore_poll_max_attempts waits of at most restore_poll_max_seconds
    restore_budget = settings.restore_poll_max_attempts * settings.restore_poll_max_seconds
    assert restore_budget < timeout_of("restore"), (restore_budget, timeout_of("restore"))
    # snapshot: SnapshotTimedOut after SNAPSHOT_POLL_MAX_ATTEMPTS waits of at most SNAPSHOT_POLL_MAX_SECONDS, as deployed
    snapshot = SnapshotSettings.from_env(settings.lambda_environment())
    snapshot_budget = snapshot.poll_max_attempts * snapshot.poll_max_seconds
    assert snapshot_budget < timeout_of("snapshot"), (snapshot_budget, timeout_of("snapshot"))


@pytest.mark.parametrize("workflow", ["restore", "rollback", "in-place-restore"])
def test_a_workflow_that_changes_what_production_runs_on_outlasts_every_bounded_wait_so_it_never_times_out_half_way(
    synthesized: Synthesized, workflow: str
) -> None:
    from stacks.workflows.budgets import BUDGETS, loops_of

    budget, loops = BUDGETS[workflow], loops_of(synthesized.settings.lambda_environment())
    longest = budget.longest(loops)
    assert longest < timeout_of(workflow), (longest, timeout_of(workflow))
    # Every loop of the ASL is counted: each Wait state is one the model names
    definition = json.loads((STATEMACHINES / f"{workflow}.asl.json").read_text(encoding="utf-8"))
    assert {name for name, state in definition["States"].items() if state["Type"] == "Wait"} == budget.counted_waits
    # And counted in full: at least the commands and health checks its longest path sends, each to its last poll
    commands, healths = {"restore": (2, 2), "rollback": (4, 3), "in-place-restore": (6, 3)}[workflow]
    floor = commands * loops.command + healths * loops.health
    if workflow != "rollback":
        floor += loops.restore
    if workflow == "in-place-restore":
        floor += loops.snapshot_taken + 3 * loops.rename + loops.rename_back
    assert longest >= floor, (longest, floor)


def test_the_longest_loops_count_each_poll_at_its_longest_wait_and_each_health_check_as_a_command_of_its_own(
    synthesized: Synthesized,
) -> None:
    from stacks.workflows.budgets import POLL_TASK_SECONDS, loops_of

    loops = loops_of(synthesized.settings.lambda_environment())
    r = loops.runbook
    assert loops.command == r.command_poll_max_attempts * (r.command_poll_seconds + POLL_TASK_SECONDS)
    assert loops.health == r.health_check_attempts * (loops.command + r.health_check_interval_seconds + POLL_TASK_SECONDS)
    assert loops.rename_back == 2 * loops.rename  # it gives up after twice a rename's attempts


@pytest.mark.parametrize(
    ("overrides", "workflow"),
    [
        ({"snapshot_poll_max_attempts": 1000}, "in-place-restore"),  # only the in-place restore takes a snapshot
        ({"rename_poll_max_attempts": 1000}, "in-place-restore"),  # only it renames
        ({"restore_poll_max_attempts": 1000}, "restore"),  # the first built of those that restore
        # Health checks long enough for the rollback's three, not for restore's two once its restore is short
        ({"restore_poll_max_attempts": 1, "health_check_attempts": 20}, "rollback"),
    ],
)
def test_settings_whose_waits_outlast_a_workflow_are_refused_at_synth_naming_it(
    runbook_context: dict[str, Any], tmp_path, overrides: dict[str, int], workflow: str
) -> None:
    # Given bounds raised far enough that a run of `workflow` could time out half-way
    settings = StackSettings.from_context({**runbook_context, **overrides})
    (tmp_path / "layer" / "python").mkdir(parents=True)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))

    # Then synth refuses, naming that workflow, how long it could wait, and what to lower, before any state machine exists
    with pytest.raises(ValueError, match=rf"let a {workflow} wait up to \d+ s .* could time out half-way") as refused:
        RestoreRunbookStack(
            app,
            "TooLong",
            settings=settings,
            layer_asset_path=tmp_path / "layer",
            env=cdk.Environment(account=settings.account, region=settings.region),
        )
    named = re.search(r"wait up to (\d+) s", str(refused.value))
    assert named is not None
    assert int(named.group(1)) >= timeout_of(workflow) and f"({timeout_of(workflow)} s," in str(refused.value)


def test_the_validate_steps_budgets_leave_its_function_three_minutes_to_connect_read_and_report(synthesized: Synthesized) -> None:
    from restore_runbook.settings import VALIDATE_BUDGET_LIMIT_SECONDS

    functions = synthesized.of_type("AWS::Lambda::Function").values()
    validators = [f["Properties"] for f in functions if handler_module(f["Properties"]["Handler"]) == "validate_restore"]
    assert validators
    # the index check and the counts run side by side, each within the limit the settings enforce
    assert all(function["Timeout"] - VALIDATE_BUDGET_LIMIT_SECONDS >= 180 for function in validators), [
        function["Timeout"] for function in validators
    ]
