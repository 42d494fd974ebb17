"""The in-place-restore definition itself: house rules, and that no path after the stop leaves the app stopped."""

from __future__ import annotations

import json
from typing import Any

import pytest

from restorectl.paths import STATEMACHINES
from tests.unit.asl_catches import failure_catches

pytestmark = pytest.mark.unit

ASL: dict[str, Any] = json.loads((STATEMACHINES / "in-place-restore.asl.json").read_text(encoding="utf-8"))
STATES: dict[str, dict[str, Any]] = ASL["States"]
START_APP = "${StartAppHostsFunctionArn}"
RENAMES = {"${RenameProductionAwayFunctionArn}", "${RenameCopyToProductionFunctionArn}", "${RenameBackFunctionArn}"}


def successors(state: dict[str, Any]) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in failure_catches(state)]
    return [t for t in targets if t]


def ends(state: dict[str, Any]) -> bool:
    return state["Type"] in ("Fail", "Succeed") or bool(state.get("End"))


def ends_reachable_without(start: str, avoid: set[str]) -> list[str]:
    """Final states reachable from `start` on a path that never runs a Task whose Resource is in `avoid`."""
    seen, stack, found = set(), list(successors(STATES[start])), []
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        state = STATES[name]
        if state.get("Resource") in avoid:
            continue
        if ends(state):
            found.append(name)
        stack.extend(successors(state))
    return found


def test_the_definition_follows_the_house_rules() -> None:
    assert ASL["Comment"] and ASL["TimeoutSeconds"] > 0
    for name, state in STATES.items():
        assert state.get("Comment"), name
        if state["Type"] != "Task":
            continue
        keys = list(state)
        assert keys.index("Retry") < keys.index("Catch"), name
        assert state["Retry"][0]["ErrorEquals"][0] == "Lambda.ServiceException", name
        assert failure_catches(state)[-1]["ErrorEquals"] == ["States.ALL"], name
        assert state["TimeoutSeconds"] == (660 if state["Resource"] == "${ValidateRestoreFunctionArn}" else 60), name


def test_every_path_from_the_stop_to_an_end_starts_the_app_again() -> None:
    assert ends_reachable_without("StopApp", {START_APP}) == []
    # and the stop's own failure is such a path: it goes to the rename-back
    assert failure_catches(STATES["StopApp"])[0]["Next"] == "RenameBack"


def test_nothing_before_the_stop_renames_or_stops_anything() -> None:
    before = ["RecordStart", "CheckInPlaceInput", "TakeLock", "StartFinalSnapshot", "DescribeFinalSnapshot", "StartRestore"]
    before += ["DescribeRestore", "ValidateRestore", "ReadHostsDbHost", "CheckHostsServeProduction"]
    for name in before:
        assert failure_catches(STATES[name])[0]["Next"] == "CleanUpAfterFailure", name
    assert STATES["ValidateRestore"]["Next"] == "ReadHostsDbHost"


def test_the_only_way_to_the_stop_is_through_the_check_that_every_host_serves_production() -> None:
    into_stop = sorted(name for name, state in STATES.items() if "StopApp" in successors(state))
    assert into_stop == ["IsDbHostReadDone"]
    (done,) = STATES["IsDbHostReadDone"]["Choices"]
    assert (done["Variable"], done["StringEquals"], done["Next"]) == ("$.hosts_check.state", "done", "StopApp")
    # and the stop stops exactly the hosts that were checked
    assert STATES["StopApp"]["Parameters"]["plan"]["hosts.$"] == "$.hosts_check.hosts"


def test_a_failure_from_the_start_on_stops_the_app_before_renaming_back_and_a_failed_stop_still_renames_back() -> None:
    for name in ["StartApp", "CheckStart", "CheckHealth"]:
        assert [c["Next"] for c in failure_catches(STATES[name])] == ["StopAppAfterStart"], name
    for name in ["StopAppAfterStart", "CheckStopAfterStart"]:
        assert [(c["Next"], c["ResultPath"]) for c in failure_catches(STATES[name])] == [("RenameBack", "$.stop_after_start_failure")], name
    assert STATES["IsStopAfterStartDone"]["Choices"][0]["Next"] == "RenameBack"
    # the stop never renames: it is the app-control document's stop, like the first one
    assert STATES["StopAppAfterStart"]["Resource"] not in RENAMES


def test_only_the_swap_and_the_rename_back_rename_and_every_step_from_the_first_rename_on_renames_back_on_failure() -> None:
    renamers = sorted(name for name, state in STATES.items() if state.get("Resource") in RENAMES)
    assert renamers == ["RenameBack", "RenameCopyToProduction", "RenameProductionAway"]
    forward = ["StopApp", "CheckStop", "RenameProductionAway", "CheckProductionRename", "RenameCopyToProduction", "CheckCopyRename"]
    forward += ["ApplyProductionSettings", "CheckSettingsApplied", "CarryMonitoringOver"]
    for name in forward:
        assert failure_catches(STATES[name])[0]["Next"] == "RenameBack", name
