"""Past drills for a rehearsal's journal, so `restorectl drills` has a trend to show.

`rehearse drill --past-drills N` writes N monthly drills before the rehearsal's start: one on the
first Tuesday of each earlier month at 10:00 UTC, as the schedule starts them. Their measures are
made by the drill's own code (`drill.measure`) from plausible timings, deterministic for a given
start, so their records have exactly the shape a real drill's end record has: mostly met, now and
then a slow restore that misses RTO, and one failed validation.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from restore_runbook.drill import measure
from restore_runbook.journal import table as journal

STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-drill"


def first_tuesday(year: int, month: int) -> datetime:
    first = datetime(year, month, 1, 10, 0, tzinfo=timezone.utc)
    return first + timedelta(days=(1 - first.weekday()) % 7)


def scheduled_times_before(moment: datetime, count: int) -> list[datetime]:
    """The schedule's last `count` starts before `moment` (the first Tuesday of a month, 10:00 UTC), oldest first."""
    times: list[datetime] = []
    year, month = moment.year, moment.month
    while len(times) < count:
        start = first_tuesday(year, month)
        if start < moment:
            times.append(start)
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return sorted(times)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def past_recordings(rng: random.Random) -> dict[str, Any]:
    """What a past drill's recordings check found: three small recordings per bucket, all matched."""
    from restorectl.emulated_recordings import BUCKETS

    buckets = [{"bucket": b, "status": "met", "keys_checked": 3, "matched": 3, "mismatched": 0, "unrestorable": 0,
                "bytes": rng.randrange(300_000, 3_000_000)} for b in BUCKETS]  # fmt: skip
    return {
        "verdict": "met",
        "keys_checked": 3 * len(buckets),
        "matched": 3 * len(buckets),
        "mismatched": 0,
        "unrestorable": 0,
        "bytes": sum(b["bytes"] for b in buckets),
        "buckets": buckets,
        "summary": "recordings: " + "; ".join(f"3/3 matched in {b['bucket']} ({b['bytes']} bytes)" for b in buckets),
    }


def past_drill(started: datetime, source: str, index: int, rng: random.Random) -> dict[str, Any]:
    """One drill's end record as the journal holds it, started at `started`."""
    failed = index == 3  # one failure in the history: a report must show what failed
    restore_minutes = rng.uniform(14, 24) if index % 5 else rng.uniform(31, 38)  # every fifth one is slow
    lag = timedelta(seconds=rng.uniform(150, 290))
    name = f"scheduled-{started:%Y%m%d}"
    drill: dict[str, Any] = {
        "plan": {"target_instance": f"{source}-drill-{started:%Y%m%d-%H%M%S}", "snapshot_id": None, "restore_point": _iso(started - lag)},
        "source_instance": source,
        "mode": "point-in-time",
        "restore_point_requested": "latest",
        "scheduled_time": _iso(started),
        "requested_at": _iso(started),
        "latest_restorable_at_start": _iso(started - lag),
        "restorable_window": {"earliest": _iso(started - timedelta(days=7)), "latest": _iso(started - lag)},
        "keep_minutes": 0,
        "objectives": {"rto_seconds": 1800, "rpo_seconds": 300, "alive_beyond_restore_seconds": 300, "teardown_seconds": 1800},
    }
    restore_started = started + timedelta(seconds=3)
    available = restore_started + timedelta(minutes=restore_minutes)
    restore = {"started_at": _iso(restore_started), "available_at": _iso(available), "restore_point": _iso(started - lag)}
    validated = available + timedelta(seconds=rng.uniform(20, 60))
    validation = {
        "passed": True,
        "summary": "all 6 checks passed",
        "checks": [
            {"name": "connect", "passed": True, "duration_ms": rng.uniform(300, 2000), "values": {}},
            {"name": "recency:calls", "passed": True, "duration_ms": 4.0, "values": {"data_gap_seconds": round(rng.uniform(1, 60), 3)}},
        ],
        "timings": {"validated_at": _iso(validated), "validation_seconds": round((validated - available).total_seconds(), 3)},
    }
    teardown_started = validated + timedelta(seconds=2)
    finished = teardown_started + timedelta(minutes=rng.uniform(3, 7))
    teardown = {
        "state": "done",
        "started_at": _iso(teardown_started),
        "delete_requested_at": _iso(teardown_started),
        "finished_at": _iso(finished),
        "detail": f"{drill['plan']['target_instance']} deleted",
    }
    if failed:
        outcome = measure.failed_result(
            drill,
            restore,
            None,
            teardown,
            {"Error": "ValidationFailed", "Cause": "1 of 6 checks failed: recency(calls): 42 rows were created after the restore point"},
            None,
            recordings=past_recordings(rng),
        )
        result, error, cause, left = outcome["result"], outcome["error"], outcome["cause"], outcome["cleanup"]
    else:
        result, error, cause = measure.drill_result(drill, restore, validation, teardown, past_recordings(rng)), None, None
        left = result["left_behind"]
    arn = f"{STATE_MACHINE}:{name}"
    start_key = journal.execution_sk(_iso(started), arn)
    return {
        journal.PK: journal.execution_pk("drill"),
        journal.SK: start_key,
        journal.INDEX_PK: journal.EXECUTION_KIND,
        journal.INDEX_SK: start_key,
        "workflow": "drill",
        "execution_arn": arn,
        "execution_name": name,
        "execution_start_time": _iso(started),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_seconds": round((finished - started).total_seconds()),
        "input": {"scheduled_time": _iso(started), "requested_by": "EventBridge Scheduler"},
        "requested_by": "EventBridge Scheduler",
        "pipeline_run": "",
        "outcome": "FAILED" if failed else "SUCCEEDED",
        "error": error,
        "cause": cause,
        "left_behind": left,
        "phases": [{"phase": "restore", "start": restore["started_at"], "end": restore["available_at"]}],
        "validation": None if failed else validation,
        "result": result,
        "lock_release": f"released the lock on drill:{source}",
        "console_link": journal.console_link(arn),
        "seeded": "restorectl/emulated_drills.py: a past drill invented for the rehearsal's trend",
    }


def seed(table_name: str, source: str, now: datetime, count: int) -> list[dict[str, Any]]:
    """Write `count` monthly drills before `now` into the journal table; return them, oldest first."""
    import boto3

    rng = random.Random(int(now.timestamp()))  # noqa: S311 - invented history, reproducible per start time
    items = [past_drill(started, source, index, rng) for index, started in enumerate(scheduled_times_before(now, count))]
    table = boto3.resource("dynamodb").Table(table_name)
    for item in items:
        table.put_item(Item=journal.to_item(item))
    return items
