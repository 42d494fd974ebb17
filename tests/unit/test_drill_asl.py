"""The drill's definition keeps the house rules, and routes every failure after the copy may exist through teardown."""

from __future__ import annotations

import json

import pytest

from restorectl.paths import FUNCTIONS_MANIFEST, STATEMACHINES
from tests.unit.asl_catches import failure_catches

pytestmark = pytest.mark.unit

DRILL = json.loads((STATEMACHINES / "drill.asl.json").read_text())
RESTORE = json.loads((STATEMACHINES / "restore.asl.json").read_text())
STATES = DRILL["States"]
TASKS = {name: state for name, state in STATES.items() if state["Type"] == "Task"}


def successors(name: str) -> set[str]:
    state = STATES[name]
    found = {state[key] for key in ("Next", "Default") if key in state}
    found |= {c["Next"] for c in failure_catches(state)}
    found |= {c["Next"] for c in state.get("Choices", [])}
    return found


def reachable_without(start: str, avoid: str) -> set[str]:
    """States reachable from `start` on paths that never pass `avoid`."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name == avoid:
            continue
        seen.add(name)
        todo.extend(successors(name))
    return seen


def test_the_definition_has_a_comment_and_a_timeout_and_every_task_the_house_rules():
    assert DRILL["Comment"] and DRILL["TimeoutSeconds"] >= 8 * 3600  # restore's polls, a 4-hour keep, validation, teardown
    (standard_retry,) = {json.dumps(s["Retry"]) for s in RESTORE["States"].values() if s["Type"] == "Task"}
    for name, state in TASKS.items():
        assert state["Comment"], name
        assert json.dumps(state["Retry"]) == standard_retry, name
        assert [c["ErrorEquals"] for c in failure_catches(state)] == [["States.ALL"]], name
        keys = list(state)
        assert keys.index("Retry") < keys.index("Catch"), name
        # the validate function has 10 minutes, the recordings check 5 (it copies and reads back recordings)
        expected = {"${ValidateRestoreFunctionArn}": 660, "${CheckDrillRecordingsFunctionArn}": 330}.get(state["Resource"], 60)
        assert state["TimeoutSeconds"] == expected, name


def test_it_reuses_restores_own_steps_and_every_placeholder_has_a_handler():
    manifest = json.loads(FUNCTIONS_MANIFEST.read_text())
    resources = {state["Resource"] for state in TASKS.values()}
    assert {"${StartRestoreFunctionArn}", "${DescribeRestoreFunctionArn}", "${ValidateRestoreFunctionArn}"} <= resources
    assert "${CleanupRestoreFunctionArn}" not in resources and "${StartCutoverFunctionArn}" not in resources
    for resource in resources:
        assert resource.removeprefix("${").removesuffix("}") in manifest, resource
    assert all(state["Parameters"]["context"]["workflow"] == "drill" for state in TASKS.values())


@pytest.mark.parametrize("state", ["StartRestore", "CheckRecordings", "RemoveRecordingsScratch", "DescribeRestore", "ValidateRestore"])
def test_every_failure_once_the_copy_may_exist_reaches_the_record_only_through_the_teardown(state):
    (catch,) = failure_catches(STATES[state])
    assert "RecordFailure" not in reachable_without(catch["Next"], avoid="TearDown")
    assert "ExplainFailure" not in reachable_without(catch["Next"], avoid="TearDown")
    assert "TearDown" in reachable_without(catch["Next"], avoid="RecordFailure")


def test_the_recordings_check_runs_while_rds_restores_and_its_scratch_is_removed_on_every_path_out_of_it():
    assert STATES["StartRestore"]["Next"] == "CheckRecordings"
    assert successors("CheckRecordings") == {"RemoveRecordingsScratch"}
    assert successors("RemoveRecordingsScratch") == {"WaitForRestore"}
    # a failed check or scratch removal fails the drill, after the teardown
    (either,) = STATES["AfterTeardown"]["Choices"]
    assert {"Variable": "$.recordings_failure", "IsNull": False} in either["Or"]
    assert {"Variable": "$.recordings_cleanup_failure", "IsNull": False} in either["Or"]


def test_success_also_deletes_the_copy_before_it_is_measured_and_recorded():
    assert "RecordSuccess" not in reachable_without("ValidateRestore", avoid="TearDown")
    assert "MeasureDrill" not in reachable_without("ValidateRestore", avoid="TearDown")


def test_the_drill_locks_its_own_resource_and_the_keep_wait_reads_the_checked_keep_minutes():
    # TakeLock derives the resource from the plan through the journal's registry: drill:<source>, never rds:<source>
    from restore_runbook.drill import request as drill
    from restore_runbook.journal.workflows import traits_of

    assert STATES["TakeLock"]["Parameters"]["plan.$"] == "$.drill.plan"
    lock = traits_of("drill").lock
    assert lock is not None and lock.resource({"source_instance": "irisx-prod-rds-postgres"}) == drill.lock_resource(
        "irisx-prod-rds-postgres"
    )
    assert STATES["KeepForInspection"] == {**STATES["KeepForInspection"], "Type": "Wait", "SecondsPath": "$.drill.keep_seconds"}
