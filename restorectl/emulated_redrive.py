"""Step Functions' Redrive, and the context field it sets, which moto has neither of.

AWS puts `RedriveCount` in every execution's context object (0 until the execution is redriven),
and every Task passes it to its step, which refuses to act when it is above 0
(lambdas/restore_runbook/common/redrive.py). moto's context has no such field, and a path to a
missing field fails the state, so the emulation adds it to every execution's context: 0.

A redrive resumes an ended (FAILED, ABORTED or TIMED_OUT) execution at its unsuccessful state, with
that state's input, under the same ARN, with RedriveCount one higher. moto cannot restart an ended
execution, so the emulation starts a new one of the same state machine (a stand-in run) whose
interpreter begins at that state, with that input, and whose context carries the ended execution's
Id, Name, Input and StartTime: the steps see what they would see in AWS. Asked about the execution's
ARN, DescribeExecution answers as AWS does after a redrive (the latest attempt's status, stop date,
error and cause, with `redriveCount` and `redriveDate`), and GetExecutionHistory gives the first
attempt's events, then for each redrive an `ExecutionRedriven` event and the stand-in run's events.
What AWS does inside a Map or Parallel state (only the unfinished iterations or branches run again)
is not modelled: the whole state runs again.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

REDRIVABLE_STATUSES = ("FAILED", "ABORTED", "TIMED_OUT")


class NotRedrivable(ValueError):
    """What AWS answers ExecutionNotRedrivable for, or a history the emulation cannot resume."""


@dataclass(frozen=True)
class Redrive:
    """A run that stands in for `execution_arn` redriven for the `count`th time, resuming at `state`."""

    execution_arn: str
    count: int
    state: str


def unsuccessful_state(definition: dict[str, Any], history: list[dict[str, Any]]) -> tuple[str, Any]:
    """The top-level state a redrive resumes at, and its input: the last one the latest attempt entered
    and never left (the Task running when the execution was stopped, or the Fail state it ended in);
    or, when it ended between states, the one after the last state left."""
    states = definition["States"]
    open_states: dict[str, Any] = {}
    last_exit: tuple[str, Any] | None = None
    for event in history:
        kind = event["type"]
        if kind == "ExecutionRedriven":  # the latest attempt starts again from where the one before stopped
            open_states, last_exit = {}, None
        elif kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            if details["name"] in states:
                open_states[details["name"]] = json.loads(details.get("input") or "null")
                last_exit = None
        elif kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            if details["name"] in states:
                open_states.pop(details["name"], None)
                last_exit = (details["name"], json.loads(details.get("output") or "null"))
    if open_states:
        name = list(open_states)[-1]
        return name, open_states[name]
    if last_exit is not None and states[last_exit[0]].get("Next"):
        return str(states[last_exit[0]]["Next"]), last_exit[1]
    raise NotRedrivable("the execution's history shows no state it stopped in, nor one it was about to enter")


def entered_with(history: list[dict[str, Any]], state: str) -> tuple[str, Any]:
    """`state` and the input the execution last entered it with."""
    entries = [e["stateEnteredEventDetails"] for e in history if e["type"].endswith("StateEntered")]
    inputs = [json.loads(d.get("input") or "null") for d in entries if d["name"] == state]
    if not inputs:
        raise NotRedrivable(f"the execution never entered {state}")
    return state, inputs[-1]


class Redrives:
    """The redriven runs moto is executing, by the ARN moto gave each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_run: dict[str, Redrive] = {}
        # $$.Execution of every execution started, as its first attempt saw it: a redrive shows the same.
        self._executions: dict[str, dict[str, Any]] = {}

    def register(self, run_arn: str, redrive: Redrive) -> None:
        with self._lock:
            self._by_run[run_arn] = redrive

    def of_run(self, run_arn: str) -> Redrive | None:
        with self._lock:
            return self._by_run.get(run_arn)

    def count(self, execution_arn: str) -> int:
        """How many times `execution_arn` (an original ARN, or the run standing in for one) was redriven."""
        return len(self.runs_of(self.original(execution_arn)))

    def original(self, arn: str) -> str:
        redrive = self.of_run(arn)
        return redrive.execution_arn if redrive else arn

    def runs_of(self, execution_arn: str) -> list[str]:
        """The stand-in runs of `execution_arn`'s redrives, oldest first."""
        with self._lock:
            runs = [(r.count, run) for run, r in self._by_run.items() if r.execution_arn == execution_arn]
        return [run for _count, run in sorted(runs)]

    def history(self, execution_arn: str, read: Callable[[str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """`execution_arn`'s history as AWS gives it after its redrives, from `read` (one run's events, fresh
        copies): the first attempt's events, then for each redrive an ExecutionRedriven event and its run's."""
        events, runs = read(execution_arn), self.runs_of(execution_arn)
        if not runs:
            return events
        for count, run in enumerate(runs, start=1):
            run_events = [e for e in read(run) if e.get("type") != "ExecutionStarted"]
            started = run_events[0].get("timestamp") if run_events else None
            events.append({"type": "ExecutionRedriven", "timestamp": started, "executionRedrivenEventDetails": {"redriveCount": count}})
            events.extend(run_events)
        for number, event in enumerate(events, start=1):
            event.update(id=number, previousEventId=number - 1)
        return events

    @contextlib.contextmanager
    def installed(self) -> Iterator[Redrives]:
        """The context field, the redriven runs, and the execution's ARN answered for. Entered before
        emulated_sfn's paging of the history, so the pages cut the whole history."""
        with self._answering_for_the_execution(), self._running_redrives():
            yield self

    @contextlib.contextmanager
    def _answering_for_the_execution(self) -> Iterator[None]:
        """DescribeExecution and GetExecutionHistory of a redriven execution's ARN, as AWS answers them."""
        from moto.core.responses import ActionResult
        from moto.stepfunctions.responses import StepFunctionResponse

        describe, history = StepFunctionResponse.describe_execution, StepFunctionResponse.get_execution_history
        redrives = self

        def answer_for(response: Any, method: Any, arn: str) -> Any:
            asked = response._get_param

            def param(name: str, *args: Any, **kwargs: Any) -> Any:
                return arn if name == "executionArn" else asked(name, *args, **kwargs)

            with mock.patch.object(response, "_get_param", param):
                return method(response).result

        def describe_execution(response: Any) -> Any:
            arn = response._get_param("executionArn")
            runs = redrives.runs_of(arn)
            if not runs:
                return describe(response)
            first: dict[str, Any] = answer_for(response, describe, arn)
            latest: dict[str, Any] = answer_for(response, describe, runs[-1])
            answer = {k: v for k, v in latest.items() if k not in ("executionArn", "name", "input", "startDate")}
            answer.update(
                {k: first[k] for k in ("executionArn", "name", "input", "startDate") if k in first},
                redriveCount=len(runs),
                redriveDate=latest.get("startDate"),
            )
            return ActionResult(answer)

        def get_execution_history(response: Any) -> Any:
            arn = response._get_param("executionArn")
            if not redrives.runs_of(arn):
                return history(response)  # moto's answer, paged by emulated_sfn
            return ActionResult({"events": redrives.history(arn, lambda run: list(answer_for(response, history, run)["events"]))})

        with (
            mock.patch.object(StepFunctionResponse, "describe_execution", describe_execution),
            mock.patch.object(StepFunctionResponse, "get_execution_history", get_execution_history),
        ):
            yield

    @contextlib.contextmanager
    def _running_redrives(self) -> Iterator[None]:
        """RedriveCount in every execution's context; a stand-in run starts at its state, as its execution."""
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        original_entrypoint = ExecutionWorker._get_evaluation_entrypoint
        original_environment = ExecutionWorker._get_evaluation_environment
        redrives = self

        def entrypoint(worker: Any) -> Any:
            redrive = redrives.of_run(worker._evaluation_details.execution_details.arn)
            if redrive is None:
                return original_entrypoint(worker)
            definition = json.loads(worker._evaluation_details.state_machine_details.definition)
            definition["StartAt"] = redrive.state
            return AmazonStateLanguageParser.parse(json.dumps(definition))[0]

        def environment(worker: Any) -> Any:
            env = original_environment(worker)
            # moto types it as a TypedDict without RedriveCount: it is the plain dict every state reads $$ from.
            execution: dict[str, Any] = env.states.context_object.context_object_data["Execution"]  # type: ignore[assignment]
            redrive = redrives.of_run(execution["Id"])
            execution["RedriveCount"] = 0
            if redrive is None:
                with redrives._lock:
                    redrives._executions[execution["Id"]] = dict(execution)
            else:
                with redrives._lock:
                    first = redrives._executions[redrive.execution_arn]
                # The states' input is already the resumed state's; only $$.Execution changes.
                execution.update(first, RedriveCount=redrive.count)
            return env

        with (
            mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint),
            mock.patch.object(ExecutionWorker, "_get_evaluation_environment", environment),
        ):
            yield
