"""The error contract between Lambda steps and the state machines.

Step Functions sees a raised exception's class name as the state's error, so the ASL routes on
these names (`Retry` first, then `Catch`). Never rename a class: executions, alarms and runbooks
refer to them. The message is the cause a tired human reads, so it says what was wrong and what
would be right.
"""

from __future__ import annotations


class RunbookError(Exception):
    """Base class; only its subclasses are raised."""


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
    """Another execution holds the lock on this source instance."""


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


# ---------------------------------------------------------------------------------------- recordings-restore


class RecordingVersionNotFound(RunbookError):
    """The requested object version does not exist, is a delete marker, or belongs to another key."""


class RecordingsRestoreIncomplete(RunbookError):
    """Some planned recordings were not restored (failed items, or a batch that left no result)."""


ALL_ERRORS: tuple[type[RunbookError], ...] = tuple(RunbookError.__subclasses__())
