"""After the Map: read every batch's result, count, estimate the cost, and fail loudly on gaps.

A batch without a result file is a child that failed before it could write one, so it counts as
failed in full. The child's Catch (RecordBatchCrash) writes what the failure was, its error and
cause, beside the results, since the Map's own output is dropped (at scale it would not fit in a
state's payload); the cause then names it. A batch with a result file is judged by that file even
when its child failed afterwards (its answer was lost): every entry it lists was done. More failed
keys than `recordings_tolerated_failures` ends the execution in RecordingsRestoreIncomplete, with a
sample of the keys and the location of the full list.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from restore_runbook.common import clock
from restore_runbook.common.errors import RecordingsRestoreIncomplete
from restore_runbook.recordings import store
from restore_runbook.recordings.apply import APPLIED, FAILED, SKIPPED
from restore_runbook.settings import RunbookSettings

SAMPLE = 20
READERS = 16

# Published on-demand prices, us-east-1, USD, as read on 2026-12-01 from
#   https://aws.amazon.com/s3/pricing/ (S3 Standard requests; DELETE is free),
#   https://aws.amazon.com/step-functions/pricing/ (Standard workflows),
#   https://aws.amazon.com/lambda/pricing/ (x86, requests and GB-seconds).
# Other storage classes charge more per request and per GB retrieved; the estimate is a floor for them.
PRICES_USD = {
    "s3_put_copy_post_list_per_1000": 0.005,
    "s3_get_head_per_1000": 0.0004,
    "s3_delete_per_1000": 0.0,
    "sfn_standard_transition_per_1000": 0.025,
    "lambda_request_per_million": 0.20,
    "lambda_gb_second": 0.0000166667,
}
# State transitions of this workflow outside the Map, per planner round (Task, Choice) and per
# child (its Choice and its Task), counted from statemachines/recordings-restore.asl.json.
FIXED_TRANSITIONS = 14
TRANSITIONS_PER_PLAN_LOOP = 2
TRANSITIONS_PER_CHILD = 2
# Rough Lambda seconds at 256 MB, measured in the rehearsal's handlers plus S3 latency allowance.
LAMBDA_GB = 0.25
LAMBDA_SECONDS_PER_ENTRY = 0.05
LAMBDA_SECONDS_PER_PAGE = 0.4


def estimate_cost(
    *, pages: int, copies: int, multipart_parts: int, undelete_markers: int, hides: int, entries: int, batches: int, plan_invocations: int
) -> dict[str, Any]:
    """Requests, transitions and invocations this restore makes, and what AWS charges for them."""
    tier1 = pages + copies + multipart_parts + 2 * plan_invocations + batches + 2  # LIST, COPY, parts, plan PUTs, result PUTs
    # HEAD before every change (idempotency and the delete-marker check), GETs of the plan and the results.
    tier2 = 2 * entries + undelete_markers + batches * 2 + plan_invocations
    deletes = undelete_markers + hides
    transitions = FIXED_TRANSITIONS + TRANSITIONS_PER_PLAN_LOOP * plan_invocations + TRANSITIONS_PER_CHILD * batches
    invocations = 8 + plan_invocations + batches
    lambda_seconds = LAMBDA_SECONDS_PER_PAGE * pages + LAMBDA_SECONDS_PER_ENTRY * entries
    p = PRICES_USD
    usd = {
        "s3_requests": tier1 / 1000 * p["s3_put_copy_post_list_per_1000"]
        + tier2 / 1000 * p["s3_get_head_per_1000"]
        + deletes / 1000 * p["s3_delete_per_1000"],
        "step_functions": transitions / 1000 * p["sfn_standard_transition_per_1000"],
        "lambda": invocations / 1e6 * p["lambda_request_per_million"] + lambda_seconds * LAMBDA_GB * p["lambda_gb_second"],
    }
    return {
        "requests": {"put_copy_list": tier1, "get_head": tier2, "delete": deletes},
        "state_transitions": transitions,
        "lambda_invocations": invocations,
        "usd": {name: round(value, 6) for name, value in usd.items()},
        "usd_total": round(sum(usd.values()), 6),
        "prices": "us-east-1 on-demand, read 2026-12-01 (lambdas/restore_runbook/recordings/report.py PRICES_USD)",
    }


CAUSE_CHARACTERS = 500


def _read_all(bucket: str, keys: list[str]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return list(pool.map(lambda key: store.get_json(bucket, key), keys))


def _read_results(bucket: str, prefix: str, batch_count: int) -> list[Any]:
    return _read_all(bucket, [store.result_key(prefix, index) for index in range(batch_count)])


def record_crash(batch: dict[str, Any], crash: dict[str, Any]) -> dict[str, Any]:
    """Keep why a batch's child failed (the Catch's Error and Cause) for the aggregation to name."""
    index = int(batch["index"])
    record = {
        "batch": index,
        "kind": batch.get("kind"),
        "entries": len(batch.get("entries") or []),
        "error": str(crash.get("Error") or "unknown"),
        "cause": str(crash.get("Cause") or "")[:CAUSE_CHARACTERS],
        "recorded_at": clock.isoformat(clock.now()),
    }
    store.put_json(batch["work_bucket"], store.crash_key(batch["results_prefix"], index), record)
    return record


def _why_missing(bucket: str, prefix: str, missing: list[int]) -> tuple[list[dict[str, Any]], str]:
    """The crash records of the batches without a result, and a sentence naming their errors."""
    crashes = _read_all(bucket, [store.crash_key(prefix, index) for index in missing])
    records: list[dict[str, Any]] = [c if c is not None else {"batch": i, "error": None} for i, c in zip(missing, crashes, strict=True)]
    # The records of each error, in batch order: the first one's cause stands for them all.
    by_error: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_error.setdefault(str(record["error"] or "no crash record (the child's catcher failed too)"), []).append(record)
    parts = []
    for error, group in by_error.items():
        batches = [int(r["batch"]) for r in group]
        cause = f": {group[0]['cause']}" if group[0].get("cause") else ""
        parts.append(f"{error} in batch{'es' if len(batches) > 1 else ''} {batches[:10]}{cause}")
    return records, "; ".join(parts)


def aggregate(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    bucket, prefix, batch_count = plan["work_bucket"], plan["results_prefix"], int(plan["batch_count"])
    results = _read_results(bucket, prefix, batch_count)
    counts = {APPLIED: 0, SKIPPED: 0, FAILED: 0}
    failed: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    missing: list[int] = []
    copied_bytes = 0
    per_action: dict[str, dict[str, int]] = {}
    for index, result in enumerate(results):
        if result is None:
            missing.append(index)
            continue
        for outcome in result["outcomes"]:
            counts[outcome["outcome"]] += 1
            per_action.setdefault(outcome["action"], {APPLIED: 0, SKIPPED: 0, FAILED: 0})[outcome["outcome"]] += 1
            copied_bytes += int(outcome.get("bytes") or 0) if outcome["outcome"] == APPLIED else 0
            if outcome["outcome"] == FAILED:
                failed.append({"key": outcome["key"], "action": outcome["action"], "reason": outcome["reason"]})
            elif outcome["outcome"] == SKIPPED:
                skipped.append({"key": outcome["key"], "reason": outcome["reason"]})
    totals = plan["totals"]
    summary_key = f"{prefix}summary.json"
    now = clock.now()
    report = {
        "bucket": plan["bucket"],
        "prefix": plan["prefix"],
        "mode": plan["mode"],
        "planned": totals["entries"],
        "applied": counts[APPLIED],
        "skipped": counts[SKIPPED],
        "failed": counts[FAILED],
        "batches": batch_count,
        "batches_without_result": len(missing),
        "per_action": per_action,
        "bytes_copied": copied_bytes,
        "failed_sample": failed[:SAMPLE],
        "skipped_sample": skipped[:SAMPLE],
        "created_after_sample": plan.get("created_after_sample", []),
        "plan_location": plan["plan_location"],
        "results_location": f"s3://{bucket}/{summary_key}",
        "started_at": plan["started_at"],
        "finished_at": clock.isoformat(now),
        "duration_seconds": round((now - clock.parse_utc(plan["started_at"])).total_seconds()),
        "cost_estimate": estimate_cost(
            pages=totals["pages"],
            copies=totals["actions"]["copy"],
            multipart_parts=totals["multipart_parts"],
            undelete_markers=totals["markers_to_remove"],
            hides=totals["actions"]["hide"],
            entries=totals["entries"],
            batches=batch_count,
            plan_invocations=int(plan.get("invocations") or 1),
        ),
    }
    crashes, why = _why_missing(bucket, prefix, missing) if missing else ([], "")
    store.put_json(
        bucket,
        summary_key,
        {**report, "failed_keys": failed, "skipped_keys": skipped, "batches_missing": missing, "batch_crashes": crashes},
    )
    missing_entries = 0
    if missing:
        missing_entries = _entries_in(bucket, plan["plan_key"], missing)
    unrestored = counts[FAILED] + missing_entries
    if unrestored > settings.recordings_tolerated_failures or missing:
        sample = ", ".join(f"{f['key']} ({f['reason']})" for f in failed[:5]) or "none recorded"
        gaps = f"; batches {missing[:10]} left no result ({missing_entries} entries; their child failed: {why})" if missing else ""
        raise RecordingsRestoreIncomplete(
            f"{unrestored} of {totals['entries']} planned recording changes were not made (tolerated: "
            f"{settings.recordings_tolerated_failures}); {counts[APPLIED]} applied, {counts[SKIPPED]} already done. "
            f"Failed: {sample}{gaps}. Full list: s3://{bucket}/{summary_key}. Fix the cause and start the same request "
            "again: what is already restored is skipped."
        )
    return report


def _entries_in(bucket: str, plan_key: str, batches: list[int]) -> int:
    plan = store.get_json(bucket, plan_key) or []
    return sum(len(plan[index]["entries"]) for index in batches if index < len(plan))


def describe_failure(failure: dict[str, Any] | None, plan: dict[str, Any] | None, applying: bool) -> dict[str, Any]:
    """The original error and cause, and what the failed execution left in the buckets."""
    from restore_runbook.common import failure as failures

    # A Map that fails (its ItemReader, say) fails with a States.* name, which a Fail state may not re-raise.
    error, cause = failures.outcome_of(failure)
    if not plan:
        left = "nothing: the restore failed before its plan was written; no recording was changed"
    elif not applying or plan.get("dry_run"):
        left = f"nothing changed in the recordings bucket; the plan is at {plan.get('plan_location')}"
    else:
        left = (
            f"some recordings of the plan {plan.get('plan_location')} may be restored (each batch's outcome is under "
            f"s3://{plan.get('work_bucket')}/{plan.get('results_prefix')}); no version was deleted. Starting the same "
            "request again finishes the rest and skips what is done"
        )
    return {"error": error, "cause": cause, "cleanup": left}
