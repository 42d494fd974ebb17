"""What the journal needs to know about each workflow, said once: which resource its lock is on
(and how that resource follows from the plan), whether its success is worth a message to people,
and what an execution stopped from outside may leave behind.

A lock is on the resource a workflow changes, written `<kind>:<name>` (`rds:<instance>`, later
`s3:<bucket>/<prefix>`), so workflows of different kinds on the same thing exclude each other and
workflows on different things do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
class MidChange:
    """States in which an execution stopped from outside (aborted, timed out) leaves production
    itself half-changed, the app perhaps stopped: what to tell the person who must put it right."""

    states: frozenset[str]
    # `{arn}` as in left_behind_when_abandoned.
    what: str


@dataclass(frozen=True)
class WorkflowTraits:
    lock: LockOn | None
    notify_on_success: bool
    # `{arn}` is the execution's ARN (the tag the workflow put on what it created).
    left_behind_when_abandoned: str
    # Stopped in one of these states, the lock is kept for recovery (journal/abandoned.py).
    mid_change: tuple[MidChange, ...] = ()
    # Ended FAILED with one of these errors, its own end step keeps the lock when the failure's
    # explanation says production was left half-changed (journal/events.py); a reconciler closing such
    # an end that step did not record cannot read the explanation, so it keeps the lock on these words.
    kept_when_failed_with: Mapping[str, str] = field(default_factory=dict)
    # Stopped in one of these states, production was changed as asked and serves: the lock is released,
    # and these words, not left_behind_when_abandoned, say what the world is (`{arn}` as there).
    changed_by: frozenset[str] = frozenset()
    left_behind_once_changed: str = ""

    def abandoned_words(self, state: str | None) -> str:
        """What an execution stopped from outside in `state` left, when it was not mid-change."""
        if state is not None and state in self.changed_by:
            return self.left_behind_once_changed
        return self.left_behind_when_abandoned

    def mid_change_at(self, state: str | None) -> MidChange | None:
        """Where a stop from outside left production half-changed. `None`, a last state that could not be
        read, counts as mid-change for a workflow that has any: released on a guess, the lock would let
        another workflow start on a production left half-swapped."""
        if state is None and self.mid_change:
            return MidChange(
                states=frozenset(),
                what="it may have stopped half-way through changing production: if " + "; or if ".join(m.what for m in self.mid_change),
            )
        return next((m for m in self.mid_change if state in m.states), None)


RDS_SOURCE = LockOn("rds", ("source_instance",))

WORKFLOWS: dict[str, WorkflowTraits] = {
    "restore": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "a restored instance tagged irisx-restore:execution={arn} may still exist (delete it with the rollback workflow or by hand), "
            "and if it stopped during cutover or its rollback, API hosts may point at it or be stopped"
        ),
        mid_change=(
            MidChange(
                states=frozenset(
                    {"StartCutover", "WaitForCutover", "CheckCutover", "IsCutoverDone", "CheckHealthOnRestored", "IsRestoredHealthy"}
                    | {"WaitForHealthOnRestored", "RevertCutover", "IsRevertSent", "WaitForRevert", "CheckRevert", "IsRevertDone"}
                    | {"CheckHealthOnOriginal", "IsOriginalHealthy", "WaitForHealthOnOriginal", "ExplainRollbackFailure"}
                ),
                what=(
                    "it stopped while moving the API hosts between databases: some hosts may have DB_HOST on the restored instance "
                    "(tag irisx-restore:execution={arn}) and some on the original, and pm2 may be restarting or stopped on any; check "
                    "DB_HOST and pm2 on every host, point them all at one database that answers, and start the app"
                ),
            ),
        ),
        kept_when_failed_with={
            "RollbackFailed": (
                "the rollback of its cutover failed, and its end record could not be written: some hosts may have DB_HOST on the "
                "restored instance (tag irisx-restore:execution={arn}) and some on the original, the app stopped on any; point them "
                "all at one database that answers, start the app and check its health"
            ),
        },
    ),
    "rollback": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "API hosts may be stopped or only partly pointed back at the original; the restored instance may still exist"
        ),
        mid_change=(
            MidChange(
                states=frozenset(
                    {"StopApp", "WaitForStop", "CheckStop", "IsStopDone", "PointDbHostBackAndRestart", "WaitForRevert", "CheckRevert"}
                    | {"IsRevertDone", "CheckHealthOnOriginal", "IsOriginalHealthy", "WaitForHealthOnOriginal"}
                    | {"RestartAppOnOriginal", "WaitForRestartOnOriginal", "CheckRestartOnOriginal", "IsRestartOnOriginalDone"}
                    | {"CheckHealthAfterRestartOnOriginal", "IsHealthyAfterRestartOnOriginal", "WaitForHealthAfterRestartOnOriginal"}
                    | {"RestartAppOnCopy", "WaitForRestartOnCopy", "CheckRestartOnCopy", "IsRestartOnCopyDone"}
                    | {"CheckHealthAfterRestartOnCopy", "IsHealthyAfterRestartOnCopy", "WaitForHealthAfterRestartOnCopy"}
                    | {"ExplainRollbackFailure"}
                ),
                what=(
                    "it stopped after the app was stopped on the API hosts: the app may still be STOPPED on every host, with DB_HOST "
                    "on the original or still on the restored copy; check DB_HOST and pm2 on every host, point them at a database "
                    "that answers, and start the app"
                ),
            ),
        ),
        kept_when_failed_with={
            "RollbackFailed": (
                "it failed, and its end record could not be written: the app may be STOPPED on some hosts, with DB_HOST on the "
                "original or still on the restored copy; check DB_HOST and pm2 on every host, point them at one database that "
                "answers, and start the app"
            ),
        },
    ),
    "in-place-restore": WorkflowTraits(
        lock=RDS_SOURCE,
        notify_on_success=True,
        left_behind_when_abandoned=(
            "a final snapshot and a copy restored alongside (tag irisx-restore:execution={arn}) may exist; production was not "
            "renamed and the app was not stopped before it stopped"
        ),
        mid_change=(
            MidChange(
                states=frozenset(
                    {"StopApp", "WaitForStop", "CheckStop", "IsStopDone", "RenameProductionAway", "WaitForProductionRename"}
                    | {"CheckProductionRename", "IsProductionRenamed", "RenameCopyToProduction", "WaitForCopyRename", "CheckCopyRename"}
                    | {"IsCopyRenamed", "ApplyProductionSettings", "WaitForSettings", "CheckSettingsApplied", "IsSettingsApplied"}
                    | {"CarryMonitoringOver", "StartApp", "WaitForStart", "CheckStart", "IsStartDone", "CheckHealth", "IsHealthy"}
                    | {"WaitForHealth", "RenameBack", "IsRenamedBack", "WaitForRenameBack", "CarryMonitoringBack", "RestartOnOriginal"}
                    | {"StopAppAfterStart", "WaitForStopAfterStart", "CheckStopAfterStart", "IsStopAfterStartDone"}
                    | {"WaitForRestartOnOriginal", "CheckRestartOnOriginal", "IsRestartOnOriginalDone", "CheckHealthOnOriginal"}
                    | {"IsOriginalHealthy", "WaitForHealthOnOriginal", "ExplainInPlaceFailure", "StartAppAfterFailedRenameBack"}
                    | {"WaitForStartAfterFailedRenameBack", "CheckStartAfterFailedRenameBack", "IsStartAfterFailedRenameBackDone"}
                    | {"CheckHealthAfterFailedRenameBack", "IsHealthyAfterFailedRenameBack", "WaitForHealthAfterFailedRenameBack"}
                    | {"ExplainRenameBackFailure"}
                ),
                what=(
                    "it stopped during the swap: the app may still be STOPPED on every API host; the original production may be "
                    "renamed to <name>-replaced-<time> and the restored copy (tag irisx-restore:execution={arn}) renamed to "
                    "production's name, or either one still renaming. Find both by their resource ids (the original's is in the "
                    "execution's plan), give production's name to the instance that should serve, then start the app with pm2 "
                    "on every host and check its health"
                ),
            ),
        ),
        changed_by=frozenset({"ReportInPlaceRestore", "ReportUnavailable", "RecordSuccess", "ReleaseWithoutRecord"}),
        left_behind_once_changed=(
            "it stopped after the swap had finished and the app was healthy: production's name is held by the restored copy "
            "(tag irisx-restore:execution={arn}, marked production), and the original production is kept renamed to "
            "<name>-replaced-<time> with deletion protection on, with the final snapshot taken before the swap; only the "
            "execution's report or end record may be missing"
        ),
        kept_when_failed_with={
            "RollbackFailed": (
                "it failed renaming back, and its end record could not be written: production's name may be held by the "
                "restored copy (tag irisx-restore:execution={arn}) and the original production may be named "
                "<name>-replaced-<time>. Find both by their resource ids (the original's is in the execution's plan), give "
                "production's name to the instance that should serve, mark it irisx-restore:role=production, then start "
                "the app with pm2 on every host and check its health"
            ),
        },
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
