"""Every workflow and every Task in it follows the house pattern, so a new workflow cannot quietly skip
the Retry on Lambda's own faults, the timeout, the Catch that leads to cleanup, or the Comment the
console shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"
WORKFLOWS = sorted(STATEMACHINES.glob("*.asl.json"))

# Lambda's own transient faults, retried with jittered backoff before any Catch sees them.
LAMBDA_SERVICE_RETRY = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 5,
    "BackoffRate": 2.0,
    "JitterStrategy": "FULL",
}

# The functions' timeouts as the stacks set them (StepPermissions.timeout defaults to 30 s; the
# validate step gets 10 minutes). The infra test checks the same rule against the synthesized template.
FUNCTION_TIMEOUT_SECONDS = {
    "${ValidateRestoreFunctionArn}": 600,
    "${WarmRestoredCopyFunctionArn}": 600,
    # recordings-restore: a planner page lists for up to 15 minutes; a batch copies up to 5 GB objects
    "${PlanRecordingsPageFunctionArn}": 900,
    "${WriteRecordingsPlanFunctionArn}": 300,
    "${ApplyRecordingsBatchFunctionArn}": 300,
    "${UndeleteRecordingsBatchFunctionArn}": 300,
    "${AggregateRecordingsResultsFunctionArn}": 300,
    # drill: the recordings check copies and reads back a few recordings per bucket
    "${CheckDrillRecordingsFunctionArn}": 300,
}
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 30
# The Task must outlive its function: then a slow step ends in Lambda's own timeout error (which the
# journal records with the function's name) and the Task's timeout only catches a lost invocation.
# Not much longer either, or a lost invocation holds the lock for nothing.
MIN_MARGIN_SECONDS, MAX_MARGIN_SECONDS = 30, 60


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def all_states(states: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield prefix + name, state
        if state["Type"] == "Map":
            inner = state.get("ItemProcessor") or state["Iterator"]
            yield from all_states(inner["States"], f"{prefix}{name}/")
        elif state["Type"] == "Parallel":
            for i, branch in enumerate(state["Branches"]):
                yield from all_states(branch["States"], f"{prefix}{name}[{i}]/")


def tasks() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, state) for path in WORKFLOWS for name, state in all_states(load(path)["States"]) if state["Type"] == "Task"]


TASKS = tasks()


def test_the_workflows_are_found():
    assert {p.name for p in WORKFLOWS} >= {"restore.asl.json", "snapshot.asl.json", "rollback.asl.json"}
    assert len(TASKS) >= 30


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_has_a_comment_and_a_timeout(path):
    definition = load(path)
    assert definition.get("Comment", "").strip()
    assert isinstance(definition.get("TimeoutSeconds"), int) and definition["TimeoutSeconds"] > 0


@pytest.mark.parametrize(("workflow", "name", "task"), TASKS, ids=[f"{w}:{n}" for w, n, _ in TASKS])
def test_every_task_follows_the_house_pattern(workflow, name, task):
    # Given a Task of any workflow
    # Then it says what it does
    assert task.get("Comment", "").strip(), f"{workflow} {name}: no Comment"
    # And Lambda's service errors and throttling are retried first, with the standard backoff
    assert task.get("Retry"), f"{workflow} {name}: no Retry"
    assert task["Retry"][0] == LAMBDA_SERVICE_RETRY, f"{workflow} {name}: the first Retry is not the standard one"
    # And every error ends in a Catch, the catch-all last
    catches = task.get("Catch") or []
    assert catches, f"{workflow} {name}: no Catch"
    assert catches[-1]["ErrorEquals"] == ["States.ALL"], f"{workflow} {name}: States.ALL is not the last Catch"
    assert all("States.ALL" not in c["ErrorEquals"] for c in catches[:-1])
    # And it has a timeout just above its function's
    function_timeout = FUNCTION_TIMEOUT_SECONDS.get(task["Resource"], DEFAULT_FUNCTION_TIMEOUT_SECONDS)
    timeout = task.get("TimeoutSeconds")
    assert isinstance(timeout, int), f"{workflow} {name}: no TimeoutSeconds"
    assert function_timeout + MIN_MARGIN_SECONDS <= timeout <= function_timeout + MAX_MARGIN_SECONDS, (
        f"{workflow} {name}: TimeoutSeconds {timeout} does not fit its function's {function_timeout} s"
    )


def test_one_validate_task_serves_both_branches_of_the_restore():
    # Given the restore workflow
    states = dict(all_states(load(STATEMACHINES / "restore.asl.json")["States"]))
    # Then exactly one Task validates, and a Choice after it decides on the cutover
    validators = [n for n, s in states.items() if s.get("Resource") == "${ValidateRestoreFunctionArn}"]
    assert validators == ["ValidateRestore"]
    after = states[states["ValidateRestore"]["Next"]]
    assert after["Type"] == "Choice"
    assert {c["Next"] for c in after["Choices"]} | {after["Default"]} == {"WarmRestoredCopy", "RestoreSucceeded"}
    # and the cutover branch reads the copy once before the app meets it
    assert states["WarmRestoredCopy"]["Next"] == "StartCutover"


# ---------------------------------------------------------------------------------------- redrive

REDRIVE_CATCH = {"ErrorEquals": ["RedriveRefused"], "ResultPath": "$.redrive_refused", "Next": "ReadRedriveRefusal"}


@pytest.mark.parametrize(("workflow", "name", "task"), TASKS, ids=[f"{w}:{n}" for w, n, _ in TASKS])
def test_every_task_tells_its_step_whether_the_execution_was_redriven(workflow, name, task):
    # Given a Task of any workflow, when Step Functions' Redrive resumes an ended execution at it
    context = task["Parameters"]["context"]
    outer, _, inner = name.partition("/")
    if inner:
        # Then a Map child passes its own count and its parent's, which the Map's ItemSelector hands it
        map_state = load(STATEMACHINES / workflow)["States"][outer]
        assert map_state["Type"] == "Map" and "/" not in inner, f"{workflow} {name}: only a Map's children are nested"
        assert context["redrive_count.$"] == "$.redrive_count", f"{workflow} {name}"
        assert context["own_redrive_count.$"] == "$$.Execution.RedriveCount", f"{workflow} {name}"
        assert map_state["ItemSelector"]["redrive_count.$"] == "$$.Execution.RedriveCount", f"{workflow} {outer}"
    else:
        # Then the step is told the execution's redrive count, and a refusal ends the attempt before any other Catch
        assert context["redrive_count.$"] == "$$.Execution.RedriveCount", f"{workflow} {name}"
        assert task["Catch"][0] == REDRIVE_CATCH, f"{workflow} {name}: the first Catch is not the redrive refusal"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_refused_redrive_ends_in_a_fail_state_named_for_it_with_the_steps_own_words(path):
    states = load(path)["States"]
    read = states["ReadRedriveRefusal"]
    assert read["Type"] == "Pass" and read["Next"] == "RedriveRefused"
    assert read["Parameters"] == {"cause.$": "States.StringToJson($.redrive_refused.Cause)"}
    fail = states["RedriveRefused"]
    assert fail["Type"] == "Fail" and fail["Error"] == "RedriveRefused"
    assert fail["CausePath"] == f"{read['ResultPath']}.cause.errorMessage"


def test_every_step_handler_refuses_to_act_in_a_redriven_execution():
    import importlib
    import sys

    lambdas = str(STATEMACHINES.parent / "lambdas")
    if lambdas not in sys.path:
        sys.path.insert(0, lambdas)
    manifest: dict[str, str] = json.loads((STATEMACHINES / "functions.json").read_text(encoding="utf-8"))
    unguarded = []
    for handler_path in sorted(set(manifest.values())):
        module, _, attribute = handler_path.rpartition(".")
        handler: Any = getattr(importlib.import_module(module), attribute)
        while handler is not None and not getattr(handler, "refuses_redrive", False):
            handler = getattr(handler, "__wrapped__", None)
        if handler is None:
            unguarded.append(handler_path)
    assert not unguarded, f"not wrapped in common.redrive.refuses_redrive: {unguarded}"
