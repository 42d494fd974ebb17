"""The `drill` workflow's input, checked before anything is created, and the plan restore's steps accept.

A drill is a restore of production to a throwaway copy, so its plan IS a restore plan (built by
restore's own `plan_restore`, with every check that implies: the source, the restore window, the
snapshot, a free target name), marked `purpose: drill`. Beside it the drill keeps what only it
needs: the restore point as asked, when it was requested, the newest restorable point at that
moment (for RPO), the objectives in force, how long a person may look at the copy, and its lock.

A schedule retry is a new execution with a new id, so a scheduled drill claims its
`scheduled_time` in the journal with a conditional write; a second start for the same time ends
at once and says which execution has it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from restore_runbook.common import aws, clock, fields, rds
from restore_runbook.common.errors import InvalidInput
from restore_runbook.contract import JOURNAL_DRILL_CLAIM_PK
from restore_runbook.journal import table as journal
from restore_runbook.restore.request import plan_restore
from restore_runbook.settings import RunbookSettings

FIELDS = {
    "source_instance": "RDS instance identifier (default from settings)",
    "restore_point": "latest | random | an ISO-8601 UTC time | snapshot:latest | snapshot:<id>",
    "requested_by": "free text for the record",
    "scheduled_time": "the schedule's <aws.scheduler.scheduled-time>; a second start for the same time does nothing",
    "keep_minutes": "minutes the copy stays for a person to look at it before it is deleted (default 0)",
}
SNAPSHOT_PREFIX = "snapshot:"
# A random point is drawn this far inside the window's old edge: the edge moves forward with time,
# and a point on it at the check could be outside the window by the time RDS is called.
RANDOM_MARGIN = timedelta(minutes=10)
DEDUPE_PK = JOURNAL_DRILL_CLAIM_PK
DEDUPE_SK = "SCHEDULED#{time}"


def check_shape(request: Any, settings: RunbookSettings) -> dict[str, Any]:
    """Everything that can be said about the input without asking AWS."""
    if request is None:
        request = {}
    if not isinstance(request, dict):
        raise InvalidInput(f'the drill input must be a JSON object such as {{"restore_point": "random"}}, got {request!r}')
    unknown = sorted(set(request) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown input field(s) {', '.join(unknown)}; the drill workflow accepts: {', '.join(sorted(FIELDS))}")
    checked: dict[str, Any] = {}
    for name in ("source_instance", "restore_point", "requested_by", "scheduled_time"):
        value = request.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInput(f"{name} must be a non-empty string ({FIELDS[name]}), got {value!r}")
        checked[name] = value.strip() if isinstance(value, str) else None

    source = checked["source_instance"] or settings.source_instance
    try:
        # The shared normalization: full match, lower case as RDS stores it.
        checked["source_instance"] = fields.rds_identifier(source, "source_instance")
    except InvalidInput as exc:
        raise InvalidInput(f"source_instance {source!r} is not a valid RDS identifier ({exc})") from None
    # Before the scheduled time is claimed in the journal: an unfenced source changes nothing at all.
    fields.fenced_source(checked["source_instance"], settings.production_names)

    point = checked["restore_point"] or "latest"
    checked["restore_point"] = point
    if point.startswith(SNAPSHOT_PREFIX):
        snapshot_id = point[len(SNAPSHOT_PREFIX) :]
        if snapshot_id != "latest":
            try:
                snapshot_id = fields.snapshot_identifier(snapshot_id, "restore_point")
            except InvalidInput:
                raise InvalidInput(f"restore_point {point!r} does not name a valid RDS snapshot identifier after 'snapshot:'") from None
        checked["mode"], checked["snapshot_id"] = "snapshot", snapshot_id
    elif point in ("latest", "random"):
        checked["mode"] = "point-in-time"
    else:
        try:
            checked["restore_time"] = clock.parse_utc(point)
        except ValueError as exc:
            raise InvalidInput(
                f"restore_point {point!r} is none of latest, random, snapshot:latest, snapshot:<id>, "
                "or an ISO-8601 UTC time like 2025-11-02T12:00:00Z"
            ) from exc
        checked["mode"] = "point-in-time"

    keep = request.get("keep_minutes", 0)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise InvalidInput(f"keep_minutes must be a whole number of minutes, 0 or more, got {keep!r}")
    if keep > settings.drill_max_keep_minutes:
        raise InvalidInput(
            f"keep_minutes {keep} is more than the {settings.drill_max_keep_minutes} minutes a drill's copy may stay "
            "(setting drill_max_keep_minutes); the copy costs money and the daily sweep would delete it"
        )
    checked["keep_minutes"] = keep

    if checked["requested_by"] is not None and len(checked["requested_by"]) > fields.MAX_TEXT:
        raise InvalidInput(f"requested_by is longer than {fields.MAX_TEXT} characters")
    if checked["scheduled_time"] is not None:
        try:
            # One spelling per moment, so a retry that formats the time differently is still the same drill.
            checked["scheduled_time"] = clock.isoformat(clock.parse_utc(checked["scheduled_time"]))
        except ValueError as exc:
            raise InvalidInput(
                f"scheduled_time {checked['scheduled_time']!r} is not an ISO-8601 UTC time (the schedule passes "
                "<aws.scheduler.scheduled-time>, e.g. 2025-12-02T10:00:00Z)"
            ) from exc
    return checked


def random_point(window: rds.RestoreWindow, rng: random.Random) -> datetime:
    """A whole second drawn uniformly from the window, at least RANDOM_MARGIN inside its old edge."""
    earliest = window.earliest + RANDOM_MARGIN
    if earliest >= window.latest:
        raise InvalidInput(
            f"the restorable window {window.describe()} is shorter than the {int(RANDOM_MARGIN.total_seconds() // 60)} minutes "
            "a random restore point needs; use restore_point 'latest'"
        )
    low = int(earliest.timestamp()) + (0 if earliest.microsecond == 0 else 1)
    high = int(window.latest.timestamp())
    return datetime.fromtimestamp(rng.randint(low, high), tz=earliest.tzinfo)


def drill_target_name(source: str, now: datetime) -> str:
    suffix = f"-drill-{now:%Y%m%d-%H%M%S}"
    return f"{source[: 63 - len(suffix)].rstrip('-')}{suffix}"


def lock_resource(source: str) -> str:
    """The drill's own lock: never the one restore, rollback and in-place-restore take on the source."""
    return f"drill:{source}"


def claim_scheduled_time(source: str, scheduled_time: str, execution_arn: str, settings: journal.JournalSettings) -> str | None:
    """Claim the scheduled time for this execution; return the execution that already holds it, if any.

    Idempotent: a retried check step finds its own claim and carries on.
    """
    table = journal.table(settings)
    key = {journal.PK: DEDUPE_PK.format(source=source), journal.SK: DEDUPE_SK.format(time=scheduled_time)}
    try:
        table.put_item(
            Item={**key, "execution_arn": execution_arn, "scheduled_time": scheduled_time, "claimed_at": clock.isoformat(clock.now())},
            ConditionExpression="attribute_not_exists(pk) OR execution_arn = :me",
            ExpressionAttributeValues={":me": execution_arn},
        )
        return None
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
    holder = table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
    return str(holder.get("execution_arn") or "an earlier execution")


def objectives(settings: RunbookSettings, mode: str, keep_minutes: int) -> dict[str, Any]:
    return {
        "rto_seconds": 60 * (settings.drill_rto_point_in_time_minutes if mode == "point-in-time" else settings.drill_rto_snapshot_minutes),
        # The runbook's RPO ("up to 5 minutes") is point-in-time recovery's; for a snapshot it "depends on snapshot frequency".
        "rpo_seconds": 60 * settings.drill_rpo_minutes if mode == "point-in-time" else None,
        "alive_beyond_restore_seconds": 60 * (keep_minutes + settings.drill_overstay_minutes),
        "teardown_seconds": 60 * settings.drill_teardown_minutes,
    }


def plan_drill(
    request: Any,
    execution_arn: str,
    settings: RunbookSettings,
    journal_settings: journal.JournalSettings,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    checked = check_shape(request, settings)
    source = checked["source_instance"]
    requested_at = clock.now()
    if checked["scheduled_time"]:
        holder = claim_scheduled_time(source, checked["scheduled_time"], execution_arn, journal_settings)
        if holder is not None:
            return {
                "duplicate_of": holder,
                "source_instance": source,
                "scheduled_time": checked["scheduled_time"],
                "message": (
                    f"the drill of {source} scheduled for {checked['scheduled_time']} was already started as execution "
                    f"{journal.execution_name(holder)}; this start (a schedule retry) did nothing"
                ),
            }

    source_instance = rds.describe_source(source)
    restore_request: dict[str, Any] = {
        "mode": checked["mode"],
        "source_instance": source,
        "target_instance": drill_target_name(source, requested_at),
        "requested_by": checked["requested_by"] or ("schedule" if checked["scheduled_time"] else None),
    }
    window: rds.RestoreWindow | None = None
    newest_snapshot_at: str | None = None
    if checked["mode"] == "point-in-time":
        window = rds.restore_window(source_instance)
        if checked["restore_point"] == "random":
            restore_request["restore_time"] = clock.isoformat(random_point(window, rng or random.SystemRandom()))
        elif checked["restore_point"] != "latest":
            restore_request["restore_time"] = clock.precise(checked["restore_time"])
    else:
        restore_request["snapshot_id"] = checked["snapshot_id"]
        newest_snapshot_at = clock.precise(rds.find_snapshot(source, "latest")["SnapshotCreateTime"])
    plan = plan_restore({k: v for k, v in restore_request.items() if v is not None}, settings)
    plan = replace(plan, purpose=rds.PURPOSE_DRILL, keep_on_failure=False, cutover=False)

    return {
        "plan": plan.to_state(),
        "source_instance": source,
        "mode": plan.mode,
        "restore_point_requested": checked["restore_point"],
        "scheduled_time": checked["scheduled_time"],
        "requested_at": clock.isoformat(requested_at),
        # The newest point a restore could have reached when the drill started: what RPO is measured against.
        "latest_restorable_at_start": clock.precise(window.latest) if window else None,
        "restorable_window": {"earliest": clock.isoformat(window.earliest), "latest": clock.isoformat(window.latest)} if window else None,
        "newest_snapshot_at_start": newest_snapshot_at,
        "keep_minutes": checked["keep_minutes"],
        "keep_seconds": 60 * checked["keep_minutes"],
        "lock_resource": lock_resource(source),
        "objectives": objectives(settings, plan.mode, checked["keep_minutes"]),
    }
