"""The recordings-restore input: checked in full, against the buckets, before anything changes.

Three modes, one of them per request:

    {"bucket": B, "key": K, "version_id": V[, "target_key": K2][, "target_bucket": B2]}   one version back
    {"bucket": B, "prefix": P, "undelete_after": T}                                     remove markers placed after T
    {"bucket": B, "prefix": P, "as_of": T[, "hide_created_after": true]}                the prefix as it was at T

and for all of them `dry_run`, `requested_by`, `reason`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import InvalidInput, RecordingVersionNotFound, RestoreTimeOutOfRange
from restore_runbook.settings import RunbookSettings

VERSION, UNDELETE, AS_OF = "version", "undelete", "as-of"
COMMON_FIELDS = {"bucket", "dry_run", "requested_by", "reason"}
MODE_FIELDS = {
    VERSION: ({"key", "version_id"}, {"target_key", "target_bucket"}),
    UNDELETE: ({"prefix", "undelete_after"}, set()),
    AS_OF: ({"prefix", "as_of"}, {"hide_created_after"}),
}
# The fields that say which mode was meant; `prefix` belongs to two modes.
MARKS = {VERSION: {"key", "version_id"}, UNDELETE: {"undelete_after"}, AS_OF: {"as_of"}}
ALL_FIELDS = COMMON_FIELDS | {name for required, optional in MODE_FIELDS.values() for name in required | optional}
EXAMPLE = '{"bucket": "irisx-recordings", "prefix": "recordings/", "as_of": "2025-11-01T09:00:00Z"}'
MAX_TEXT = 256


@dataclass(frozen=True)
class RecordingsRequest:
    mode: str
    bucket: str
    prefix: str  # the listing prefix; for one version, the key itself
    key: str | None
    version_id: str | None
    target_bucket: str | None
    target_key: str | None
    point_in_time: str | None  # undelete_after or as_of, normalised to UTC
    hide_created_after: bool
    dry_run: bool
    requested_by: str
    reason: str
    lock_resource: str
    # The part after `s3:`: what the journal's registry locks (journal/workflows.py).
    lock_scope: str
    checked_at: str

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: Any) -> RecordingsRequest:
        if not isinstance(state, dict):
            raise InvalidInput("the step received no checked recordings request; the state machine definition is broken")
        return cls(**{name: state.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


def _mode_of(request: dict[str, Any]) -> str:
    present = {mode for mode, marks in MARKS.items() if marks & set(request)}
    if len(present) != 1:
        raise InvalidInput(
            "give exactly one of: key + version_id (one version), prefix + undelete_after (undelete), prefix + as_of "
            f"(the prefix at a time); got fields {', '.join(sorted(request)) or 'none'}. Example: {EXAMPLE}"
        )
    mode = present.pop()
    required, optional = MODE_FIELDS[mode]
    missing = sorted(required - set(request))
    if missing:
        raise InvalidInput(f"mode {mode!r} also needs {', '.join(missing)}")
    others = sorted(set(request) - COMMON_FIELDS - required - optional)
    if others:
        raise InvalidInput(f"field(s) {', '.join(others)} do not go with mode {mode!r} ({', '.join(sorted(required))}); give one mode")
    return mode


def _text(request: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = request.get(name)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    return value


def _flag(request: dict[str, Any], name: str) -> bool:
    value = request.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false, got {value!r}")
    return value


def _bucket(name: str, value: Any, settings: RunbookSettings) -> str:
    if value not in settings.recordings_buckets:
        raise InvalidInput(
            f"{name} {value!r} is not a recordings bucket this tool restores; expected one of {', '.join(settings.recordings_buckets)}"
        )
    return str(value)


def _moment(request: dict[str, Any], name: str, now: datetime, settings: RunbookSettings) -> str:
    raw = _text(request, name)
    try:
        moment = clock.parse_utc(raw)
    except ValueError as exc:
        raise InvalidInput(f"{name} {raw!r} is not an ISO-8601 time with an offset, like 2025-11-01T09:00:00Z") from exc
    earliest = now - timedelta(days=settings.recordings_version_retention_days)
    if moment > now:
        raise RestoreTimeOutOfRange(f"{name} {clock.precise(moment)} is in the future (now is {clock.isoformat(now)})")
    if moment < earliest:
        raise RestoreTimeOutOfRange(
            f"{name} {clock.precise(moment)} is before {clock.isoformat(earliest)}: the buckets keep old versions for "
            f"{settings.recordings_version_retention_days} days, so what the prefix held then can no longer be known"
        )
    return clock.precise(moment)


def check_shape(request: Any, settings: RunbookSettings, now: datetime) -> RecordingsRequest:
    """Everything that can be said about the input without asking S3."""
    if not isinstance(request, dict):
        raise InvalidInput(f"the execution input must be a JSON object such as {EXAMPLE}, got {request!r}")
    unknown = sorted(set(request) - ALL_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown input field(s) {', '.join(unknown)}; recordings-restore accepts: {', '.join(sorted(ALL_FIELDS))}")
    bucket = _bucket("bucket", request.get("bucket"), settings)
    mode = _mode_of(request)
    for name in ("requested_by", "reason"):
        if name in request and (not isinstance(request[name], str) or len(request[name]) > MAX_TEXT):
            raise InvalidInput(f"{name} must be a string of at most {MAX_TEXT} characters")
    key = version_id = target_bucket = target_key = point = None
    if mode == VERSION:
        key, version_id = _text(request, "key"), _text(request, "version_id")
        target_bucket = _bucket("target_bucket", request["target_bucket"], settings) if "target_bucket" in request else bucket
        target_key = _text(request, "target_key") if "target_key" in request else key
        prefix = key
    else:
        prefix = _text(request, "prefix", allow_empty=True)
        point = _moment(request, "undelete_after" if mode == UNDELETE else "as_of", now, settings)
    # What the restore changes: the prefix, or for one version the key it writes to.
    scope = f"{target_bucket}/{target_key}" if mode == VERSION else f"{bucket}/{prefix}"
    return RecordingsRequest(
        mode=mode,
        bucket=bucket,
        prefix=prefix,
        key=key,
        version_id=version_id,
        target_bucket=target_bucket,
        target_key=target_key,
        point_in_time=point,
        hide_created_after=_flag(request, "hide_created_after"),
        dry_run=_flag(request, "dry_run"),
        requested_by=str(request.get("requested_by") or "not given"),
        reason=str(request.get("reason") or "not given"),
        lock_resource=f"s3:{scope}",
        lock_scope=scope,
        checked_at=clock.isoformat(now),
    )


def _check_bucket_versioned(bucket: str) -> None:
    status = aws.client("s3").get_bucket_versioning(Bucket=bucket).get("Status")
    if status != "Enabled":
        raise InvalidInput(f"bucket {bucket!r} has versioning {status or 'never enabled'!r}; there are no old versions to restore from")


def check_version(bucket: str, key: str, version_id: str) -> dict[str, Any]:
    """The version's head, or RecordingVersionNotFound saying why not (missing, a marker, another key's)."""
    try:
        return dict(aws.client("s3").head_object(Bucket=bucket, Key=key, VersionId=version_id))
    except Exception as exc:
        status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = aws.error_code(exc)
        if status == 405 or code == "MethodNotAllowed":
            raise RecordingVersionNotFound(
                f"version {version_id} of s3://{bucket}/{key} is a delete marker, not a recording; "
                "to bring the key back, undelete it (prefix + undelete_after) or give the version under the marker"
            ) from exc
        if status in (400, 404) or code in ("404", "NoSuchKey", "NoSuchVersion", "InvalidArgument"):
            raise RecordingVersionNotFound(
                f"s3://{bucket}/{key} has no version {version_id}: it never existed, expired after the retention period, "
                "or is a version of another key; list the key's versions with `aws s3api list-object-versions`"
            ) from exc
        raise


def check_request(request: Any, settings: RunbookSettings) -> RecordingsRequest:
    checked = check_shape(request, settings, clock.now())
    _check_bucket_versioned(checked.bucket)
    if checked.mode == VERSION:
        assert checked.key is not None and checked.version_id is not None and checked.target_bucket is not None
        check_version(checked.bucket, checked.key, checked.version_id)
        if checked.target_bucket != checked.bucket:
            _check_bucket_versioned(checked.target_bucket)
    return checked
