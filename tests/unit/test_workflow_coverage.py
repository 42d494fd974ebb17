"""The workflow coverage report's edge detection, on a tiny definition and hand-written histories
shaped like moto's (the event types and details the harness logs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.workflow_coverage import coverage_script

pytestmark = pytest.mark.unit

cov = coverage_script()

ASL = {
    "StartAt": "Start",
    "States": {
        "Start": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:start",
            "Next": "Check",
            "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["Boom"], "Next": "Cleanup"}, {"ErrorEquals": ["States.ALL"], "Next": "End"}],
        },
        "Check": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.x", "StringEquals": "a", "Next": "Done"},
                {"And": [{"Variable": "$.y", "BooleanEquals": True}, {"Variable": "$.z", "IsPresent": False}], "Next": "Done"},
                {"Variable": "$.x", "StringMatches": "b*", "Next": "Wait"},
                {"Variable": "$.t", "TimestampGreaterThan": "2025-01-01T00:00:00Z", "Next": "Wait"},
            ],
            "Default": "Wait",
        },
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Start"},
        "Cleanup": {"Type": "Pass", "Next": "Record"},
        "Done": {"Type": "Pass", "Next": "Record"},
        # Its Next and its catcher lead to the same state: only the failure tells them apart.
        "Record": {
            "Type": "Task",
            "Resource": "arn:aws:lambda:::function:record",
            "Next": "End",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "End"}],
        },
        "End": {"Type": "Fail", "Error": "Ended"},
    },
}
DEFINITION = cov.Definition.from_asl(ASL)


def entered(name: str, **extra: Any) -> dict[str, Any]:
    kind = ASL["States"][name]["Type"]
    return {"type": f"{kind}StateEntered", "name": name, **extra}


def lambda_ok() -> list[dict[str, Any]]:
    return [{"type": "LambdaFunctionScheduled"}, {"type": "LambdaFunctionStarted"}, {"type": "LambdaFunctionSucceeded"}]


def lambda_failed(error: str) -> list[dict[str, Any]]:
    return [{"type": "LambdaFunctionScheduled"}, {"type": "LambdaFunctionStarted"}, {"type": "LambdaFunctionFailed", "error": error}]


def choice(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [entered("Check", input=json.dumps(data)), {"type": "ChoiceStateExited", "name": "Check"}]


def history(*parts: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "ExecutionStarted"}]
    for part in parts:
        events += part if isinstance(part, list) else [part]
    return events


def test_a_failure_recovered_by_retry_is_no_catch_and_a_shared_choice_target_is_resolved_by_the_rules():
    events = history(
        entered("Start"),
        lambda_failed("Lambda.ServiceException"),
        lambda_ok(),
        choice({"y": True}),
        entered("Done"),
        entered("Record"),
        lambda_ok(),
        entered("End"),
        {"type": "ExecutionFailed", "error": "Ended"},
    )

    seen = cov.observe(DEFINITION, events)

    assert seen.states == {"Start", "Check", "Done", "Record", "End"}
    assert seen.catches == set()
    assert seen.branches == {("Check", 1)}  # Choices[0] also leads to Done, but its rule does not match
    assert seen.unexplained == []


def test_a_caught_failure_is_the_first_matching_catcher_even_when_it_leads_where_next_does():
    events = history(entered("Start"), lambda_failed("Boom"), entered("Cleanup"), entered("Record"), lambda_failed("Oops"), entered("End"))

    seen = cov.observe(DEFINITION, events)

    assert seen.catches == {("Start", 0), ("Record", 0)}
    assert seen.unexplained == []


def test_an_error_no_earlier_catcher_names_takes_the_catch_all():
    seen = cov.observe(DEFINITION, history(entered("Start"), lambda_failed("Other"), entered("End")))

    assert seen.catches == {("Start", 1)}


def test_a_timeout_is_states_timeout_for_the_catchers():
    events = history(entered("Start"), {"type": "LambdaFunctionTimedOut"}, entered("End"))

    assert cov.observe(DEFINITION, events).catches == {("Start", 1)}


@pytest.mark.parametrize(
    ("data", "branch"),
    [
        ({"x": "a"}, ("Check", 0)),
        ({"x": "bee"}, ("Check", 2)),
        ({"x": "c"}, ("Check", "Default")),
        ({"y": True, "z": 1}, ("Check", "Default")),
    ],
)
def test_choice_branches_and_default(data, branch):
    target = "Done" if branch == ("Check", 0) else "Wait"
    events = history(entered("Start"), lambda_ok(), choice(data), entered(target))

    seen = cov.observe(DEFINITION, events)

    assert seen.branches == {branch}
    assert seen.unexplained == []


def test_a_branch_that_cannot_be_told_apart_is_reported_not_guessed():
    # Choices[3] and Default both lead to Wait, and timestamp comparisons are not evaluated
    events = history(entered("Start"), lambda_ok(), choice({"t": "2026-01-01T00:00:00Z"}), entered("Wait"))

    seen = cov.observe(DEFINITION, events)

    assert seen.branches == set()
    assert seen.unexplained == ["Check went to Wait, and which of its branches led there could not be told"]


def test_a_transition_that_fits_no_edge_is_reported():
    seen = cov.observe(DEFINITION, history(entered("Start"), lambda_ok(), entered("Cleanup")))

    assert seen.unexplained == ["Start went to Cleanup, which is not its Next 'Check'"]


def test_the_report_counts_states_edges_and_branches_and_names_what_was_never_executed(tmp_path: Path):
    log = tmp_path / "executions.jsonl"
    runs = [
        (
            "tests/x.py::test_retry",
            history(entered("Start"), lambda_ok(), choice({"x": "a"}), entered("Done"), entered("Record"), lambda_ok(), entered("End")),
        ),
        (
            "tests/x.py::test_boom",
            history(entered("Start"), lambda_failed("Boom"), entered("Cleanup"), entered("Record"), lambda_ok(), entered("End")),
        ),
        ("tests/y.py::test_other_workflow", history({"type": "PassStateEntered", "name": "Elsewhere"})),
    ]
    log.write_text("".join(json.dumps({"workflow": "tiny" if "x.py" in t else "unknown", "test": t, "events": e}) + "\n" for t, e in runs))

    coverage = cov.read_log(log, {"tiny": DEFINITION})
    report = cov.render(coverage)

    tiny = coverage["tiny"]
    assert tiny.executions == 2
    assert sorted(tiny.states) == ["Check", "Cleanup", "Done", "End", "Record", "Start"]
    assert "tiny                          2  6/7  86%       1/3  33%       1/5  20%" in report
    assert "states never entered: Wait" in report
    assert "    Start -[States.ALL]-> End" in report
    assert "    Record -[States.ALL]-> End" in report
    assert "    Start -[Boom]-> Cleanup" not in report
    assert "    Check.Choices[1] -> Done" in report
    assert "    Check.Default -> Wait" in report
    assert "    Check.Choices[0] -> Done" not in report
    verbose = cov.render(coverage, verbose=True)
    assert "    catch Start -[Boom]-> Cleanup: tests/x.py::test_boom" in verbose
    assert "    state Start: tests/x.py::test_boom, tests/x.py::test_retry" in verbose


def test_the_real_definitions_load_with_their_edges():
    definitions = cov.load_definitions()

    assert {"restore", "rollback", "snapshot"} <= set(definitions)
    rollback = definitions["rollback"]
    assert ("ShouldStopApp", "Default") in rollback.branches
    assert all(name in rollback.states for name, _ in rollback.catches)


MAP_ASL = {
    "StartAt": "Apply",
    "States": {
        "Apply": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Which",
                "States": {
                    "Which": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.kind", "StringEquals": "undelete", "Next": "Undelete"}],
                        "Default": "Copy",
                    },
                    "Copy": {
                        "Type": "Task",
                        "Resource": "arn:copy",
                        "End": True,
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NoResult"}],
                    },
                    "Undelete": {"Type": "Task", "Resource": "arn:undelete", "End": True},
                    "NoResult": {"Type": "Pass", "End": True},
                },
            },
            "End": True,
        }
    },
}


def child(kind: str, *parts: list[dict[str, Any]] | dict[str, Any], index: int = 0, map_state: str = "Apply") -> dict[str, Any]:
    """One Distributed Map child's own history as the harness logs it: no ExecutionStarted, its states only."""
    events: list[dict[str, Any]] = [{"type": "ChoiceStateEntered", "name": "Which", "input": json.dumps({"kind": kind})}]
    events.append({"type": "ChoiceStateExited", "name": "Which"})
    for part in parts:
        events += part if isinstance(part, list) else [part]
    return {"map": map_state, "index": index, "events": events}


def mapped_run(children: list[dict[str, Any]]) -> dict[str, Any]:
    # moto's parent history shows the Map and its map run, and nothing of the children
    events = history({"type": "MapStateEntered", "name": "Apply"}, {"type": "MapRunStarted"}, {"type": "MapRunSucceeded"})
    return {"workflow": "mapped", "test": "tests/m.py::test_apply", "events": events, "map_children_histories": children}


def test_each_map_child_history_is_its_own_flow_so_its_catch_and_choice_branches_are_measured(tmp_path: Path):
    # Given one copy child whose task crashed into its catcher and one undelete child that succeeded
    crashed_copy = child(
        "copy",
        {"type": "TaskStateEntered", "name": "Copy"},
        lambda_failed("RuntimeError"),
        {"type": "PassStateEntered", "name": "NoResult"},
    )
    undelete = child("undelete", {"type": "TaskStateEntered", "name": "Undelete"}, lambda_ok(), index=1)
    log = tmp_path / "executions.jsonl"
    log.write_text(json.dumps(mapped_run([crashed_copy, undelete])) + "\n")

    coverage = cov.read_log(log, {"mapped": cov.Definition.from_asl(MAP_ASL)})

    # Then the children's states, the catch and both branches count, read from the children's own events
    mapped = coverage["mapped"]
    assert sorted(mapped.states) == ["Apply", "Copy", "NoResult", "Undelete", "Which"]
    assert dict(mapped.catches) == {("Copy", 0): {"tests/m.py::test_apply"}}
    assert set(mapped.branches) == {("Which", 0), ("Which", "Default")}
    assert not mapped.unexplained
    report = cov.render(coverage)
    assert "mapped                        1  5/5 100%       1/1 100%       2/2 100%" in report
    assert "not measured" not in report and "never" not in report


def test_a_map_child_that_never_crashed_leaves_its_catch_listed_as_never_taken(tmp_path: Path):
    copied = child("copy", {"type": "TaskStateEntered", "name": "Copy"}, lambda_ok())
    log = tmp_path / "executions.jsonl"
    log.write_text(json.dumps(mapped_run([copied])) + "\n")

    report = cov.render(cov.read_log(log, {"mapped": cov.Definition.from_asl(MAP_ASL)}))

    assert "states never entered: Undelete, NoResult" in report
    assert "  Catch edges never taken:\n    Copy -[States.ALL]-> NoResult" in report
    assert "    Which.Choices[0] -> Undelete" in report
    assert "not measured" not in report


def test_a_child_whose_task_failed_without_a_catch_shows_the_failure_as_no_edge_and_a_retried_one_as_success(tmp_path: Path):
    # Undelete has no catcher: a crash ends the child there; Copy failing once and then succeeding is no catch
    crashed_undelete = child("undelete", {"type": "TaskStateEntered", "name": "Undelete"}, lambda_failed("RuntimeError"))
    retried_copy = child(
        "copy", {"type": "TaskStateEntered", "name": "Copy"}, lambda_failed("Lambda.ServiceException"), lambda_ok(), index=1
    )

    definition = cov.Definition.from_asl(MAP_ASL)
    seen = [cov.observe_child(definition, c["map"], c["events"]) for c in (crashed_undelete, retried_copy)]

    assert [s.states for s in seen] == [{"Which", "Undelete"}, {"Which", "Copy"}]
    assert [s.branches for s in seen] == [{("Which", 0)}, {("Which", "Default")}]
    assert all(s.catches == set() and s.unexplained == [] for s in seen)


def test_a_child_history_that_leaves_its_item_processor_or_names_no_distributed_map_is_reported():
    definition = cov.Definition.from_asl(MAP_ASL)

    strayed = cov.observe_child(definition, "Apply", child("copy", {"type": "MapStateEntered", "name": "Apply"})["events"])
    orphan = cov.observe_child(definition, "Elsewhere", [{"type": "PassStateEntered", "name": "NoResult"}])

    assert strayed.unexplained == ["a child of Apply entered 'Apply', which is not in its ItemProcessor"]
    assert orphan.unexplained == ["a Map child of 'Elsewhere', which is not a Distributed Map of the definition"]
    assert orphan.states == set()


def test_edges_inside_a_parallel_branch_are_still_listed_as_not_measured(tmp_path: Path):
    asl = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Try",
                        "States": {
                            "Try": {
                                "Type": "Task",
                                "Resource": "arn:try",
                                "End": True,
                                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gave"}],
                            },
                            "Gave": {"Type": "Pass", "End": True},
                        },
                    }
                ],
                "End": True,
            }
        },
    }
    log = tmp_path / "executions.jsonl"
    events = history({"type": "ParallelStateEntered", "name": "Both"}, {"type": "TaskStateEntered", "name": "Try"}, lambda_ok())
    log.write_text(json.dumps({"workflow": "parallel", "test": "t", "events": events}) + "\n")

    report = cov.render(cov.read_log(log, {"parallel": cov.Definition.from_asl(asl)}))

    assert "not measured (inside a Parallel branch or an inline Map, events interleave): Try -[States.ALL]-> Gave" in report


def test_the_real_recordings_map_is_a_distributed_map_whose_children_are_a_flow_of_their_own():
    recordings = cov.load_definitions()["recordings-restore"]

    assert recordings.child_scopes == {
        "ApplyPlan": frozenset(
            {"IsUndeleteBatch", "ApplyRecordingsBatch", "UndeleteRecordingsBatch", "RecordBatchCrash", "BatchLeftNoResult"}
        )
    }
    assert recordings.flows() >= recordings.child_scopes["ApplyPlan"]
