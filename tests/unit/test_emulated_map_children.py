"""The emulation's record of each Distributed Map child's own history, which moto runs and drops."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restorectl import emulated_map_children
from restorectl.emulated_map_children import MapChildren, UncheckedMotoVersion

pytestmark = pytest.mark.unit

# A child per item: a Choice sends "bad" items to a Fail state (no catcher: the child fails) and the rest to a Pass.
ASL = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ToleratedFailurePercentage": 100.0,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "IsBad",
                "States": {
                    "IsBad": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.bad", "BooleanEquals": True, "Next": "Broke"}],
                        "Default": "Fine",
                    },
                    "Fine": {"Type": "Pass", "End": True},
                    "Broke": {"Type": "Fail", "Error": "ItemBroke", "Cause": "a bad item"},
                },
            },
            "End": True,
        }
    },
}


def run(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    children = MapChildren()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), children.installed():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(name="m", definition=json.dumps(ASL), roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": items}))["executionArn"]
        deadline = time.monotonic() + 30
        while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.02)
        parent = sfn.get_execution_history(executionArn=execution)["events"]
        return parent, children.of(execution)


def entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def test_each_child_keeps_its_own_states_in_item_order_while_the_parent_history_has_none_of_them():
    parent, children = run([{"bad": False}, {"bad": True}, {"bad": False}])

    assert entered(parent) == ["Each"]  # moto's own history: the Map, and nothing of its children
    assert [(c["map"], c["index"]) for c in children] == [("Each", 0), ("Each", 1), ("Each", 2)]
    assert [entered(c["events"]) for c in children] == [["IsBad", "Fine"], ["IsBad", "Broke"], ["IsBad", "Fine"]]
    # Plain JSON as the API answers, so the coverage log and path_from_history read it like the parent's
    choice = children[1]["events"][0]
    assert choice["type"] == "ChoiceStateEntered" and type(choice["type"]) is str
    assert json.loads(choice["stateEnteredEventDetails"]["input"]) == {"bad": True}
    assert "ItemBroke" not in json.dumps(parent, default=str)  # moto swallows the child's failure; only the child's history shows it


def test_an_unchecked_moto_version_is_refused_instead_of_silently_losing_the_children(monkeypatch: pytest.MonkeyPatch):
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")

    with pytest.raises(UncheckedMotoVersion, match=r"checked against moto 5\.2\.5, not 5\.3\.0"), MapChildren().installed():
        pass
    assert emulated_map_children.CHECKED_MOTO_VERSIONS == ("5.2.5",)


def test_the_coverage_log_line_carries_each_child_history_reduced_like_the_parents(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from restorectl import harness

    _parent, children = run([{"bad": True}])
    log = tmp_path / "executions.jsonl"
    monkeypatch.setenv(harness.HISTORY_LOG_ENV, str(log))
    runs = [
        harness.MapChildRun(map_state=c["map"], index=c["index"], path=harness.path_from_history(c["events"]), history=c["events"])
        for c in children
    ]

    harness._log_history("mapped", [], runs)

    (line,) = log.read_text().splitlines()
    (logged,) = json.loads(line)["map_children_histories"]
    assert logged["map"] == "Each" and logged["index"] == 0
    assert [e.get("name") for e in logged["events"] if e["type"].endswith("StateEntered")] == ["IsBad", "Broke"]
    assert json.loads(logged["events"][0]["input"]) == {"bad": True}  # a Choice's input, to tell branches apart
    assert runs[0].states() == ["IsBad", "Broke"]
