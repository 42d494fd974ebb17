"""Keep each Distributed Map child's own history, which moto's interpreter runs and then drops.

In AWS every child of a Distributed Map is an execution of its own (ExecutionType STANDARD) with
its own history: DescribeMapRun and ListExecutions(mapRunArn=...) lead to it. moto 5.2.5 runs the
children's states for real (each child's Retry, Catch and Choice are the definition's own), but
`DistributedIterationComponent._eval_body` hands the whole map run one fresh `EventManager()` and
discards it when the run ends, so the parent's history shows only MapRunStarted/MapRunSucceeded
and nothing shows which states a child entered or which catcher it took.

`DistributedItemProcessorWorker._eval_job(env, job)` evaluates exactly one child in a frame of
its own. The patch gives that frame an event manager of its own before the child runs (frames the
child opens inherit it) and keeps its events afterwards, keyed by the parent execution's ARN:
observed from moto's own evaluation, nothing added to it. It is checked against the moto version
it was read from and refuses any other, so an upgrade re-reads moto instead of silently losing
the children's histories.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

# The moto versions whose DistributedItemProcessorWorker._eval_job and event manager this was read against.
CHECKED_MOTO_VERSIONS = ("5.2.5",)


class UncheckedMotoVersion(RuntimeError):
    pass


class MapChildren:
    """Every Distributed Map child's history events, per parent execution, in item order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_execution: dict[str, list[dict[str, Any]]] = {}

    def record(self, execution_arn: str, map_state: str, index: int, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._by_execution.setdefault(execution_arn, []).append({"map": map_state, "index": index, "events": events})

    def of(self, execution_arn: str, *, since: int = 0) -> list[dict[str, Any]]:
        """The children of one execution, by Map state and item index (workers finish in any order);
        `since`: only those recorded after the first `since` (a redriven execution's runs them again)."""
        with self._lock:
            children = list(self._by_execution.get(execution_arn, []))[since:]
        return sorted(children, key=lambda child: (child["map"], child["index"]))

    def recorded(self, execution_arn: str) -> int:
        with self._lock:
            return len(self._by_execution.get(execution_arn, []))

    @contextlib.contextmanager
    def installed(self) -> Iterator[MapChildren]:
        import moto
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
            DistributedItemProcessorWorker,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

        _check(moto.__version__, DistributedItemProcessorWorker, EventManager)
        original = DistributedItemProcessorWorker._eval_job
        children = self

        def eval_job(worker: Any, env: Any, job: Any) -> None:
            own = EventManager()
            env.event_manager = own
            try:
                original(worker, env, job)
            finally:
                execution_arn = env.states.context_object.context_object_data["Execution"]["Id"]
                with own._mutex:
                    # Plain JSON, as GetExecutionHistory would answer: moto keeps enum types and datetimes.
                    events = json.loads(json.dumps(own._history_event_list, default=str))
                children.record(execution_arn, worker._work_name, job.job_index, events)

        with mock.patch.object(DistributedItemProcessorWorker, "_eval_job", eval_job):
            yield self


def _check(version: str, worker_class: type, manager_class: type) -> None:
    where = "restorectl/emulated_map_children.py"
    if version not in CHECKED_MOTO_VERSIONS:
        raise UncheckedMotoVersion(
            f"{where} was checked against moto {', '.join(CHECKED_MOTO_VERSIONS)}, not {version}: re-read moto's "
            "DistributedItemProcessorWorker._eval_job and EventManager, then add the version to CHECKED_MOTO_VERSIONS"
        )
    parameters = list(inspect.signature(worker_class._eval_job).parameters)  # type: ignore[attr-defined]
    manager = manager_class()
    if parameters != ["self", "env", "job"] or not hasattr(manager, "_history_event_list") or not hasattr(manager, "_mutex"):
        raise UncheckedMotoVersion(f"{where}: moto {version}'s Distributed Map worker or event manager is not the shape it was read from")
