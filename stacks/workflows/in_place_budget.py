"""The in-place restore must never time out mid-swap: a timeout there leaves the app stopped on
every host and production's name wherever the last rename put it. Every wait in it is bounded by a
setting, so the longest run those settings allow is known at synth; the state machine's
`TimeoutSeconds` must lie above it, and synth refuses settings that would push a run past it."""

from __future__ import annotations

import json
from pathlib import Path

from restore_runbook.settings import RunbookSettings, SnapshotSettings

# Besides its Wait, each poll is a Lambda call and a few state transitions: seconds, not the Task's
# 60 s timeout (a call that hangs that long is the exception, and is retried). Counted on every poll.
POLL_TASK_SECONDS = 5
# ValidateRestore's Task timeout in the ASL: the validation, its counts and index check, within it.
VALIDATE_SECONDS = 660


# Every Wait state of the ASL, each the wait of one loop counted below: a new one must be counted too.
COUNTED_WAITS = frozenset(
    {"WaitForFinalSnapshot", "WaitForRestore", "WaitForDbHostRead", "WaitForStop", "WaitForProductionRename"}
    | {"WaitForCopyRename", "WaitForSettings", "WaitForStart", "WaitForHealth", "WaitForStopAfterStart", "WaitForRenameBack"}
    | {"WaitForRestartOnOriginal", "WaitForHealthOnOriginal", "WaitForStartAfterFailedRenameBack"}
    | {"WaitForHealthAfterFailedRenameBack"}
)


def longest_bounded_run_seconds(runbook: RunbookSettings, snapshot: SnapshotSettings) -> int:
    """The longest an in-place restore can run on its bounded loops: every loop to its last attempt,
    on the path that waits most (a swap that fails at its last health check and is renamed back)."""

    def loop(attempts: int, wait_seconds: int) -> int:
        return attempts * (wait_seconds + POLL_TASK_SECONDS)

    command = loop(runbook.command_poll_max_attempts, runbook.command_poll_seconds)  # one SSM command to its end
    rename = loop(runbook.rename_poll_max_attempts, runbook.rename_poll_seconds)
    # Each health check is an SSM command of its own, then the interval before the next check.
    health = runbook.health_check_attempts * (command + runbook.health_check_interval_seconds + POLL_TASK_SECONDS)
    before_the_stop = (
        loop(snapshot.poll_max_attempts, snapshot.poll_max_seconds)  # the final snapshot
        + loop(runbook.restore_poll_max_attempts, runbook.restore_poll_max_seconds)  # the restore alongside
        + VALIDATE_SECONDS
        + command  # every host's DB_HOST read
    )
    swap = command + 3 * rename + command + health  # stop; two renames and the settings; start and health
    # Stop again; the rename-back, which gives up after twice a rename's attempts (inplace/rename_back.py).
    undo = command + loop(2 * runbook.rename_poll_max_attempts, runbook.rename_poll_seconds)
    recover = 2 * (command + health)  # restart on the original and health; the start after a failed rename-back
    return before_the_stop + swap + undo + recover


def timeout_seconds(asl_path: Path) -> int:
    return int(json.loads(asl_path.read_text(encoding="utf-8"))["TimeoutSeconds"])


def check_outlasts_its_waits(lambda_environment: dict[str, str], asl_path: Path) -> None:
    """Refuse, at synth, settings whose bounded waits add up past the state machine's TimeoutSeconds."""
    runbook, snapshot = RunbookSettings.from_env(lambda_environment), SnapshotSettings.from_env(lambda_environment)
    longest, timeout = longest_bounded_run_seconds(runbook, snapshot), timeout_seconds(asl_path)
    if longest >= timeout:
        raise ValueError(
            f"runbook settings let an in-place restore wait up to {longest} s in its bounded loops, which is not under its "
            f"TimeoutSeconds ({timeout} s, {asl_path.name}): a run could time out mid-swap with the app stopped. Lower "
            "snapshot_poll_max_attempts, restore_poll_max_attempts, rename_poll_max_attempts, command_poll_max_attempts or "
            "health_check_attempts (or their waits)"
        )
