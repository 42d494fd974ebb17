"""No workflow that changes what production runs on may time out half-way: a timeout in the cutover,
its revert, a rollback's recovery or an in-place swap can leave the app stopped, or hosts and names
split between two databases. Every wait in them is bounded by a setting, so the longest run those
settings allow is known at synth; each state machine's `TimeoutSeconds` must lie above it, and synth
refuses settings that would push a run past it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from restore_runbook.settings import RunbookSettings, SnapshotSettings

# Besides its Wait, each poll is a Lambda call and a few state transitions: seconds, not the Task's
# 60 s timeout (a call that hangs that long is the exception, and is retried). Counted on every poll.
POLL_TASK_SECONDS = 5
# The Task timeouts of ValidateRestore and WarmRestoredCopy in the ASL: the step's work lies within it.
VALIDATE_SECONDS = WARM_SECONDS = 660


@dataclass(frozen=True)
class Loops:
    """The longest each kind of bounded loop can take, from the settings."""

    runbook: RunbookSettings
    snapshot: SnapshotSettings

    @staticmethod
    def loop(attempts: int, wait_seconds: int) -> int:
        return attempts * (wait_seconds + POLL_TASK_SECONDS)

    @property
    def command(self) -> int:
        """One SSM command followed to its end (hosts/commands.py)."""
        return self.loop(self.runbook.command_poll_max_attempts, self.runbook.command_poll_seconds)

    @property
    def health(self) -> int:
        """Every health check to its last attempt: each an SSM command of its own, then the interval (hosts/health.py)."""
        r = self.runbook
        return r.health_check_attempts * (self.command + r.health_check_interval_seconds + POLL_TASK_SECONDS)

    @property
    def restore(self) -> int:
        return self.loop(self.runbook.restore_poll_max_attempts, self.runbook.restore_poll_max_seconds)

    @property
    def snapshot_taken(self) -> int:
        return self.loop(self.snapshot.poll_max_attempts, self.snapshot.poll_max_seconds)

    @property
    def rename(self) -> int:
        return self.loop(self.runbook.rename_poll_max_attempts, self.runbook.rename_poll_seconds)

    @property
    def rename_back(self) -> int:
        """The rename-back gives up after twice a rename's attempts (inplace/rename_back.py)."""
        return self.loop(2 * self.runbook.rename_poll_max_attempts, self.runbook.rename_poll_seconds)


def restore_seconds(loops: Loops) -> int:
    """The restore with cutover whose last health check fails, reverted, its health on the original to the last check."""
    return loops.restore + VALIDATE_SECONDS + WARM_SECONDS + (loops.command + loops.health) + (loops.command + loops.health)


def rollback_seconds(loops: Loops) -> int:
    """Stop, point back, health on the original to its last check; then restart there and check, then on the copy and check."""
    return loops.command + loops.command + loops.health + 2 * (loops.command + loops.health)


def in_place_seconds(loops: Loops) -> int:
    """A swap that fails at its last health check and is renamed back, after the longest final snapshot and restore."""
    before_the_stop = loops.snapshot_taken + loops.restore + VALIDATE_SECONDS + loops.command  # and every host's DB_HOST read
    swap = loops.command + 3 * loops.rename + loops.command + loops.health  # stop; two renames and the settings; start, health
    undo = loops.command + loops.rename_back  # stop again; rename back
    recover = 2 * (loops.command + loops.health)  # restart on the original and health; the start after a failed rename-back
    return before_the_stop + swap + undo + recover


@dataclass(frozen=True)
class Budget:
    longest: Callable[[Loops], int]
    # Every Wait state of the ASL, each the wait of a loop `longest` counts: a new one must be counted too.
    counted_waits: frozenset[str]


BUDGETS: Mapping[str, Budget] = {
    "restore": Budget(
        restore_seconds,
        frozenset({"WaitForRestore", "WaitForCutover", "WaitForHealthOnRestored", "WaitForRevert", "WaitForHealthOnOriginal"}),
    ),
    "rollback": Budget(
        rollback_seconds,
        frozenset({"WaitForStop", "WaitForRevert", "WaitForHealthOnOriginal", "WaitForRestartOnOriginal"})
        | {"WaitForHealthAfterRestartOnOriginal", "WaitForRestartOnCopy", "WaitForHealthAfterRestartOnCopy"},
    ),
    "in-place-restore": Budget(
        in_place_seconds,
        frozenset({"WaitForFinalSnapshot", "WaitForRestore", "WaitForDbHostRead", "WaitForStop", "WaitForProductionRename"})
        | {"WaitForCopyRename", "WaitForSettings", "WaitForStart", "WaitForHealth", "WaitForStopAfterStart", "WaitForRenameBack"}
        | {"WaitForRestartOnOriginal", "WaitForHealthOnOriginal", "WaitForStartAfterFailedRenameBack"}
        | {"WaitForHealthAfterFailedRenameBack"},
    ),
}


def loops_of(lambda_environment: dict[str, str]) -> Loops:
    return Loops(RunbookSettings.from_env(lambda_environment), SnapshotSettings.from_env(lambda_environment))


def timeout_seconds(asl_path: Path) -> int | None:
    """None for a definition without one: Step Functions then lets a standard execution run a year."""
    timeout = json.loads(asl_path.read_text(encoding="utf-8")).get("TimeoutSeconds")
    return None if timeout is None else int(timeout)


def check_outlasts_its_waits(workflow: str, lambda_environment: dict[str, str], asl_path: Path) -> None:
    """Refuse, at synth, settings whose bounded waits add up past the state machine's TimeoutSeconds."""
    budget = BUDGETS.get(workflow)
    if budget is None:
        return
    longest, timeout = budget.longest(loops_of(lambda_environment)), timeout_seconds(asl_path)
    if timeout is not None and longest >= timeout:
        raise ValueError(
            f"runbook settings let a {workflow} wait up to {longest} s in its bounded loops, which is not under its "
            f"TimeoutSeconds ({timeout} s, {asl_path.name}): a run could time out half-way with the app stopped or its hosts "
            "split. Lower snapshot_poll_max_attempts, restore_poll_max_attempts, rename_poll_max_attempts, "
            "command_poll_max_attempts or health_check_attempts (or their waits)"
        )
