"""What the journal needs to know about each workflow, said once: which resource its lock is on
(and how that resource follows from the plan), whether its success is worth a message to people,
and what an execution stopped from outside may leave behind.

A lock is on the resource a workflow changes, written `<kind>:<name>` (`rds:<instance>`, later
`s3:<bucket>/<prefix>`), so workflows of different kinds on the same thing exclude each other and
workflows on different things do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from restore_runbook.common.errors import InvalidInput


@dataclass(frozen=True)
class LockOn:
    """The lock's resource: `kind` and the plan fields that name the resource, joined by `/`."""

    kind: str
    fields: tuple[str, ...]

    def resource(self, plan: Mapping[str, Any]) -> str:
        missing = [f for f in self.fields if not isinstance(plan.get(f), str) or not plan.get(f)]
        if missing:
            raise InvalidInput(
                f"the lock step's plan has no {', '.join(missing)} to lock the {self.kind} resource on; "
                "the state machine definition is broken"
            )
        return f"{self.kind}:{'/'.join(str(plan[f]) for f in self.fields)}"


@dataclass(frozen=True)
class WorkflowTraits:
    lock: LockOn | None
    notify_on_success: bool
    # `{arn}` is the execution's ARN (the tag the workflow put on what it created).
    left_behind_when_abandoned: str


RDS_SOURCE = LockOn("rds", ("source_instance",))

WORKFLOWS: dict[str, WorkflowTraits] = {
    "restore": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "a restored instance tagged irisx-restore:execution={arn} may still exist (delete it with the rollback workflow or by hand), "
            "and if it stopped during cutover or its rollback, API hosts may point at it or be stopped"
        ),
    ),
    "rollback": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "API hosts may be stopped or only partly pointed back at the original; the restored instance may still exist"
        ),
    ),
    "in-place-restore": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "a final snapshot and a copy restored alongside (tag irisx-restore:execution={arn}) may exist, and if it stopped "
            "between the two renames production may be under its temporary name: check the instance names before anything else"
        ),
    ),
    # A drill locks its own resource: it never blocks or delays an incident's restore of the same source.
    "drill": WorkflowTraits(
        lock=LockOn("drill", ("source_instance",)),
        notify_on_success=False,
        left_behind_when_abandoned=(
            "its temporary copy (tag irisx-restore:execution={arn}) may still exist: the daily drill sweep deletes it; "
            "copies of recordings its check made under drill-scratch/ in the recordings work bucket expire within a day"
        ),
    ),
    # One recordings restore per bucket and prefix (overlapping prefixes are refused by recordings/locks.py).
    "recordings-restore": WorkflowTraits(
        lock=LockOn("s3", ("lock_scope",)),
        notify_on_success=True,
        left_behind_when_abandoned=(
            "some recordings may already be restored (new current versions; no version was deleted but delete markers): "
            "re-running the same request changes nothing more; the plan is in the work bucket under plans/"
        ),
    ),
    "snapshot": WorkflowTraits(
        lock=None,
        notify_on_success=False,
        left_behind_when_abandoned="a snapshot being created by it (tag irisx-restore:execution={arn}) may still be in progress or failed",
    ),
}

UNKNOWN = WorkflowTraits(lock=None, notify_on_success=False, left_behind_when_abandoned="whatever its last steps created or changed")


def traits_of(workflow: str) -> WorkflowTraits:
    return WORKFLOWS.get(workflow, UNKNOWN)


def lock_label(resource: str) -> str:
    """The resource as people name it: an RDS instance by its name, S3 as a URL, a drill's as `drill:<source>`."""
    kind, _, name = resource.partition(":")
    if not name:
        return resource
    if kind == "rds":
        return name
    return f"s3://{name}" if kind == "s3" else resource
