"""Redrive pressed on a run the test just made, resumed at each of its steps in turn
(Rehearsal.redrive's `resume_at`: a stand-in for an execution that stopped there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restorectl.harness import Rehearsal


def assert_each_redrive_refused(world: Rehearsal, result: Any, *, only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[str]:
    """Resume `result`'s execution at each Task it entered (and at each Map state, whose children are
    Tasks), or at `only` those, but `skip`: each attempt must end where it resumed, in RedriveRefused,
    and leave the world exactly as the run left it. Returns the states resumed at."""
    world.bridge.injections.clear()  # the faults a test injected are over by the time someone presses Redrive
    top_level = {step["state"]: step["type"] for step in result.path}
    missing = [state for state in only if state not in top_level]
    assert not missing, f"the run never entered {missing}, so no redrive can resume there"
    resumed = [s for s, kind in top_level.items() if kind in ("Task", "Map") and s not in skip and (not only or s in only)]
    for state in resumed:
        redriven = world.redrive(result.execution_arn, resume_at=state)
        where = f"{result.workflow} redriven at {state}"
        assert (redriven.status, redriven.error) == ("FAILED", "RedriveRefused"), f"{where}: {redriven.error}: {redriven.cause}"
        assert redriven.invocations and {i["error"] for i in redriven.invocations} == {"RedriveRefused"}, f"{where}: {redriven.invocations}"
        assert f"and {redriven.invocations[-1]['state']} did nothing" in str(redriven.cause), f"{where}: {redriven.cause}"
        if top_level[state] == "Task":
            assert redriven.states() == [state, "ReadRedriveRefusal", "RedriveRefused"], f"{where}: {redriven.states()}"
        else:
            # every child's step refused (each child ends as a batch that left no result), then the parent's next step
            assert redriven.map_children and all("BatchLeftNoResult" in c.states() for c in redriven.map_children), where
            assert redriven.states()[-3:-1] == [redriven.invocations[-1]["state"], "ReadRedriveRefusal"], f"{where}: {redriven.states()}"
        assert redriven.world == result.world, f"{where}: the redriven attempt changed the world"
    return resumed
