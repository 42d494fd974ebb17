"""A drill's measures, each against its objective, and the verdicts: what the journal, metrics and report show.

- RTO: requested (the drill's input check, the moment the "incident" is declared) until the copy
  passed validation, on the project's clock; with its phases: restore start (requested until RDS
  accepted the restore), restore (until available), first connect and validation (both timed by
  the checks themselves).
- RPO: what a restore started at that moment would lose: requested minus the newest restorable
  point (the latest restorable time for point-in-time; the newest snapshot for snapshot drills,
  which the runbook gives no objective). Beside it: how far the chosen restore point lies behind
  that newest point (0 for `latest`, anything inside the window for `random`), and the data gap
  the recency check measured (the restore point minus the newest row the copy holds).
- Time alive beyond the restore: available until its deletion was accepted (keep_minutes
  included): how long the workflow kept a copy nobody needed.
- Teardown: deletion accepted until RDS no longer knows the copy.
- Recordings (drill/recordings.py): per bucket, the keys whose older version was copied and compared,
  matched or not, bytes and duration. Not an objective with a time: a mismatch fails the drill, and a
  bucket with nothing to check says so instead of counting as proof.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from restore_runbook.common import clock, failure

MET, MISSED, NOT_MEASURED, NO_OBJECTIVE = "met", "missed", "not measured", "no objective"
PASSED, OBJECTIVES_MISSED, FAILED = "met", "missed", "failed"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return clock.parse_utc(value)
    except ValueError:
        return None


def _between(start: Any, end: Any) -> float | None:
    began, ended = _time(start), _time(end)
    if began is None or ended is None:
        return None
    return round((ended - began).total_seconds(), 3)


def verdict(seconds: float | None, objective: float | None) -> str:
    if seconds is None:
        return NOT_MEASURED
    if objective is None:
        return NO_OBJECTIVE
    return MET if seconds <= objective else MISSED


def _measure(seconds: float | None, objective: float | None, **details: Any) -> dict[str, Any]:
    return {"seconds": seconds, "objective_seconds": objective, "verdict": verdict(seconds, objective), **details}


def _check(validation: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    return next((c for c in (validation or {}).get("checks", []) if c.get("name") == name), None)


def data_gap_seconds(validation: dict[str, Any] | None) -> float | None:
    """The smallest gap any recency check measured: how far before the restore point the copy's newest row lies."""
    gaps = [
        c["values"]["data_gap_seconds"]
        for c in (validation or {}).get("checks", [])
        if str(c.get("name", "")).startswith("recency:") and isinstance((c.get("values") or {}).get("data_gap_seconds"), int | float)
    ]
    return round(min(gaps), 3) if gaps else None


def measures(
    drill: dict[str, Any],
    restore: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    teardown: dict[str, Any] | None,
) -> dict[str, Any]:
    restore, teardown = restore or {}, teardown or {}
    timings = (validation or {}).get("timings") or {}
    objective = drill.get("objectives") or {}
    requested_at = drill.get("requested_at")

    connect = _check(validation, "connect")
    phases = {
        "restore_start_seconds": _between(requested_at, restore.get("started_at")),
        "restore_seconds": _between(restore.get("started_at"), restore.get("available_at")),
        "first_connect_seconds": round(connect["duration_ms"] / 1000, 3) if connect and connect.get("passed") else None,
        "validation_seconds": timings.get("validation_seconds"),
    }
    rto = _measure(_between(requested_at, timings.get("validated_at")), objective.get("rto_seconds"), phases=phases)

    newest = drill.get("latest_restorable_at_start") if drill.get("mode") == "point-in-time" else drill.get("newest_snapshot_at_start")
    restore_point = restore.get("restore_point")
    rpo = _measure(
        _between(newest, requested_at),
        objective.get("rpo_seconds"),
        newest_restorable_at_start=newest,
        restore_point=restore_point,
        restore_point_behind_newest_seconds=_between(restore_point, newest),
        data_gap_seconds=data_gap_seconds(validation),
    )
    alive = _measure(
        _between(restore.get("available_at"), teardown.get("delete_requested_at") or teardown.get("finished_at")),
        objective.get("alive_beyond_restore_seconds"),
        keep_minutes=drill.get("keep_minutes", 0),
    )
    gone = _measure(
        _between(teardown.get("delete_requested_at") or teardown.get("started_at"), teardown.get("finished_at")),
        objective.get("teardown_seconds"),
    )
    return {"rto": rto, "rpo": rpo, "alive_beyond_restore": alive, "teardown": gone}


def _base(drill: dict[str, Any], restore: dict[str, Any] | None, teardown: dict[str, Any] | None) -> dict[str, Any]:
    plan = drill.get("plan") or {}
    return {
        "source_instance": drill.get("source_instance"),
        "target_instance": plan.get("target_instance"),
        "mode": drill.get("mode"),
        "restore_point_requested": drill.get("restore_point_requested"),
        "restore_point": (restore or {}).get("restore_point") or plan.get("restore_point"),
        "restorable_window": drill.get("restorable_window"),
        "snapshot_id": plan.get("snapshot_id"),
        "scheduled_time": drill.get("scheduled_time"),
        "requested_at": drill.get("requested_at"),
        "keep_minutes": drill.get("keep_minutes", 0),
        "torn_down": (teardown or {}).get("state") == "done",
        "teardown": (teardown or {}).get("detail") or "not started",
    }


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    if minutes >= 120:  # a snapshot's age: hours read better
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def describe(measured: dict[str, Any]) -> str:
    """`RTO 24m10s (objective 30m00s: met); RPO 4m55s (objective 5m00s: met)`, for records and notifications."""
    parts = []
    for name, label in (("rto", "RTO"), ("rpo", "RPO"), ("alive_beyond_restore", "alive beyond restore"), ("teardown", "teardown")):
        m = measured.get(name) or {}
        parts.append(f"{label} {_minutes(m.get('seconds'))} (objective {_minutes(m.get('objective_seconds'))}: {m.get('verdict')})")
    return "; ".join(parts)


RECORDINGS_FIELDS = (
    "verdict", "summary", "keys_per_bucket", "keys_checked", "matched", "mismatched", "unrestorable", "bytes",
    "duration_seconds", "scratch", "scratch_removed", "buckets",
)  # fmt: skip


def recordings_of(
    checked: dict[str, Any] | None,
    cleanup: dict[str, Any] | None,
    check_failure: dict[str, Any] | None = None,
    cleanup_failure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the record and the report show of the recordings check, from its result or from its failure's report."""
    if checked:
        view = {name: checked.get(name) for name in RECORDINGS_FIELDS if name in checked}
    elif check_failure:
        error, cause = failure.outcome_of(check_failure)
        text, report = failure.split_report(cause)
        view = {**(report or {}), "verdict": "failed", "error": error, "summary": text}
    else:
        view = {"verdict": "not checked", "summary": "recordings: not checked (the drill ended before its recordings step)"}
    if cleanup_failure:
        error, cause = failure.outcome_of(cleanup_failure)
        view["scratch_cleanup"] = f"FAILED ({error}: {failure.split_report(cause)[0]})"
    elif cleanup:
        view["scratch_cleanup"] = cleanup.get("detail")
    return view


def drill_result(
    drill: dict[str, Any],
    restore: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    teardown: dict[str, Any] | None,
    recordings: dict[str, Any] | None = None,
    recordings_cleanup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The result of a drill that restored and validated its copy, deleted it again and checked recordings."""
    measured = measures(drill, restore, validation, teardown)
    missed = [name for name, m in measured.items() if m["verdict"] == MISSED]
    checked = recordings_of(recordings, recordings_cleanup)
    result = {
        **_base(drill, restore, teardown),
        "verdict": OBJECTIVES_MISSED if missed else PASSED,
        "missed": missed,
        "measures": measured,
        "validation_summary": (validation or {}).get("summary"),
        "recordings": checked,
    }
    result["summary"] = (
        f"drill of {result['source_instance']} ({result['mode']}, restore point {result['restore_point']}): "
        f"{'objectives met' if not missed else 'MISSED ' + ', '.join(missed)}; {describe(measured)}; {checked['summary']}"
    )
    result["left_behind"] = f"nothing: {result['teardown']}; {result['summary']}"
    return result


def failed_result(
    drill: dict[str, Any] | None,
    restore: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    teardown: dict[str, Any] | None,
    failed: dict[str, Any] | None,
    teardown_failure: dict[str, Any] | None,
    recordings: dict[str, Any] | None = None,
    recordings_failure: dict[str, Any] | None = None,
    recordings_cleanup: dict[str, Any] | None = None,
    recordings_cleanup_failure: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The end record of a failed drill: the original error (the database drill's before the recordings
    check's, before the teardowns'), what the teardown did, and what was measured before."""
    drill = drill or {}
    # The drill fails with this error: never one of Step Functions' own names, which a Fail state may not raise.
    first = next(f for f in (failed, recordings_failure, teardown_failure, recordings_cleanup_failure, {}) if f is not None)
    error, cause = failure.outcome_of(first)
    # The copy a failed teardown leaves is named, so the person reading the cause can find it.
    copy = (restore or {}).get("target_instance") or (drill.get("plan") or {}).get("target_instance") or "the copy"
    if teardown_failure and first is not teardown_failure:
        t_error, t_cause = failure.explain(teardown_failure)
        cleanup = f"teardown FAILED ({t_error}: {t_cause}); the daily sweep deletes {copy}, or delete it by hand"
    elif teardown_failure:
        cleanup = f"teardown FAILED (see the cause); the daily sweep deletes {copy}, or delete it by hand"
    elif teardown:
        cleanup = str(teardown.get("detail") or "teardown did not report")
    else:
        cleanup = "nothing was created"
    checked = recordings_of(recordings, recordings_cleanup, recordings_failure, recordings_cleanup_failure)
    if recordings_failure and first is not recordings_failure:
        # The database's error names the drill; the recordings check's failure is said beside it.
        cause = f"{cause}; and the recordings check failed too: {checked['summary']}"
    if recordings_cleanup_failure or (recordings_cleanup or {}).get("removed"):
        # Said only when the scratch removal had something to do: a clean check leaves nothing there.
        cleanup = f"{cleanup}; recordings scratch: {checked['scratch_cleanup']}"
    measured = measures(drill, restore, validation, teardown)
    result = {
        **_base(drill, restore, teardown),
        "verdict": FAILED,
        "missed": [],
        "measures": measured,
        "error": error,
        "cause": cause,
        "validation_summary": (validation or {}).get("summary"),
        "recordings": checked,
    }
    result["summary"] = f"drill of {result['source_instance'] or 'the source'} FAILED: {error}: {cause}"
    return {"error": error, "cause": f"{cause} [teardown: {cleanup}]", "cleanup": cleanup, "result": result}


def metrics_of(result: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(name, unit, value) for CloudWatch, all under the Source dimension."""
    measured = result.get("measures") or {}
    if result.get("verdict") == FAILED:
        return [("DrillFailed", "Count", 1)]
    values = [
        ("DrillSucceeded", "Count", 1),
        ("DrillObjectivesMissed", "Count", len(result.get("missed") or [])),
        ("RtoSeconds", "Seconds", (measured.get("rto") or {}).get("seconds")),
        ("RpoSeconds", "Seconds", (measured.get("rpo") or {}).get("seconds")),
        ("DataGapSeconds", "Seconds", (measured.get("rpo") or {}).get("data_gap_seconds")),
        ("AliveBeyondRestoreSeconds", "Seconds", (measured.get("alive_beyond_restore") or {}).get("seconds")),
        ("TeardownSeconds", "Seconds", (measured.get("teardown") or {}).get("seconds")),
    ]
    return [(name, unit, float(value)) for name, unit, value in values if isinstance(value, int | float)]
