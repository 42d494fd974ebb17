"""The `restore` workflow's input: checked completely before anything is created.

Shape and type errors are found without calling AWS; then the source, the restore window or
snapshot, and the target name are checked against RDS. The result is a plan: plain JSON the
later steps read, holding identifiers only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from restore_runbook.common import clock, rds
from restore_runbook.common.errors import InvalidInput, RestoreTimeOutOfRange
from restore_runbook.settings import RDS_IDENTIFIER, RunbookSettings

MODES = ("point-in-time", "snapshot")
FIELDS = {
    "mode": "point-in-time | snapshot",
    "restore_time": "ISO-8601 UTC timestamp or 'latest' (point-in-time only)",
    "snapshot_id": "a snapshot identifier or 'latest' (snapshot only)",
    "source_instance": "RDS instance identifier (default from settings)",
    "target_instance": "new RDS instance identifier (default: derived from source and time)",
    "keep_on_failure": "true to keep the restored instance for inspection when a later step fails",
    "requested_by": "free text for the record",
    "cutover": "true to point the API hosts at the restored database after validation (rolled back on failure)",
}
SNAPSHOT_ID = re.compile(r"^(rds:)?[A-Za-z][A-Za-z0-9-]{0,254}$")
MAX_REQUESTED_BY = 256


@dataclass(frozen=True)
class RestorePlan:
    mode: str
    source_instance: str
    target_instance: str
    restore_time: str | None
    use_latest_restorable_time: bool
    snapshot_id: str | None
    restore_point: str
    keep_on_failure: bool
    requested_by: str
    checked_at: str
    cutover: bool = False
    # "drill" for the drill workflow's throwaway copy, which start_restore tags so that no cutover may use it.
    purpose: str = "restore"

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RestorePlan:
        if not isinstance(state, dict):
            raise InvalidInput("the step received no restore plan; the state machine definition is broken")
        return cls(**{name: state.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


def _string_field(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string ({FIELDS[name]}), got {value!r}")
    return value.strip()


def check_shape(request: Any) -> dict[str, Any]:
    """Everything that can be said about the input without asking AWS."""
    if not isinstance(request, dict):
        raise InvalidInput(f'the execution input must be a JSON object such as {{"mode": "snapshot"}}, got {request!r}')
    unknown = sorted(set(request) - set(FIELDS))
    if unknown:
        allowed = ", ".join(sorted(FIELDS))
        raise InvalidInput(f"unknown input field(s) {', '.join(unknown)}; the restore workflow accepts: {allowed}")
    mode = request.get("mode")
    if mode not in MODES:
        raise InvalidInput(f"mode must be 'point-in-time' or 'snapshot', got {mode!r}")
    checked: dict[str, Any] = {"mode": mode}
    for name in ("restore_time", "snapshot_id", "source_instance", "target_instance", "requested_by"):
        checked[name] = _string_field(request, name)
    keep = request.get("keep_on_failure", False)
    if not isinstance(keep, bool):
        raise InvalidInput(f"keep_on_failure must be true or false, got {keep!r}")
    checked["keep_on_failure"] = keep
    cutover = request.get("cutover", False)
    if not isinstance(cutover, bool):
        raise InvalidInput(f"cutover must be true or false, got {cutover!r}")
    checked["cutover"] = cutover

    if mode == "point-in-time" and checked["snapshot_id"] is not None:
        raise InvalidInput("snapshot_id only applies to mode 'snapshot'; for point-in-time give restore_time")
    if mode == "snapshot" and checked["restore_time"] is not None:
        raise InvalidInput("restore_time only applies to mode 'point-in-time'; for snapshot give snapshot_id")
    if mode == "point-in-time":
        checked["restore_time"] = checked["restore_time"] or "latest"
        if checked["restore_time"] != "latest":
            try:
                checked["restore_time_parsed"] = clock.parse_utc(checked["restore_time"])
            except ValueError as exc:
                raise InvalidInput(
                    f"restore_time {checked['restore_time']!r} is not an ISO-8601 UTC timestamp; "
                    "write it like 2025-11-02T12:00:00Z, or use 'latest'"
                ) from exc
    else:
        checked["snapshot_id"] = checked["snapshot_id"] or "latest"
        if checked["snapshot_id"] != "latest" and not SNAPSHOT_ID.match(checked["snapshot_id"]):
            raise InvalidInput(f"snapshot_id {checked['snapshot_id']!r} is not a valid RDS snapshot identifier")
    for name in ("source_instance", "target_instance"):
        value = checked[name]
        if value is not None and not RDS_IDENTIFIER.match(value):
            raise InvalidInput(
                f"{name} {value!r} is not a valid RDS identifier: 1-63 letters, digits and hyphens, "
                "starting with a letter, no double or trailing hyphen"
            )
    if checked["requested_by"] is not None and len(checked["requested_by"]) > MAX_REQUESTED_BY:
        raise InvalidInput(f"requested_by is longer than {MAX_REQUESTED_BY} characters")
    return checked


def default_target_name(source: str) -> str:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-restored-{stamp}"
    return f"{source[: 63 - len(suffix)].rstrip('-')}{suffix}"


def plan_restore(request: Any, settings: RunbookSettings) -> RestorePlan:
    checked = check_shape(request)
    source_id = checked["source_instance"] or settings.source_instance
    target_id = checked["target_instance"] or default_target_name(source_id)

    source = rds.describe_source(source_id)
    source_subnet_group = source.get("DBSubnetGroup", {}).get("DBSubnetGroupName")
    if settings.db_subnet_group_name and source_subnet_group != settings.db_subnet_group_name:
        # The start step may only place copies in the configured subnet group (IAM); say so now, not halfway.
        raise InvalidInput(
            f"source {source_id!r} is in DB subnet group {source_subnet_group!r}, but this deployment may only restore "
            f"into {settings.db_subnet_group_name!r}; set db_subnet_group_name in cdk.json to the source's and redeploy"
        )
    rds.ensure_target_free(target_id, source_id)

    use_latest = False
    snapshot_id = None
    restore_time = None
    if checked["mode"] == "point-in-time":
        window = rds.restore_window(source)
        if checked["restore_time"] == "latest":
            use_latest = True
            restore_point = window.latest
        else:
            restore_point = checked["restore_time_parsed"]
            if restore_point < window.earliest:
                raise RestoreTimeOutOfRange(
                    f"restore time {clock.isoformat(restore_point)} is before the earliest restorable time "
                    f"{clock.isoformat(window.earliest)}; the restorable window is {window.describe()}"
                )
            if restore_point > window.latest:
                raise RestoreTimeOutOfRange(
                    f"restore time {clock.isoformat(restore_point)} is after the latest restorable time "
                    f"{clock.isoformat(window.latest)}; the restorable window is {window.describe()}"
                )
            restore_time = clock.precise(restore_point)
    else:
        snapshot = rds.find_snapshot(source_id, checked["snapshot_id"])
        snapshot_id = snapshot["DBSnapshotIdentifier"]
        restore_point = snapshot["SnapshotCreateTime"]

    return RestorePlan(
        mode=checked["mode"],
        source_instance=source_id,
        target_instance=target_id,
        restore_time=restore_time,
        use_latest_restorable_time=use_latest,
        snapshot_id=snapshot_id,
        restore_point=clock.precise(restore_point),
        keep_on_failure=checked["keep_on_failure"],
        requested_by=checked["requested_by"] or "not given",
        checked_at=clock.isoformat(clock.now()),
        cutover=checked["cutover"],
    )
