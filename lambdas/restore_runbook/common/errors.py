"""The error contract between Lambda steps and the state machines.

Step Functions sees a raised exception's class name as the state's error, so the ASL routes on
these names (`Retry` first, then `Catch`). Never rename a class: executions, alarms and runbooks
refer to them. The message is the cause a tired human reads, so it says what was wrong and what
would be right.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import failure


class RunbookError(Exception):
    """Base class; only its subclasses are raised.

    `report` (optional) is what the step measured before it failed. Lambda passes on only the
    message, so the message ends with a bounded JSON summary of it (see common/failure.py).
    """

    def __init__(self, message: str = "", *, report: dict[str, Any] | None = None) -> None:
        super().__init__(failure.with_report(message, report))
        self.message = message
        self.report = report


class InvalidInput(RunbookError):
    """The execution input or a setting is malformed, unknown or contradictory."""


class SourceNotFound(RunbookError):
    """The source DB instance does not exist."""


class SnapshotNotFound(RunbookError):
    """The snapshot does not exist, is not the source's, or is not available."""


class RestoreTimeOutOfRange(RunbookError):
    """The requested restore time lies outside the source's restorable window."""


class TargetAlreadyExists(RunbookError):
    """The target instance identifier is taken (or is the source itself)."""


class ConfirmationRequired(RunbookError):
    """A destructive workflow was started without the typed confirmation."""


class OperationInProgress(RunbookError):
    """Another execution holds the lock on the resource this workflow changes."""


class RestoreFailed(RunbookError):
    """RDS reported a terminal failure status for the restored instance."""


class RestoreTimedOut(RunbookError):
    """The restored instance did not become available within the poll limit."""


class ValidationFailed(RunbookError):
    """The restored database failed one or more validation checks."""


class CutoverFailed(RunbookError):
    """Pointing the application at the restored database failed on at least one host."""


class HealthCheckFailed(RunbookError):
    """The application did not report a healthy database after a change."""


class RollbackFailed(RunbookError):
    """Undoing a change failed; the cause says exactly what state was left behind."""


class UnsafeOperation(RunbookError):
    """A destructive call was refused because its target is not one this tool may touch."""


class SnapshotFailed(RunbookError):
    """RDS reported a terminal failure status for a snapshot."""


class SnapshotTimedOut(RunbookError):
    """The snapshot did not become available within the poll limit."""


class SourceNotAvailable(RunbookError):
    """The source instance exists but is not in a state that allows the operation (e.g. stopped)."""


class StepTimedOut(RunbookError):
    """A step ran past its TimeoutSeconds (Step Functions' States.Timeout): it may have acted before it was cut off."""


class StepFailed(RunbookError):
    """A step failed with an error Step Functions itself raised (a States.* name other than a timeout)."""


class RedriveRefused(RunbookError):
    """A step of a redriven execution (Step Functions' Redrive) refused to act: the workflows resume no ended execution."""


class TeardownFailed(RunbookError):
    """A drill's temporary instance could not be deleted (refused, or not gone in time); the daily sweep retries."""


# ---- in-place restore (rename swap) and monitoring carry-over


class RenameFailed(RunbookError):
    """RDS refused a rename, or the instance being renamed went into a status it does not leave by itself."""


class RenameTimedOut(RunbookError):
    """A renamed instance did not settle under its new name (several consecutive available reads) within the poll limit."""


class MonitoringCarryOverFailed(RunbookError):
    """Alarms or event subscriptions could not be moved to (or back from) the instance production now runs on."""


# ---------------------------------------------------------------------------------------- recordings-restore


class RecordingVersionNotFound(RunbookError):
    """The requested object version does not exist, is a delete marker, or belongs to another key."""


class RecordingsRestoreIncomplete(RunbookError):
    """Some planned recordings were not restored (failed items, or a batch that left no result)."""


class RecordingsCheckFailed(RunbookError):
    """A drill's copy of an older recording version did not read back with the version's checksum, or could not be made."""


ALL_ERRORS: tuple[type[RunbookError], ...] = tuple(RunbookError.__subclasses__())
