"""Each Task's TimeoutSeconds, read from the deployed definition, outlives the timeout of the very
function it invokes: a slow step then ends in Lambda's own timeout error, not in a Task timeout that
leaves the function running behind the workflow's back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Synthesized

pytestmark = pytest.mark.infra


def definition_text(definition: Any) -> str:
    if isinstance(definition, str):
        return definition
    # {"Fn::Join": ["", [...]]} when CDK had tokens to splice in
    separator, parts = definition["Fn::Join"]
    assert all(isinstance(p, str) for p in parts), "the definition is expected to carry placeholders, not tokens"
    return separator.join(parts)


def tasks_of(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        elif state["Type"] == "Map":
            yield from tasks_of((state.get("ItemProcessor") or state["Iterator"])["States"])
        elif state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from tasks_of(branch["States"])


def test_every_task_times_out_after_the_function_it_invokes(synthesized: Synthesized) -> None:
    functions = synthesized.of_type("AWS::Lambda::Function")
    checked = 0
    for machine_id, machine in synthesized.of_type("AWS::StepFunctions::StateMachine").items():
        properties = machine["Properties"]
        definition = json.loads(definition_text(properties["DefinitionString"]))
        substitutions = properties["DefinitionSubstitutions"]
        for name, task in tasks_of(definition["States"]):
            placeholder = task["Resource"].removeprefix("${").removesuffix("}")
            function_id = substitutions[placeholder]["Fn::GetAtt"][0]
            function_timeout = functions[function_id]["Properties"].get("Timeout", 3)  # Lambda's own default
            assert task["TimeoutSeconds"] > function_timeout, (
                f"{machine_id} {name}: TimeoutSeconds {task['TimeoutSeconds']} <= its function's Timeout {function_timeout}"
            )
            checked += 1
    assert checked >= 30
