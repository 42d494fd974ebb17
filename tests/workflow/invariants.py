"""The guarantees every workflow keeps after any fault, checked on the rehearsed world.

`capture(world)` is taken just before an execution starts; `violations(...)` compares the world
after it with that capture and returns one plain sentence per broken invariant (empty when all
hold), so a failing case says which guarantee broke and how, not only that something differed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3

from restore_runbook.common.errors import ALL_ERRORS
from tests.workflow.conftest import SOURCE

NAMED_ERRORS = frozenset(e.__name__ for e in ALL_ERRORS)
TAG_ROLE, ROLE_PRODUCTION = "irisx-restore:role", "production"
TAG_SWAPPED_BY, TAG_SWAPPED_AT = "irisx-restore:swapped-by", "irisx-restore:swapped-at"
THIS_EXECUTION = "<this execution>"  # in production_tags_allowed: the value must be the execution's ARN
# The names the failure paths end with when the original error was one of Step Functions' own.
STEP_FUNCTIONS_NAMES = ("States.", "Sandbox.", "Lambda.")
EXECUTION_TAG = "irisx-restore:execution"


@dataclass(frozen=True)
class Production:
    resource_id: str
    status: str
    deletion_protection: bool
    tags: dict[str, str]


@dataclass
class Capture:
    """What the world looked like before an execution: the yardstick for "untouched" and "left behind"."""

    instance_ids: set[str]
    production: Production | None
    host_db_hosts: list[str | None]
    host_health: list[str]
    journal_keys: set[tuple[str, str]]
    notifications: int
    snapshot_ids: set[str]
    recordings: str = ""
    locks: int = 0
    # A snapshot still being taken holds up the next one of the same instance, so it counts as a change.
    snapshots_in_progress: frozenset[str] = frozenset()

    def as_built(self, start: Capture) -> bool:
        """True when this world is as `start` found it (finished snapshots and the journal's history aside),
        so the next case may run in it: the same instances, production the same instance with the same
        settings, every host on the same database and answering, no lock, no snapshot being taken, the
        recordings as seeded."""
        return (
            self.instance_ids == start.instance_ids
            and self.production == start.production
            and self.host_db_hosts == start.host_db_hosts
            and self.host_health == start.host_health
            and self.locks == start.locks == 0
            and self.recordings == start.recordings
            and self.snapshots_in_progress == start.snapshots_in_progress
        )


def production_now() -> Production | None:
    try:
        (instance,) = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=SOURCE)["DBInstances"]
    except boto3.client("rds").exceptions.DBInstanceNotFoundFault:
        return None
    return Production(
        resource_id=instance["DbiResourceId"],
        status=instance["DBInstanceStatus"],
        deletion_protection=bool(instance.get("DeletionProtection")),
        tags={t["Key"]: t["Value"] for t in instance.get("TagList", [])},
    )


def recordings_fingerprint(world: Any) -> str:
    """Every version and delete marker of every recordings bucket: equal strings, unchanged buckets."""
    return json.dumps({bucket: world.recordings.state(bucket) for bucket in sorted(world.recordings.seeded)}, sort_keys=True)


def capture(world: Any) -> Capture:
    described = world.describe_world()
    return Capture(
        instance_ids={i["id"] for i in described["db_instances"]},
        production=production_now(),
        host_db_hosts=[h["db_host"] for h in described["app_hosts"]],
        host_health=[h["health"] for h in described["app_hosts"]],
        journal_keys={(r["pk"], r["sk"]) for r in described["journal"]},
        notifications=len(described["notifications"]),
        snapshot_ids={s["id"] for s in described["db_snapshots"]},
        recordings=recordings_fingerprint(world),
        locks=len(locks(described)),
        snapshots_in_progress=frozenset(s["id"] for s in described["db_snapshots"] if s["status"] != "available"),
    )


def locks(described: dict[str, Any]) -> list[dict[str, Any]]:
    """Every lock item, and every entry held in a bucket's registry of prefixes (journal/prefix_registry.py):
    an entry left there blocks overlapping restores just as a lock item does."""
    items = [r for r in described["journal"] if str(r["pk"]).startswith("LOCK#")]
    entries = [
        {"pk": f"{r['pk']} {resource}", "holder": entry.get("holder")}
        for r in described["journal"]
        if str(r["pk"]).startswith("PREFIXES#")
        for resource, entry in (r.get("holders") or {}).items()
    ]
    return items + entries


@dataclass
class Expected:
    """What a run should end as, and what its workflow documents it may leave or change."""

    status: str  # SUCCEEDED or FAILED
    # Hosts may point at these besides where they pointed before (a rollback points them at the original).
    db_hosts_allowed: tuple[str, ...] = ()
    # The production instance may be another instance afterwards (an in-place restore's swap succeeded).
    production_replaced: bool = False
    # Tags production may gain or change, with the value each must have (None: any value).
    production_tags_allowed: dict[str, str | None] = field(default_factory=dict)
    # The execution's journal record may read RUNNING (its end record could not be written, by design).
    journal_may_stay_running: bool = False
    # Instances that existed before the run and that it is documented to delete (a failed run must say it did).
    deletes: tuple[str, ...] = ()


def violations(result: Any, before: Capture, expected: Expected, *, execution_arn: str, injected: str | None = None) -> list[str]:
    described = result.world
    broken: list[str] = []
    broken += _status(result, expected)
    broken += _production(before, expected, execution_arn)
    broken += _app_hosts(described, before, expected)
    broken += _nothing_orphaned(described, before, result, expected, execution_arn)
    broken += _lock_released(described)
    broken += _journal_closed(described, result, expected, execution_arn)
    broken += _paths_resolve(result)
    if result.status == "FAILED":
        broken += _named_error(result, injected, execution_arn)
    return broken


def _status(result: Any, expected: Expected) -> list[str]:
    if result.status != expected.status:
        return [f"outcome: expected {expected.status}, the execution ended {result.status} ({result.error}: {_short(result.cause)})"]
    return []


def _production(before: Capture, expected: Expected, execution_arn: str) -> list[str]:
    now = production_now()
    if now is None:
        return [f"production untouched: {SOURCE} no longer exists"]
    broken = []
    if now.status != "available":
        broken.append(f"production serving: {SOURCE} is {now.status!r}, not available")
    if before.production is None:
        return broken
    if now.resource_id != before.production.resource_id and not expected.production_replaced:
        broken.append(f"production untouched: {SOURCE} is now another instance ({now.resource_id}, was {before.production.resource_id})")
    if now.deletion_protection != before.production.deletion_protection and not expected.production_replaced:
        broken.append(
            f"production untouched: deletion protection went from {before.production.deletion_protection} to {now.deletion_protection}"
        )
    if not expected.production_replaced:
        for key in sorted(set(now.tags) | set(before.production.tags)):
            was, is_now = before.production.tags.get(key), now.tags.get(key)
            if was == is_now:
                continue
            if key in expected.production_tags_allowed and is_now is not None:
                wanted = expected.production_tags_allowed[key]
                if wanted is None or is_now == (execution_arn if wanted == THIS_EXECUTION else wanted):
                    continue
            broken.append(f"production untouched: tag {key} went from {was!r} to {is_now!r}")
    return broken


def _app_hosts(described: dict[str, Any], before: Capture, expected: Expected) -> list[str]:
    broken = []
    for index, host in enumerate(described["app_hosts"]):
        allowed = {before.host_db_hosts[index], *expected.db_hosts_allowed}
        if host["db_host"] not in allowed:
            broken.append(f"app on {host['id']}: DB_HOST={host['db_host']}, expected one of {sorted(str(a) for a in allowed)}")
        if host["health"] != "connected":
            broken.append(f"app on {host['id']}: not running and healthy (health answers {host['health']!r}, DB_HOST={host['db_host']})")
    return broken


def _records_of(described: dict[str, Any], execution_arn: str) -> list[dict[str, Any]]:
    return [r for r in described["journal"] if str(r["pk"]).startswith("WORKFLOW#") and r.get("execution_arn") == execution_arn]


def _nothing_orphaned(described: dict[str, Any], before: Capture, result: Any, expected: Expected, execution_arn: str) -> list[str]:
    """Whatever the run created and left must be named where a person reads it: the cause on failure,
    the output on success. A failed run may keep what it was documented to keep only by saying so."""
    said = " ".join(
        [
            result.cause or "",
            json.dumps(result.output, default=str),
            *(str(r.get("left_behind") or "") for r in _records_of(described, execution_arn)),
        ]
    )
    broken = []
    for instance in described["db_instances"]:
        if instance["id"] not in before.instance_ids and instance["id"] not in said:
            broken.append(f"no orphaned copy: {instance['id']} ({instance['status']}) was left and the outcome does not name it")
    for gone in sorted(before.instance_ids - {i["id"] for i in described["db_instances"]} - {SOURCE}):
        if gone not in expected.deletes:
            broken.append(f"nothing else touched: {gone}, which existed before, was deleted though this outcome does not delete it")
        elif result.status == "FAILED" and gone not in said:
            broken.append(f"true cause: {gone} was deleted, and the failure does not say so")
    for snapshot in described["db_snapshots"]:
        ours = snapshot["tags"].get(EXECUTION_TAG) == execution_arn
        if snapshot["id"] not in before.snapshot_ids and ours and snapshot["id"] not in said:
            broken.append(f"no orphaned copy: snapshot {snapshot['id']} ({snapshot['status']}) was left and the outcome does not name it")
    return broken


def _lock_released(described: dict[str, Any]) -> list[str]:
    held = locks(described)
    return [f"lock released: {r['pk']} is still held by {r.get('execution_arn') or r.get('holder')}" for r in held]


def _journal_closed(described: dict[str, Any], result: Any, expected: Expected, execution_arn: str) -> list[str]:
    records = _records_of(described, execution_arn)
    if len(records) != 1:
        return [f"journal closed: expected one record of this execution, found {len(records)}"]
    (record,) = records
    if record["outcome"] == "RUNNING":
        return [] if expected.journal_may_stay_running else ["journal closed: the record still reads RUNNING"]
    broken = []
    if record["outcome"] != result.status:
        broken.append(f"journal closed: the record reads {record['outcome']}, the execution ended {result.status}")
    if result.status == "FAILED" and (record.get("error"), record.get("cause")) != (result.error, result.cause):
        broken.append(f"journal closed: the record says {record.get('error')}: {_short(record.get('cause'))}; the execution {result.error}")
    return broken


def _paths_resolve(result: Any) -> list[str]:
    """A path in a state's Parameters that does not exist is States.Runtime in AWS, which no Catch
    handles: the execution would fail there, unjournaled. moto raises it as a catchable error, so
    the history is where it shows."""
    broken = []
    for event in result.history:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        cause = str(details.get("cause") or "")
        if "could not be found in the input" in cause:
            broken.append(f"definition: {_short(cause.split(' in the input')[0], 200)} (AWS: States.Runtime, which no Catch handles)")
    return broken


def _named_error(result: Any, injected: str | None, execution_arn: str) -> list[str]:
    """A failed execution ends in one of the contract's names, or passes on the original error it caught
    (a Fail state re-raises the step's own error, `*FailedWithOriginalError`), never one of Step Functions'
    own names; either way the cause says what happened at the step that failed."""
    error, cause = result.error or "", result.cause or ""
    broken = []
    if error.startswith(STEP_FUNCTIONS_NAMES):
        broken.append(f"named error: the execution failed with Step Functions' own {error!r}, not a name from the error contract")
    elif error not in NAMED_ERRORS and error != injected:
        broken.append(f"named error: {error!r} is neither in the error contract nor the error the failing step raised")
    if injected and injected not in cause:
        broken.append(f"true cause: the cause does not name the step's error {injected!r}: {_short(cause)}")
    for claimed in re.findall(r"([a-z0-9-]+) was NOT deleted", cause):
        if claimed not in {i["id"] for i in result.world["db_instances"]} and claimed != SOURCE:
            broken.append(f"true cause: it says {claimed} was NOT deleted, but {claimed} is gone")
    created = _created_by(result.world, execution_arn)
    if "nothing was created" in cause and created:
        broken.append(f"true cause: it says nothing was created, but {', '.join(created)} exist(s) from this execution")
    return broken


def _created_by(described: dict[str, Any], execution_arn: str) -> list[str]:
    found = [i["id"] for i in described["db_instances"] if i["tags"].get(EXECUTION_TAG) == execution_arn and i["id"] != SOURCE]
    found += [s["id"] for s in described["db_snapshots"] if s["tags"].get(EXECUTION_TAG) == execution_arn]
    return found


def _short(text: Any, limit: int = 400) -> str:
    value = str(text or "")
    return value if len(value) <= limit else value[: limit - 1] + "…"
