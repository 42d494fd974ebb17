"""The "still running" loop-backs: a real SSM command reads InProgress for seconds, so every Wait ->
check -> Choice loop over a host command must go round again rather than decide on a half-run
command. `command_polls=N` makes every emulated command read InProgress for its first N polls."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.workflow.conftest import SOURCE, instance_ids
from tests.workflow.test_cutover_workflow import endpoint_of
from tests.workflow.test_double_faults import CONFIRMED, FAST_IN_PLACE, QUICK, block_connections, on_the_original
from tests.workflow.test_journal_workflow import locks
from tests.workflow.test_rollback_never_leaves_the_app_stopped import a_cut_over_copy, hosts_of

pytestmark = pytest.mark.workflow


def went_round(result: Any, choice: str, wait: str) -> int:
    """How often `choice` sent the execution back to `wait` (its still-running Default)."""
    states = result.states()
    return sum(1 for here, there in itertools.pairwise(states) if (here, there) == (choice, wait))


def check_outputs(result: Any, state: str) -> list[dict[str, Any]]:
    outputs, current = [], None
    for event in result.history:
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        elif current == state and event["type"] in ("LambdaFunctionSucceeded", "TaskSucceeded"):
            outputs.append(json.loads(next(v for k, v in event.items() if k.endswith("EventDetails"))["output"]))
    return outputs


def test_a_cutover_waits_while_its_commands_still_run_then_succeeds(rehearsal):
    world = rehearsal(**QUICK, command_polls=2)

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    assert result.status == "SUCCEEDED", result.cause
    assert went_round(result, "IsCutoverDone", "WaitForCutover") >= 2
    target = result.output["target_instance"]
    assert hosts_of(result) == [(endpoint_of(target), "connected")] * 2


def test_a_revert_waits_while_its_commands_still_run_then_the_original_serves(rehearsal):
    world = rehearsal(**QUICK, app_blocked_from_restored=True, command_polls=2)

    result = world.run("restore", {"mode": "snapshot", "cutover": True})

    assert (result.status, result.error) == ("FAILED", "HealthCheckFailed")
    assert went_round(result, "IsRevertDone", "WaitForRevert") >= 2
    assert hosts_of(result) == on_the_original(result)
    assert instance_ids(result.world) == [SOURCE]
    assert locks(result) == []


def test_a_rollback_waits_for_the_stop_and_the_revert_to_finish_before_checking_health(rehearsal):
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    world.app_hosts.command_polls = 2  # from here on, as a real SSM answers

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    assert result.status == "SUCCEEDED", result.cause
    assert went_round(result, "IsStopDone", "WaitForStop") >= 2
    assert went_round(result, "IsRevertDone", "WaitForRevert") >= 2
    assert hosts_of(result) == on_the_original(result)
    assert instance_ids(result.world) == [SOURCE]


def test_a_rollback_waits_for_each_restart_when_it_falls_back_to_the_copy(rehearsal):
    world = rehearsal(**QUICK)
    target = a_cut_over_copy(world)
    block_connections(world, SOURCE)
    world.app_hosts.command_polls = 2

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert went_round(result, "IsRestartOnOriginalDone", "WaitForRestartOnOriginal") >= 2
    assert went_round(result, "IsRestartOnCopyDone", "WaitForRestartOnCopy") >= 2
    assert hosts_of(result) == [(endpoint_of(target), "connected")] * 2


def test_an_in_place_restore_waits_for_the_stop_and_the_start_of_the_app(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, command_polls=2)

    result = world.run("in-place-restore", CONFIRMED)

    assert result.status == "SUCCEEDED", result.cause
    assert went_round(result, "IsDbHostReadDone", "WaitForDbHostRead") >= 2
    assert went_round(result, "IsStopDone", "WaitForStop") >= 2
    assert went_round(result, "IsStartDone", "WaitForStart") >= 2
    assert hosts_of(result) == on_the_original(result)


def test_an_in_place_restore_failing_after_the_start_waits_for_the_app_to_stop_before_renaming_back(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, command_polls=2, inject=["CheckHealth=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    assert went_round(result, "IsStopAfterStartDone", "WaitForStopAfterStart") >= 2
    states = result.states()
    assert len(states) - states[::-1].index("IsStopAfterStartDone") - 1 < states.index("RenameBack"), "renamed back only once stopped"
    assert hosts_of(result) == on_the_original(result)


def test_an_in_place_restore_renamed_back_waits_for_the_restart_on_the_original(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, command_polls=2, inject=["RenameCopyToProduction=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    assert (result.status, result.error) == ("FAILED", "RuntimeError")
    assert went_round(result, "IsRestartOnOriginalDone", "WaitForRestartOnOriginal") >= 2
    assert hosts_of(result) == on_the_original(result)


def test_an_app_started_after_a_failed_rename_back_is_waited_for(rehearsal):
    world = rehearsal(**FAST_IN_PLACE, command_polls=2, inject=["StopApp=RuntimeError", "RenameBack=RuntimeError"])

    result = world.run("in-place-restore", CONFIRMED)

    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert went_round(result, "IsStartAfterFailedRenameBackDone", "WaitForStartAfterFailedRenameBack") >= 2
    assert hosts_of(result) == on_the_original(result)
