"""A fault at every Task of every workflow, and the guarantees hold after each.

For each workflow scenario, fault_matrix_tasks.json lists the Task states its success run enters,
in its execution history and its Distributed Map children's own histories (a test runs each success
path and holds the list to it); then every such Task is faulted in turn:

- crash: the handler fails on every attempt (`State=RuntimeError`);
- crash-after-acting: the handler acts, then its answer is lost (`State=RuntimeError@after`);
- timeout: the Task runs past its TimeoutSeconds (`State=States.Timeout`);
- transient: Lambda's service fails once (`State=Lambda.ServiceException:1`); the Retry absorbs it
  and the run succeeds. (The definitions retry only Lambda's own transient errors: a handler's
  crash is a defect, not noise, so `RuntimeError:1` is a crash and is covered as one.)

After each run tests/workflow/invariants.py checks the world: production present, available and
unmodified; every host running and healthy on a database that answers; nothing created left
unnamed; no lock; the journal record closed; a named error whose cause is true. Where a design
reports a failure and SUCCEEDS, DOCUMENTED_SUCCESSES says so, with why.

Cost: a world is reused while a run leaves it as it was built (`Capture.as_built`; after a failed
restore, snapshot or drill that is asserted), and built afresh after a run that by design leaves
something (a restored copy, a swap). The crash-after-acting column runs in `make test`; crash,
timeout and transient are marked `faults_full` (`make faults`), see the README.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from restorectl.emulated_recordings import BAD_DEPLOY_AGO
from restorectl.harness import Rehearsal, RehearsalOptions
from restorectl.lambda_bridge import Injection
from restorectl.localpg import LocalPostgres
from tests.workflow import invariants
from tests.workflow.conftest import SOURCE, endpoint_of
from tests.workflow.redrives import assert_each_redrive_refused

pytestmark = pytest.mark.workflow

# Small and quick: 200 calls rows, the shortest simulated restores, snapshots and renames that still loop.
OPTIONS = {"calls_rows": 200, "restore_minutes": 2, "snapshot_minutes": 1, "rename_minutes": 1, "recordings": 10}
REQUESTED_BY = "fault matrix"


@dataclass(frozen=True)
class Scenario:
    name: str
    workflow: str
    execution_input: Callable[[Rehearsal, dict[str, Any]], dict[str, Any]]
    # Runs before the execution under test (a rollback needs production cut over first); returns what the input needs.
    prepare: Callable[[Rehearsal], dict[str, Any]] = lambda _world: {}
    # What the workflow documents for its own success, beyond "everything as it was".
    on_success: Callable[[Rehearsal, dict[str, Any], Any], invariants.Expected] = lambda *_: invariants.Expected("SUCCEEDED")
    on_failure: Callable[[Rehearsal, dict[str, Any]], invariants.Expected] = lambda *_: invariants.Expected("FAILED")
    # Whether a failed run, by design, leaves the world exactly as it found it (then the next case reuses it).
    failure_returns_to_start: bool = True


def cut_over(world: Rehearsal) -> dict[str, Any]:
    restored = world.run("restore", {"mode": "snapshot", "cutover": True, "requested_by": REQUESTED_BY})
    assert restored.status == "SUCCEEDED", f"the cutover a rollback needs did not succeed: {restored.error}: {restored.cause}"
    return {"target": restored.output["target_instance"]}


def cutover_success(world: Rehearsal, _prepared: dict[str, Any], result: Any) -> invariants.Expected:
    # The hosts now run on the validated copy, which the output names; the source is left as it was.
    return invariants.Expected("SUCCEEDED", db_hosts_allowed=(result.output["endpoint"]["address"],))


def rollback_success(_world: Rehearsal, prepared: dict[str, Any], _result: Any) -> invariants.Expected:
    return invariants.Expected("SUCCEEDED", db_hosts_allowed=(endpoint_of(SOURCE),), deletes=(prepared["target"],))


def rollback_failure(_world: Rehearsal, prepared: dict[str, Any]) -> invariants.Expected:
    # From the stop on, a failed rollback starts the app again on the original (DESIGN: never left stopped);
    # a failure of the delete step itself may come after the copy is gone, which the cause must then say.
    return invariants.Expected("FAILED", db_hosts_allowed=(endpoint_of(SOURCE),), deletes=(prepared["target"],))


def in_place_success(_world: Rehearsal, _prepared: dict[str, Any], _result: Any) -> invariants.Expected:
    # The swap is the point: production's name now belongs to the validated copy, with production's settings.
    return invariants.Expected("SUCCEEDED", production_replaced=True)


def in_place_failure(_world: Rehearsal, _prepared: dict[str, Any]) -> invariants.Expected:
    # A failure after the first rename renames back: the original is production again and says so with the
    # production marker (DESIGN: production is fenced wherever it runs), keeping the provenance the swap
    # wrote on it (which execution renamed it away, when). No other tag may change.
    allowed = {
        invariants.TAG_ROLE: invariants.ROLE_PRODUCTION,
        invariants.TAG_SWAPPED_BY: invariants.THIS_EXECUTION,
        invariants.TAG_SWAPPED_AT: None,
    }
    return invariants.Expected("FAILED", production_tags_allowed=allowed)


def bad_deploy_time(world: Rehearsal) -> str:
    return (world.clock.now() - BAD_DEPLOY_AGO).strftime("%Y-%m-%dT%H:%M:%SZ")


SCENARIOS = [
    Scenario(
        "restore-point-in-time",
        "restore",
        lambda *_: {"mode": "point-in-time", "restore_time": "latest", "requested_by": REQUESTED_BY},
    ),
    Scenario(
        "restore-with-cutover",
        "restore",
        lambda *_: {"mode": "snapshot", "cutover": True, "requested_by": REQUESTED_BY},
        on_success=cutover_success,
    ),
    Scenario("snapshot", "snapshot", lambda *_: {"reason": "pre-migration", "requested_by": REQUESTED_BY}),
    Scenario(
        "rollback-after-cutover",
        "rollback",
        lambda _world, prepared: {"restored_instance": prepared["target"], "confirm": prepared["target"], "requested_by": REQUESTED_BY},
        prepare=cut_over,
        on_success=rollback_success,
        on_failure=rollback_failure,
        # A failed rollback keeps the copy (it served production) and leaves the app on the original.
        failure_returns_to_start=False,
    ),
    Scenario("drill", "drill", lambda *_: {"requested_by": REQUESTED_BY}),
    Scenario(
        "in-place-restore",
        "in-place-restore",
        lambda *_: {"confirm": SOURCE, "mode": "point-in-time", "reason": "fault matrix", "requested_by": REQUESTED_BY},
        on_success=in_place_success,
        on_failure=in_place_failure,
        # After the first rename, renaming back marks the original as production (in_place_failure).
        failure_returns_to_start=False,
    ),
    Scenario(
        "recordings-restore",
        "recordings-restore",
        lambda world, _prepared: {"bucket": "irisx-recordings", "prefix": "recordings/", "as_of": bad_deploy_time(world)},
        # A failure after the Map ran keeps what it restored (new current versions; re-running changes nothing more).
        failure_returns_to_start=False,
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class Fault:
    name: str
    spec: str  # `{state}` is the Task's name: the harness's --inject syntax
    error: str
    succeeds: bool = False
    full_only: bool = False  # runs under `make faults`, not `make test`


FAULTS = [
    # make test runs the crash after acting at every Task (the harsher: the step's effects happened,
    # its answer did not); the other three columns run in make faults, to keep CI within its time.
    Fault("crash", "{state}=RuntimeError", "RuntimeError", full_only=True),
    Fault("crash-after-acting", "{state}=RuntimeError@after", "RuntimeError"),
    Fault("timeout", "{state}=States.Timeout", "States.Timeout", full_only=True),
    Fault("transient", "{state}=Lambda.ServiceException:1", "Lambda.ServiceException", succeeds=True, full_only=True),
]

# (workflow, state): why a fault there ends SUCCEEDED. Each is the workflow's own documented choice
# (its Catch goes on to success), and the run is still held to every invariant of a success.
END_RECORD = "the work is done; only the end record failed: ReleaseWithoutRecord releases the lock and notifies (README, journal)"
DOCUMENTED_SUCCESSES: dict[tuple[str, str], str] = {
    **{(workflow, "RecordSuccess"): END_RECORD for workflow in {s.workflow for s in SCENARIOS}},
    ("restore", "ProtectNewProduction"): "the cutover is healthy; deletion protection on the new production is reported unconfirmed",
    ("snapshot", "ApplyRetention"): "the snapshot is available; pruning old ones is housekeeping, retried by the next run",
    ("in-place-restore", "ReportInPlaceRestore"): "the swap is done and healthy; only the report is missing (ReportUnavailable)",
    ("restore", "CarryMonitoringOver"): "the cutover is healthy; alarms not carried over are reported with what to do by hand",
    ("rollback", "CarryMonitoringBack"): "the app is healthy on the original and the copy is deleted; leftover alarms are reported",
}
# (workflow, state, fault): why that one fault there ends SUCCEEDED. A recordings batch whose answer is
# lost after it wrote its result file is judged by that file (recordings/report.py): every entry was done.
BATCH_RESULT = "the batch wrote its result file before its answer was lost; the aggregation judges batches by their files"
DOCUMENTED_SUCCESSES_OF_FAULT: dict[tuple[str, str, str], str] = {
    ("recordings-restore", "ApplyRecordingsBatch", "crash-after-acting"): BATCH_RESULT,
    ("recordings-restore", "UndeleteRecordingsBatch", "crash-after-acting"): BATCH_RESULT,
}
# (workflow, state): a RUNNING journal record is the documented outcome: the end record is what failed,
# and `restorectl status` shows the execution's real outcome beside it (README, journal).
JOURNAL_STAYS_RUNNING = {(workflow, "RecordSuccess") for workflow in {s.workflow for s in SCENARIOS}}
# (workflow, state): a failure there leaves something by design (named in the cause, which the invariants check).
LEAVES_BY_DESIGN = {
    ("drill", "TearDown"): "a teardown that fails leaves the copy to the daily drill sweep",
    ("snapshot", "StartSnapshot"): "a snapshot whose start answer was lost is left to finish (it may become available)",
    ("snapshot", "DescribeSnapshot"): "a snapshot still being taken is left to finish (it may become available)",
}
# (workflow, state): a failure there leaves the world as it found it but for a final snapshot still being taken,
# which the cause names; the world is then built afresh (the next copy could be given the same name).
LEAVES_A_FINAL_SNAPSHOT = {
    ("restore", state): "a copy the hosts were pointed at goes with a final snapshot (the app may have written to it)"
    for state in ("StartCutover", "CheckCutover", "CheckHealthOnRestored")
}
# (scenario, state, fault): a real defect the matrix found and this change does not fix.
KNOWN_DEFECTS: dict[tuple[str, str, str], str] = {}


# ---------------------------------------------------------------------------------------- discovery

# Each scenario's Tasks, in the order its success run enters them. Collection reads them here (every
# test worker collects, and running seven success paths there cost each worker half a minute);
# test_each_success_path_enters_exactly_the_tasks_the_matrix_faults runs the success paths and fails
# on any difference, so a Task added to a success path cannot go unfaulted.
TASKS_FILE = Path(__file__).with_name("fault_matrix_tasks.json")
REWRITE = "python -m tests.workflow.test_fault_matrix --write-tasks"


def tasks_entered(result: Any) -> list[str]:
    """The Task states a run entered, in first-entered order, read from its execution history and
    then from its Distributed Map children's own histories (a child is an execution of its own)."""
    seen: list[str] = []
    for step in [*result.path, *(step for child in result.map_children for step in child.path)]:
        if step["type"] == "Task" and step["state"] not in seen:
            seen.append(step["state"])
    return seen


def run_success_path(pg: LocalPostgres, scenario: Scenario, then: Callable[[Rehearsal, Any], None] | None = None) -> tuple[Any, list[str]]:
    """The scenario run without a fault, and the invariants of its success it broke (none, or a defect);
    `then(world, result)` runs in the same world afterwards, when the run succeeded."""
    with Rehearsal(pg, RehearsalOptions(**OPTIONS)) as world:  # type: ignore[arg-type]
        prepared = scenario.prepare(world)
        before = invariants.capture(world)
        execution_arn = world.start(scenario.workflow, scenario.execution_input(world, prepared))
        result = world.follow(scenario.workflow, execution_arn)
        expected = scenario.on_success(world, prepared, result) if result.status == "SUCCEEDED" else invariants.Expected("SUCCEEDED")
        broken = invariants.violations(result, before, expected, execution_arn=execution_arn)
        if then is not None and result.status == "SUCCEEDED" and not broken:
            then(world, result)
        return result, broken


def listed_tasks() -> dict[str, list[str]]:
    listed: dict[str, list[str]] = json.loads(TASKS_FILE.read_text())
    return listed


@dataclass(frozen=True)
class Case:
    scenario: str
    state: str
    fault: Fault

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.state}/{self.fault.name}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    tasks = listed_tasks()
    params = []
    for scenario in SCENARIOS:
        for state in tasks[scenario.name]:
            for fault in FAULTS:
                # One scenario's cases stay on one worker under `--dist loadgroup` (make faults), which
                # then builds each scenario's world once instead of once per worker it lands on.
                marks: list[Any] = [pytest.mark.xdist_group(scenario.name)]
                if fault.full_only:
                    marks.append(pytest.mark.faults_full)
                defect = KNOWN_DEFECTS.get((scenario.name, state, fault.name))
                if defect:
                    marks.append(pytest.mark.xfail(strict=True, reason=defect))
                case = Case(scenario.name, state, fault)
                params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_success_path_enters_exactly_the_tasks_the_matrix_faults(worlds: Worlds, scenario: Scenario) -> None:
    worlds.close()  # the last fault case's world may still be open (make faults runs these last), and one is open at a time
    result, broken = run_success_path(worlds.pg, scenario)
    assert result.status == "SUCCEEDED", f"the {scenario.name} success path failed: {result.error}: {result.cause}"
    assert not broken, f"the {scenario.name} success path broke:\n- " + "\n- ".join(broken)
    entered, listed = tasks_entered(result), listed_tasks().get(scenario.name)
    assert entered == listed, (
        f"the {scenario.name} success path enters {entered}, but {TASKS_FILE.name} lists {listed} for the matrix to fault; "
        f"if the change is meant, rewrite the file with `{REWRITE}`"
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_a_redrive_resumed_at_any_task_of_a_success_path_ends_there_and_changes_nothing(worlds: Worlds, scenario: Scenario) -> None:
    worlds.close()  # one rehearsal is open at a time
    resumed: list[str] = []
    result, broken = run_success_path(worlds.pg, scenario, then=lambda world, run: resumed.extend(assert_each_redrive_refused(world, run)))
    assert result.status == "SUCCEEDED" and not broken, f"the {scenario.name} success path failed: {result.error}: {broken}"
    assert resumed, f"the {scenario.name} success path entered no Task to resume at"
    # (The failure paths' Tasks are resumed the same way, each once, after the crash-after-acting cases of the matrix.)


# ---------------------------------------------------------------------------------------- worlds


@dataclass
class Worlds:
    """The world the current scenario's cases run in, reused while each run leaves it as it was built.

    One at a time: moto's emulated AWS is one per process, so two open rehearsals would share it.
    Cases are parametrized scenario by scenario, so each scenario builds its world once, and again
    only after a run that by design leaves something behind.
    """

    pg: LocalPostgres
    scenario: str | None = None
    world: Rehearsal | None = None
    start: invariants.Capture | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def world_for(self, scenario: str) -> tuple[Rehearsal, invariants.Capture]:
        if scenario != self.scenario:
            self.close()
        if self.world is None or self.start is None:
            self.world = self.stack.enter_context(Rehearsal(self.pg, RehearsalOptions(**OPTIONS)))  # type: ignore[arg-type]
            self.scenario, self.start = scenario, invariants.capture(self.world)
        return self.world, self.start

    def done_with(self, keep: bool) -> None:
        if not keep:
            self.close()

    def close(self) -> None:
        self.stack.close()
        self.scenario, self.world, self.start = None, None, None


@pytest.fixture(scope="module")
def worlds(local_pg: LocalPostgres) -> Iterator[Worlds]:
    pool = Worlds(local_pg)
    try:
        yield pool
    finally:
        pool.close()


# ---------------------------------------------------------------------------------------- the matrix


def expected_outcome(scenario: Scenario, world: Rehearsal, prepared: dict[str, Any], case: Case, result: Any) -> invariants.Expected:
    succeeds = (
        case.fault.succeeds
        or (scenario.workflow, case.state) in DOCUMENTED_SUCCESSES
        or (scenario.workflow, case.state, case.fault.name) in DOCUMENTED_SUCCESSES_OF_FAULT
    )
    if not succeeds:
        expected = scenario.on_failure(world, prepared)
    elif result.status == "SUCCEEDED":
        expected = scenario.on_success(world, prepared, result)
    else:
        expected = invariants.Expected("SUCCEEDED")  # it failed: the outcome invariant says so, with the cause
    expected.journal_may_stay_running = not case.fault.succeeds and (scenario.workflow, case.state) in JOURNAL_STAYS_RUNNING
    return expected


# The failure-path steps each scenario's crash-after-acting cases have resumed a redrive at (per test process).
REDRIVES_RESUMED: dict[str, set[str]] = {}


def test_a_fault_at_any_task_leaves_production_serving_and_everything_accounted_for(worlds: Worlds, case: Case) -> None:
    scenario = BY_NAME[case.scenario]
    world, start = worlds.world_for(scenario.name)
    keep = False
    try:
        prepared = scenario.prepare(world)
        before = invariants.capture(world)
        world.bridge.injections[:] = [Injection.parse(case.fault.spec.format(state=case.state))]
        try:
            clock_before, invocations_before = world.clock.waited_seconds, len(world.bridge.invocations)
            execution_arn = world.start(scenario.workflow, scenario.execution_input(world, prepared))
            result = world.follow(scenario.workflow, execution_arn, clock_before=clock_before, invocations_before=invocations_before)
        finally:
            world.bridge.injections.clear()

        # The fault really happened at that Task (a case that faults nothing proves nothing).
        faulted = [i for i in result.invocations if i["state"] == case.state and i["error"] == case.fault.error]
        assert faulted, (
            f"{case.state} was never faulted with {case.fault.error}; the run ended {result.status} ({result.error}: {result.cause}) "
            f"along {result.states()}"
        )

        expected = expected_outcome(scenario, world, prepared, case, result)
        broken = invariants.violations(
            result, before, expected, execution_arn=execution_arn, injected=None if case.fault.succeeds else case.fault.error
        )
        assert not broken, f"{case.id} broke {len(broken)} invariant(s):\n- " + "\n- ".join(broken) + f"\npath: {result.states()}"
        if case.fault.name == "crash-after-acting":
            # A redrive of this run, resumed at any step of its failure path not resumed yet in this scenario,
            # refuses there and changes nothing. Once per step is enough: every step refuses on the redrive count
            # its event carries (common/redrive.py), whatever the attempt before it did.
            resumed = REDRIVES_RESUMED.setdefault(scenario.name, set())
            resumed.update(assert_each_redrive_refused(world, result, skip=[*listed_tasks()[scenario.name], *resumed]))
        after = invariants.capture(world)
        keep = after.as_built(start)
        if (scenario.workflow, case.state) in LEAVES_A_FINAL_SNAPSHOT and result.status == "FAILED":
            finals = frozenset(s for s in after.snapshot_ids - start.snapshot_ids if "-final-" in s)
            assert finals, f"{case.id}: a failed restore after its cutover must keep a final snapshot of the copy"
            but_for_it = dataclasses.replace(after, snapshots_in_progress=after.snapshots_in_progress - finals)
            assert but_for_it.as_built(start), f"{case.id}: a failed {scenario.name} must leave the world as it found it, but for it"
            keep = False
        elif result.status == "FAILED" and scenario.failure_returns_to_start and (scenario.workflow, case.state) not in LEAVES_BY_DESIGN:
            assert keep, f"{case.id}: a failed {scenario.name} must leave the world as it found it"
    finally:
        worlds.done_with(keep)


def write_tasks() -> None:
    """Run every success path and list its Tasks in TASKS_FILE (after a change to a success path)."""
    with LocalPostgres() as pg:
        found = {}
        for scenario in SCENARIOS:
            result, broken = run_success_path(pg, scenario)
            if result.status != "SUCCEEDED" or broken:
                raise SystemExit(f"the {scenario.name} success path failed: {result.error}: {result.cause}; broke: {broken}")
            found[scenario.name] = tasks_entered(result)
    TASKS_FILE.write_text(json.dumps(found, indent=2) + "\n")
    print(f"wrote {TASKS_FILE}: {sum(map(len, found.values()))} Tasks in {len(found)} scenarios")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-tasks"]:
        raise SystemExit(f"usage: {REWRITE}")
    write_tasks()
