"""The registry: every workflow the stack deploys. Adding one is its ASL file, its handlers and one
file here with a `RegisteredWorkflow` subclass, listed below."""

from __future__ import annotations

from stacks.workflows.base import RegisteredWorkflow, WorkflowContext
from stacks.workflows.drill import DrillWorkflow
from stacks.workflows.in_place import InPlaceRestoreWorkflow
from stacks.workflows.recordings import RecordingsRestoreWorkflow
from stacks.workflows.restore import RestoreWorkflow
from stacks.workflows.rollback import RollbackWorkflow
from stacks.workflows.snapshot import SnapshotWorkflow

WORKFLOWS: tuple[type[RegisteredWorkflow], ...] = (
    RestoreWorkflow,
    RollbackWorkflow,
    SnapshotWorkflow,
    # Before the drill, whose recordings check uses its work bucket.
    RecordingsRestoreWorkflow,
    DrillWorkflow,
    InPlaceRestoreWorkflow,
)

__all__ = ["WORKFLOWS", "RegisteredWorkflow", "WorkflowContext"]
