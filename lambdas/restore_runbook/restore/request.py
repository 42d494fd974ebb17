"""The `restore` workflow's input: checked completely before anything is created.

Shape and type errors are found without calling AWS; then the source, the restore window or
snapshot, and the target name are checked against RDS. The result is a plan: plain JSON the
later steps read, holding identifiers only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from restore_runbook.common import clock, fields, rds
from restore_runbook.common.errors import InvalidInput, RestoreTimeOutOfRange
from restore_runbook.settings import RunbookSettings

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
# What leaving each optional field out means, for the cause when it is given as null.
DEFAULTS = {
    "restore_time": "'latest'",
    "snapshot_id": "'latest'",
    "source_instance": "the configured source",
    "target_instance": "a name derived from the source and the time",
    "keep_on_failure": "false",
    "requested_by": "'not given'",
    "cutover": "false",
}


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


def check_shape(request: Any) -> dict[str, Any]:
    """Everything that can be said about the input without asking AWS; identifiers come back in lower case."""
    request = fields.request_object(request, FIELDS, workflow="restore", example='{"mode": "snapshot"}')
    mode = fields.choice(request.get("mode"), "mode", MODES)
    checked: dict[str, Any] = {"mode": mode}
    given = {name: fields.optional(request, name, DEFAULTS[name]) for name in DEFAULTS}
    for name, what in (
        ("source_instance", "the RDS instance to restore from"),
        ("target_instance", "the identifier of a new RDS instance"),
    ):
        checked[name] = None if given[name] is None else fields.rds_identifier(given[name], name, what)
    checked["keep_on_failure"] = False if given["keep_on_failure"] is None else fields.flag(given["keep_on_failure"], "keep_on_failure")
    checked["cutover"] = False if given["cutover"] is None else fields.flag(given["cutover"], "cutover")
    requested_by = given["requested_by"]
    checked["requested_by"] = None if requested_by is None else fields.free_text(requested_by, "requested_by", FIELDS["requested_by"])

    restore_time, snapshot_id = given["restore_time"], given["snapshot_id"]
    if mode == "point-in-time" and snapshot_id is not None:
        raise InvalidInput("snapshot_id only applies to mode 'snapshot'; for point-in-time give restore_time")
    if mode == "snapshot" and restore_time is not None:
        raise InvalidInput("restore_time only applies to mode 'point-in-time'; for snapshot give snapshot_id")
    checked["restore_time"] = checked["snapshot_id"] = None
    if mode == "point-in-time":
        checked["restore_time"] = "latest"
        if restore_time is not None and restore_time != "latest":
            parsed = fields.timestamp(restore_time, "restore_time", hint=", or use 'latest'", out_of_range=RestoreTimeOutOfRange)
            checked["restore_time"], checked["restore_time_parsed"] = restore_time, parsed
    else:
        checked["snapshot_id"] = "latest"
        if snapshot_id is not None and snapshot_id != "latest":
            checked["snapshot_id"] = fields.snapshot_identifier(snapshot_id, "snapshot_id")
    return checked


def default_target_name(source: str) -> str:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    suffix = f"-restored-{stamp}"
    return f"{source[: 63 - len(suffix)].rstrip('-')}{suffix}"


def plan_restore(request: Any, settings: RunbookSettings) -> RestorePlan:
    checked = check_shape(request)
    source_id = fields.fenced_source(checked["source_instance"] or settings.source_instance.lower(), settings.production_names)
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
