"""Aggregation after the Map: every batch's result is read; failures and silent gaps end in a named error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restore_runbook.common.errors import RecordingsRestoreIncomplete
from restore_runbook.recordings import report
from restore_runbook.recordings.plan import empty_totals
from restore_runbook.settings import RunbookSettings

pytestmark = pytest.mark.unit

WORK = "irisx-restore-work"


def settings(tolerated: int = 0) -> RunbookSettings:
    return RunbookSettings.from_env(
        {"SOURCE_INSTANCE": "irisx-prod-rds-postgres", "RECORDINGS_WORK_BUCKET": WORK, "RECORDINGS_TOLERATED_FAILURES": str(tolerated)}
    )


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=WORK)
        yield client


def write_plan(s3: Any, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    items = [{"kind": "change", "entries": entries} for entries in batches]
    s3.put_object(Bucket=WORK, Key="plans/run-1/batches.json", Body=json.dumps(items).encode())
    totals = empty_totals()
    totals.update(entries=sum(len(b) for b in batches), pages=1)
    totals["actions"]["copy"] = totals["entries"]
    return {
        "mode": "as-of",
        "bucket": "irisx-recordings",
        "prefix": "recordings/",
        "work_bucket": WORK,
        "plan_key": "plans/run-1/batches.json",
        "plan_location": f"s3://{WORK}/plans/run-1/batches.json",
        "results_prefix": "results/run-1/",
        "batch_count": len(batches),
        "totals": totals,
        "started_at": "2025-11-02T12:00:00Z",
        "invocations": 1,
    }


def write_result(s3: Any, index: int, outcomes: list[dict[str, Any]]) -> None:
    s3.put_object(Bucket=WORK, Key=f"results/run-1/{index:06d}.json", Body=json.dumps({"batch": index, "outcomes": outcomes}).encode())


def outcome(key: str, result: str, reason: str = "", size: int = 0) -> dict[str, Any]:
    return {"key": key, "action": "copy", "outcome": result, "reason": reason, "bytes": size}


def test_every_batch_is_counted_and_the_summary_holds_the_full_lists(s3: Any, monkeypatch) -> None:
    monkeypatch.setattr("restore_runbook.common.clock.now", lambda: datetime(2025, 11, 2, 12, 5, tzinfo=timezone.utc))
    plan = write_plan(s3, [[{"key": "a"}, {"key": "b"}], [{"key": "c"}]])
    write_result(s3, 0, [outcome("a", "applied", size=100), outcome("b", "skipped", "already")])
    write_result(s3, 1, [outcome("c", "applied", size=50)])

    result = report.aggregate(plan, settings())

    assert (result["planned"], result["applied"], result["skipped"], result["failed"]) == (3, 2, 1, 0)
    assert result["bytes_copied"] == 150 and result["duration_seconds"] == 300
    assert result["cost_estimate"]["usd_total"] > 0 and result["cost_estimate"]["state_transitions"] > 0
    summary = json.loads(s3.get_object(Bucket=WORK, Key="results/run-1/summary.json")["Body"].read())
    assert summary["skipped_keys"] == [{"key": "b", "reason": "already"}]


def test_failed_entries_fail_the_execution_with_the_keys_named(s3: Any) -> None:
    plan = write_plan(s3, [[{"key": "a"}, {"key": "b"}]])
    write_result(s3, 0, [outcome("a", "applied"), outcome("b", "failed", "AccessDenied: no")])

    with pytest.raises(RecordingsRestoreIncomplete, match=r"1 of 2 planned .* b \(AccessDenied: no\).*summary.json"):
        report.aggregate(plan, settings())
    # The summary is written before the error: the full list survives the failure
    summary = json.loads(s3.get_object(Bucket=WORK, Key="results/run-1/summary.json")["Body"].read())
    assert summary["failed_keys"] == [{"key": "b", "action": "copy", "reason": "AccessDenied: no"}]


def test_failures_within_the_tolerance_are_reported_not_fatal(s3: Any) -> None:
    plan = write_plan(s3, [[{"key": "a"}, {"key": "b"}]])
    write_result(s3, 0, [outcome("a", "applied"), outcome("b", "failed", "SlowDown")])
    result = report.aggregate(plan, settings(tolerated=1))
    assert result["failed"] == 1 and result["failed_sample"][0]["key"] == "b"


def test_a_batch_that_left_no_result_file_fails_the_execution_even_within_tolerance(s3: Any) -> None:
    # Given three batches, the middle one's child crashed (moto would swallow it; AWS may tolerate it)
    plan = write_plan(s3, [[{"key": "a"}], [{"key": "b"}, {"key": "c"}], [{"key": "d"}]])
    write_result(s3, 0, [outcome("a", "applied")])
    write_result(s3, 2, [outcome("d", "applied")])

    with pytest.raises(RecordingsRestoreIncomplete, match=r"2 of 4 .*batches \[1\] left no result \(2 entries"):
        report.aggregate(plan, settings(tolerated=5))


def test_the_crash_records_of_batches_without_a_result_name_each_error_and_the_summary_keeps_them(s3: Any) -> None:
    # Given four batches: two children timed out, one crashed, one wrote its result; the crash records
    # are what each child's catcher (RecordBatchCrash) wrote
    plan = write_plan(s3, [[{"key": "a"}], [{"key": "b"}], [{"key": "c"}], [{"key": "d"}]])
    write_result(s3, 3, [outcome("d", "applied")])
    for index, error, cause in [
        (0, "States.Timeout", "ran past 330 s"),
        (1, "RuntimeError", "boom"),
        (2, "States.Timeout", "ran past 330 s"),
    ]:
        batch = {"index": index, "kind": "change", "entries": [{}], "work_bucket": WORK, "results_prefix": "results/run-1/"}
        report.record_crash(batch, {"Error": error, "Cause": cause})

    # When the results are aggregated
    with pytest.raises(RecordingsRestoreIncomplete) as caught:
        report.aggregate(plan, settings(tolerated=5))

    # Then the cause names each error with its batches and one cause, and the summary keeps the records
    expected = (
        "batches [0, 1, 2] left no result (3 entries; their child failed: "
        "States.Timeout in batches [0, 2]: ran past 330 s; RuntimeError in batch [1]: boom)"
    )
    assert expected in str(caught.value)
    summary = json.loads(s3.get_object(Bucket=WORK, Key="results/run-1/summary.json")["Body"].read())
    assert [(c["batch"], c["error"]) for c in summary["batch_crashes"]] == [
        (0, "States.Timeout"),
        (1, "RuntimeError"),
        (2, "States.Timeout"),
    ]


def test_a_batch_whose_result_was_written_before_its_child_failed_is_judged_by_its_result(s3: Any) -> None:
    # Given a batch that wrote its result and then lost its answer (its catcher recorded a crash too)
    plan = write_plan(s3, [[{"key": "a"}]])
    write_result(s3, 0, [outcome("a", "applied")])
    batch = {"index": 0, "kind": "change", "entries": [{}], "work_bucket": WORK, "results_prefix": "results/run-1/"}
    report.record_crash(batch, {"Error": "RuntimeError", "Cause": "answer lost"})

    # When aggregated, then the restore is complete: the result file says every entry was done
    done = report.aggregate(plan, settings())
    assert done["applied"] == 1 and done["batches_without_result"] == 0


def test_the_cost_of_a_million_copies_is_dominated_by_copy_requests() -> None:
    cost = report.estimate_cost(
        pages=2000, copies=1_000_000, multipart_parts=0, undelete_markers=0, hides=0, entries=1_000_000, batches=10_000, plan_invocations=10
    )
    assert cost["requests"]["put_copy_list"] > 1_000_000
    assert 5.0 < cost["usd"]["s3_requests"] < 6.5  # $0.005 per 1,000 COPY, plus HEADs
    assert cost["lambda_invocations"] < 10_100 and cost["state_transitions"] < 25_000
