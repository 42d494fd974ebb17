"""The `snapshot` workflow (runbook "Creating Manual Snapshots"): check, create, follow, keep the last N.

Names follow the runbook (`irisx-pre-migration-20251102-120000`: prefix from settings, the reason,
the time), tags say why, who and which pipeline run asked, and which execution created it. Retention
deletes only snapshots that carry this tool's management tag, were made by this workflow and have
the same reason; automated snapshots and anyone else's are never touched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from restore_runbook.common import aws, clock, fields, rds
from restore_runbook.common.errors import (
    InvalidInput,
    SnapshotFailed,
    SnapshotTimedOut,
    SourceNotAvailable,
    TargetAlreadyExists,
    UnsafeOperation,
)
from restore_runbook.contract import (
    SNAPSHOT_REASONS,
    SNAPSHOT_WORKFLOW,
    TAG_LABEL,
    TAG_PIPELINE_RUN,
    TAG_REASON,
    TAG_REQUESTED_BY,
)
from restore_runbook.settings import RunbookSettings, SnapshotSettings

REASONS = SNAPSHOT_REASONS
FIELDS = {
    "reason": " | ".join(REASONS),
    "label": "optional free text, kept as a tag",
    "source_instance": "RDS instance identifier (default from settings)",
    "requested_by": "who asked (a person or a pipeline), kept as a tag",
    "pipeline_run": "optional CI run id or URL, kept as a tag",
}

WORKFLOW = SNAPSHOT_WORKFLOW

# Snapshot statuses that never turn into `available` by themselves.
TERMINAL_FAILURE_STATUSES = frozenset({"failed", "error", "deleting", "deleted", "incompatible-restore"})


@dataclass(frozen=True)
class SnapshotPlan:
    reason: str
    label: str | None
    source_instance: str
    snapshot_id: str
    requested_by: str
    pipeline_run: str | None
    checked_at: str

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: Any) -> SnapshotPlan:
        if not isinstance(state, dict):
            raise InvalidInput("the step received no snapshot plan; the state machine definition is broken")
        return cls(**{name: state.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- input


def check_shape(request: Any) -> dict[str, Any]:
    """Everything that can be said about the input without asking AWS; the source comes back in lower case."""
    request = fields.request_object(request, FIELDS, workflow="snapshot", example='{"reason": "pre-migration"}')
    checked: dict[str, Any] = {"reason": fields.choice(request.get("reason"), "reason", REASONS)}
    for name in ("label", "requested_by", "pipeline_run"):
        value = fields.optional(request, name, "no tag" if name != "requested_by" else "'not given'")
        checked[name] = None if value is None else fields.tag_text(value, name, FIELDS[name])
    source = fields.optional(request, "source_instance", "the configured source")
    checked["source_instance"] = None if source is None else fields.rds_identifier(source, "source_instance")
    return checked


def snapshot_name(prefix: str, reason: str, moment: datetime) -> str:
    return f"{prefix}-{reason}-{moment.astimezone(timezone.utc):%Y%m%d-%H%M%S}"


def plan_snapshot(request: Any, settings: RunbookSettings, snapshot_settings: SnapshotSettings) -> SnapshotPlan:
    checked = check_shape(request)
    source_id = fields.fenced_source(checked["source_instance"] or settings.source_instance.lower(), settings.production_names)
    source = rds.describe_source(source_id)
    status = source.get("DBInstanceStatus")
    if status != rds.AVAILABLE:
        raise SourceNotAvailable(
            f"source DB instance {source_id!r} is {status!r}; RDS takes a manual snapshot only of an available instance"
        )
    snapshot_id = snapshot_name(snapshot_settings.prefix, checked["reason"], clock.now())
    if rds.snapshot_named(snapshot_id) is not None:
        raise TargetAlreadyExists(f"a snapshot named {snapshot_id!r} already exists; start again in a second")
    return SnapshotPlan(
        reason=checked["reason"],
        label=checked["label"],
        source_instance=source_id,
        snapshot_id=snapshot_id,
        requested_by=checked["requested_by"] or "not given",
        pipeline_run=checked["pipeline_run"],
        checked_at=clock.isoformat(clock.now()),
    )


# ---------------------------------------------------------------------------------------- create and follow


def snapshot_tags(plan: SnapshotPlan, execution_id: str, settings: RunbookSettings) -> list[dict[str, str]]:
    tags = {
        settings.management_tag_key: settings.management_tag_value,
        rds.TAG_WORKFLOW: WORKFLOW,
        rds.TAG_EXECUTION: execution_id,
        rds.TAG_SOURCE: plan.source_instance,
        TAG_REASON: plan.reason,
        TAG_REQUESTED_BY: plan.requested_by,
    }
    if plan.pipeline_run:
        tags[TAG_PIPELINE_RUN] = plan.pipeline_run
    if plan.label:
        tags[TAG_LABEL] = plan.label
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def next_wait_seconds(elapsed: float, percent: int, settings: SnapshotSettings) -> int:
    """Half the remaining time the progress so far predicts, between the floor and the cap."""
    floor, cap = settings.poll_initial_seconds, settings.poll_max_seconds
    if percent <= 0 or elapsed <= 0:
        return floor
    remaining = elapsed / percent * (100 - percent)
    return int(min(cap, max(floor, remaining / 2)))


def start_snapshot(plan: SnapshotPlan, execution_id: str, settings: RunbookSettings, snapshot_settings: SnapshotSettings) -> dict[str, Any]:
    """Create the snapshot; a retry of this step finds its own snapshot instead of failing."""
    existing = rds.snapshot_named(plan.snapshot_id)
    if existing is not None:
        tags = rds.tags_of(existing)
        if tags.get(rds.TAG_EXECUTION) != execution_id:
            raise TargetAlreadyExists(f"snapshot {plan.snapshot_id!r} appeared after the input check and is not this execution's")
        already_started, status = True, existing.get("Status", "creating")
    else:
        response = aws.client("rds").create_db_snapshot(
            DBInstanceIdentifier=plan.source_instance,
            DBSnapshotIdentifier=plan.snapshot_id,
            Tags=snapshot_tags(plan, execution_id, settings),
        )
        already_started, status = False, response["DBSnapshot"].get("Status", "creating")
    return {
        "snapshot_id": plan.snapshot_id,
        "source_instance": plan.source_instance,
        "reason": plan.reason,
        "started_at": clock.isoformat(clock.now()),
        "already_started": already_started,
        "status": status,
        "percent_progress": 0,
        "state": "pending",
        "attempts": 0,
        "next_wait_seconds": snapshot_settings.poll_initial_seconds,
    }


def describe_snapshot(progress: dict[str, Any], snapshot_settings: SnapshotSettings) -> dict[str, Any]:
    snapshot_id = progress["snapshot_id"]
    attempts = int(progress.get("attempts", 0)) + 1
    snapshot = rds.snapshot_named(snapshot_id)
    if snapshot is None:
        raise SnapshotFailed(f"snapshot {snapshot_id!r} no longer exists; someone or something deleted it while it was being taken")
    status = str(snapshot.get("Status", ""))
    percent = int(snapshot.get("PercentProgress") or 0)
    now = clock.now()
    elapsed = (now - clock.parse_utc(progress["started_at"])).total_seconds()
    updated = {**progress, "attempts": attempts, "status": status, "percent_progress": percent}
    if status == rds.AVAILABLE:
        updated.update(
            state="available",
            percent_progress=100,
            available_at=clock.isoformat(now),
            seconds=round(elapsed),
            size_gib=snapshot.get("AllocatedStorage"),
            snapshot_arn=snapshot.get("DBSnapshotArn"),
            next_wait_seconds=0,
        )
        return updated
    if status in TERMINAL_FAILURE_STATUSES:
        raise SnapshotFailed(
            f"RDS put snapshot {snapshot_id!r} of {progress.get('source_instance')!r} into status {status!r} at "
            f"{percent}% after {round(elapsed / 60)} minutes; see the instance's events in the RDS console"
        )
    if attempts >= snapshot_settings.poll_max_attempts:
        raise SnapshotTimedOut(
            f"snapshot {snapshot_id!r} is still {status!r} at {percent}% after {attempts} checks over "
            f"{round(elapsed / 60)} minutes; it was left to finish on its own"
        )
    updated["next_wait_seconds"] = next_wait_seconds(elapsed, percent, snapshot_settings)
    return updated


# ---------------------------------------------------------------------------------------- retention


def is_own_snapshot(snapshot: dict[str, Any], reason: str, settings: RunbookSettings) -> bool:
    """Made by this tool's snapshot workflow, for this reason. Automated snapshots never qualify."""
    tags = rds.tags_of(snapshot)
    return (
        snapshot.get("SnapshotType") == "manual"
        and tags.get(settings.management_tag_key) == settings.management_tag_value
        and tags.get(rds.TAG_WORKFLOW) == WORKFLOW
        and tags.get(TAG_REASON) == reason
    )


def apply_retention(progress: dict[str, Any], settings: RunbookSettings, snapshot_settings: SnapshotSettings) -> dict[str, Any]:
    reason, source, current = progress["reason"], progress["source_instance"], progress["snapshot_id"]
    keep = snapshot_settings.keep_last.get(reason)
    if not keep:
        return {"keep_last": None, "deleted": [], "kept": None, "detail": f"no retention set for reason {reason!r}; nothing deleted"}
    snapshots: list[dict[str, Any]] = []
    for page in aws.client("rds").get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=source, SnapshotType="manual"):
        snapshots.extend(page["DBSnapshots"])
    own = [s for s in snapshots if is_own_snapshot(s, reason, settings) and s.get("Status") == rds.AVAILABLE]
    own.sort(key=lambda s: (s["DBSnapshotIdentifier"] == current, s["SnapshotCreateTime"]), reverse=True)
    deleted = []
    for snapshot in own[keep:]:
        deleted.append(delete_own_snapshot(snapshot["DBSnapshotIdentifier"], reason, current, settings))
    return {
        "keep_last": keep,
        "deleted": deleted,
        "kept": [s["DBSnapshotIdentifier"] for s in own[:keep]],
        "detail": f"kept the newest {min(keep, len(own))} {reason} snapshot(s) of this tool, deleted {len(deleted)}",
    }


def delete_own_snapshot(snapshot_id: str, reason: str | None, current: str | None, settings: RunbookSettings) -> str:
    """Delete a snapshot this workflow made; refuses anything else (the IAM policy repeats the fence)."""
    if snapshot_id == current:
        raise UnsafeOperation(f"refusing to delete {snapshot_id!r}: it is the snapshot this execution just took")
    snapshot = rds.snapshot_named(snapshot_id)
    if snapshot is None:
        return snapshot_id
    tags = rds.tags_of(snapshot)
    if (
        snapshot.get("SnapshotType") != "manual"
        or tags.get(settings.management_tag_key) != settings.management_tag_value
        or tags.get(rds.TAG_WORKFLOW) != WORKFLOW
        or (reason is not None and tags.get(TAG_REASON) != reason)
    ):
        raise UnsafeOperation(f"refusing to delete {snapshot_id!r}: this tool's snapshot workflow did not take it for {reason!r}")
    aws.client("rds").delete_db_snapshot(DBSnapshotIdentifier=snapshot_id)
    return snapshot_id


# ---------------------------------------------------------------------------------------- failure


def clean_up_failed_snapshot(
    progress: Any, execution_id: str, settings: RunbookSettings, plan: Any = None, *, retried: bool = False
) -> str:
    """A failed snapshot of this execution is deleted; one still being taken is left to finish.

    It looks before it speaks: a start step that failed after RDS accepted the create (a lost
    answer) reported nothing, so the snapshot is looked for by the name the plan gave it. A snapshot
    missing now that the start step reported, or that a retry of this step (`retried`) cannot find,
    may be one an earlier attempt deleted: that is said, not "nothing was created".
    """
    snapshot_id = (progress or {}).get("snapshot_id") if isinstance(progress, dict) else None
    started = bool(snapshot_id)
    snapshot_id = snapshot_id or ((plan or {}).get("snapshot_id") if isinstance(plan, dict) else None)
    if not snapshot_id:
        return "nothing was created"
    snapshot = rds.snapshot_named(snapshot_id)
    if snapshot is None:
        if started:
            return (
                f"{snapshot_id} no longer exists: this execution took it, and an earlier attempt of this cleanup (or someone else) "
                "deleted it"
            )
        if retried:
            return (
                f"no snapshot named {snapshot_id} exists, so nothing is left to delete; an earlier attempt of this cleanup may have "
                "deleted it (if the start step's request reached RDS before it failed)"
            )
        return f"nothing was created (no snapshot named {snapshot_id} exists)"
    if rds.tags_of(snapshot).get(rds.TAG_EXECUTION) != execution_id:
        return f"left {snapshot_id} untouched: this execution did not create it"
    how = "" if started else " (created by this execution although its start step did not report it)"
    status = snapshot.get("Status")
    if status in ("failed", "error"):
        delete_own_snapshot(snapshot_id, None, None, settings)
        return f"deleted the failed snapshot {snapshot_id}{how}"
    if status == rds.AVAILABLE:
        return f"kept snapshot {snapshot_id}{how}: it is available"
    return f"left snapshot {snapshot_id}{how} {status!r}: it may still become available; delete it if not wanted"
