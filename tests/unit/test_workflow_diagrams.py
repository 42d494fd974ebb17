"""docs/workflows.md is what scripts/asl_diagrams.py draws from the ASL today, and the drawing shows
what a reader needs: every state, Catch edges apart from the rest, Choice branches labelled, loops."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("asl_diagrams", ROOT / "scripts" / "asl_diagrams.py")
assert spec and spec.loader
asl_diagrams = importlib.util.module_from_spec(spec)
spec.loader.exec_module(asl_diagrams)


def test_docs_workflows_md_is_not_stale():
    # Given the definitions as they are now, when they are drawn again in memory
    drawn = asl_diagrams.render()
    # Then the committed file is exactly that drawing
    assert (ROOT / "docs" / "workflows.md").read_text(encoding="utf-8") == drawn, "docs/workflows.md is stale: run `make diagrams`"


def test_drawing_twice_gives_the_same_text():
    assert asl_diagrams.render() == asl_diagrams.render()


@pytest.mark.parametrize("path", sorted((ROOT / "statemachines").glob("*.asl.json")), ids=lambda p: p.name)
def test_every_state_and_transition_is_drawn_with_catches_dotted_and_choices_labelled(path):
    definition = json.loads(path.read_text(encoding="utf-8"))
    chart = asl_diagrams.mermaid(definition)
    lines = chart.splitlines()
    assert lines[0] == "flowchart TD"
    for name, state in definition["States"].items():
        # each state is a node
        assert any(re.match(rf"    {name}[\[\(\{{]", line) for line in lines), name
        # a Map or Parallel continues (and is caught) from where its branches join
        source = f"{name}_done" if state["Type"] in ("Map", "Parallel") else name
        # each Catch is a dotted edge naming its errors, but every top-level Task's RedriveRefused one, drawn once on its target
        for catch in state.get("Catch", []):
            edge = f'    {source} -.->|"Catch: {", ".join(catch["ErrorEquals"])}"| {catch["Next"]}'
            if catch["ErrorEquals"] == asl_diagrams.REDRIVE_CATCH:
                assert edge not in lines
                assert any(
                    line.startswith(f"    {catch['Next']}(") and "from every top-level Task: Catch RedriveRefused" in line for line in lines
                )
            else:
                assert edge in lines
        # each Choice branch is a labelled solid edge, the Default labelled "otherwise"
        if state["Type"] == "Choice":
            for rule in state["Choices"]:
                assert any(line.startswith(f"    {name} -->|") and line.endswith(f"| {rule['Next']}") for line in lines)
            if "Default" in state:
                assert f'    {name} -->|"otherwise"| {state["Default"]}' in lines
        elif "Next" in state:
            assert f"    {source} --> {state['Next']}" in lines
    assert f"    start --> {definition['StartAt']}" in lines


def test_a_poll_loop_is_visible_as_a_wait_node_and_an_edge_back_to_it():
    chart = asl_diagrams.mermaid(json.loads((ROOT / "statemachines" / "restore.asl.json").read_text(encoding="utf-8")))
    assert '    WaitForRestore{{"WaitForRestore<br/>wait $.restore.next_wait_seconds s"}}' in chart
    assert '    IsRestoreAvailable -->|"$.restore.state == #quot;available#quot;"| ValidateRestore' in chart
    assert '    IsRestoreAvailable -->|"otherwise"| WaitForRestore' in chart


def test_conditions_read_as_words_and_nested_states_are_drawn():
    assert asl_diagrams.condition(
        {"And": [{"Variable": "$.a", "IsPresent": True}, {"Not": {"Variable": "$.b", "NumericGreaterThan": 3}}]}
    ) == ("$.a is present and not $.b > 3")
    assert asl_diagrams.condition({"Or": [{"Variable": "$.a", "StringEqualsPath": "$.b"}, {"Variable": "$.c", "IsNull": False}]}) == (
        "$.a == $.b or $.c is not null"
    )
    nested = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "Apply", "States": {"Apply": {"Type": "Task", "Resource": "x", "End": True}}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "E"},
        },
    }
    chart = asl_diagrams.mermaid(nested)
    assert "    subgraph Each_group" in chart and '    Each__0__Apply["Apply"]' in chart
    assert '    Each -->|"each item"| Each__0__Apply' in chart and "    Each__0__Apply --> Each_done" in chart
    assert "    Each_done --> Done" in chart
    assert '    Each_done -.->|"Catch: States.ALL"| Failed' in chart
