"""The drill's recordings check end to end: the real drill ASL, the real handlers, both versioned
recordings buckets and the work bucket in moto, seeded with 30 days of overwrites and deletes.

Faults S3 could produce are injected into moto itself (a copy that reads back other bytes, deletes
that fail), never into the project's code.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest

from restorectl import drills
from restorectl.emulated_recordings import BUCKETS
from tests.workflow.conftest import SOURCE, instance_ids

pytestmark = pytest.mark.workflow

SCRATCH = "drill-scratch/"
BEFORE_WAIT = ["StartRestore", "CheckRecordings", "RemoveRecordingsScratch", "WaitForRestore"]


def drill_record(result: Any) -> dict[str, Any]:
    (record,) = [r for r in result.world["journal"] if r["pk"] == "WORKFLOW#drill"]
    return record


def report_of(result: Any) -> dict[str, Any]:
    return drills.report(result.world["journal"], now=datetime(2025, 11, 3, tzinfo=timezone.utc))


def after(states: list[str], first: str, length: int) -> list[str]:
    return states[states.index(first) :][:length]


@contextlib.contextmanager
def copies_read_back_corrupted(key_part: str) -> Iterator[list[str]]:
    """S3 answers a copy to the scratch prefix of a key containing `key_part` with other bytes than the version's."""
    from moto.s3.models import S3Backend

    original = S3Backend.copy_object
    corrupted: list[str] = []

    def copy_object(self: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
        if dest_key_name.startswith(SCRATCH) and key_part in dest_key_name:
            stored = self.get_object(dest_bucket_name, dest_key_name)
            stored.value = stored.value[:-1] + bytes([stored.value[-1] ^ 0xFF])
            corrupted.append(dest_key_name)
        return answer

    with mock.patch.object(S3Backend, "copy_object", copy_object):
        yield corrupted


def scratch_deletes_fail_during(world: Any, state: str) -> list[str]:
    """While Task `state` runs, S3 refuses every delete under the scratch prefix (an outage mid-check)."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    refused: list[str] = []
    original_delete = S3Backend.delete_object
    answer = world.bridge.answer

    def refusing(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if key_name.startswith(SCRATCH):
            refused.append(key_name)
            raise S3ClientError("InternalError", "We encountered an internal error. Please try again.")
        return original_delete(self, bucket_name, key_name, *args, **kwargs)

    def answering(function_name: str, body: Any, headers: Any) -> bytes:
        if json.loads(body or "{}").get("context", {}).get("state") == state:
            with mock.patch.object(S3Backend, "delete_object", refusing):
                return answer(function_name, body, headers)
        return answer(function_name, body, headers)

    world.bridge.answer = answering  # type: ignore[method-assign]
    return refused


def test_a_drill_proves_an_older_version_of_three_recordings_per_bucket_restorable_and_leaves_no_copy(rehearsal):
    world = rehearsal()

    result = world.run("drill", {"requested_by": "make rehearse"})

    assert result.status == "SUCCEEDED", result.cause
    # Checked while RDS restores: the copy's lifetime and the RTO do not wait for it.
    assert after(result.states(), "StartRestore", 4) == BEFORE_WAIT
    recordings = result.output["recordings"]
    assert (recordings["verdict"], recordings["keys_checked"], recordings["matched"], recordings["mismatched"]) == ("met", 6, 6, 0)
    assert [b["bucket"] for b in recordings["buckets"]] == list(BUCKETS)
    for checked in recordings["buckets"]:
        assert (checked["status"], checked["keys_checked"], checked["matched"]) == ("met", 3, 3)
        assert checked["bytes"] == sum(k["bytes"] for k in checked["keys"]) > 0
        assert checked["duration_seconds"] >= 0
        state = world.recordings.state(checked["bucket"])
        for key in checked["keys"]:
            # An OLDER version: the key has more than one, and the one copied is not the current one.
            assert len(state[key["key"]]["versions"]) > 1 and key["version_id"] != state[key["key"]]["current"]
            assert key["status"] == "matched" and key["sha256"] == key["copy_sha256"] and key["method"] == "CopyObject"
    assert recordings["scratch_removed"] == 6 and recordings["scratch_cleanup"] == "no scratch copy was left"
    assert result.world["drill_scratch"] == []
    # The record holds it (as a phase too), and the report shows it beside RTO and RPO.
    record = drill_record(result)
    assert record["result"]["recordings"]["matched"] == 6
    assert "recordings" in [p["phase"] for p in record["phases"]]
    assert "recordings: 3/3 matched in irisx-prod-recordings-672e7c49" in result.output["summary"]
    rep = report_of(result)
    (row,) = rep["drills"]
    assert row["recordings"] == "6/6 matched (744 B)" and row["recordings_verdict"] == "met"
    text = drills.text(rep)
    assert "RECORDINGS" in text.splitlines()[0] and "6/6 matched" in text
    assert "3/3 matched in irisx-recordings" in drills.runbook_block(rep)
    # Nothing in the recordings buckets changed: the copies went to the work bucket only.
    assert result.world["recordings"] == world.recordings.report()["recordings"]
    assert instance_ids(result.world) == [SOURCE]


def test_a_copy_that_reads_back_other_bytes_fails_the_drill_by_name_after_the_database_teardown(rehearsal):
    world = rehearsal()

    with copies_read_back_corrupted("irisx-recordings/") as corrupted:
        result = world.run("drill", {})

    assert corrupted, "the check copied nothing from irisx-recordings"
    assert (result.status, result.error) == ("FAILED", "RecordingsCheckFailed"), result.cause
    states = result.states()
    # The failed check's Catch still removes the scratch, the database drill goes on and tears its copy down.
    assert after(states, "StartRestore", 4) == BEFORE_WAIT
    assert ["TearDown", "IsTornDown"] == after(states, "TearDown", 2)
    assert states.index("TearDown") < states.index("AfterTeardown") < states.index("ExplainFailure") < states.index("RecordFailure")
    assert "MeasureDrill" not in states
    assert instance_ids(result.world) == [SOURCE]
    assert result.world["drill_scratch"] == []
    assert "FAILED in irisx-recordings: 0/3 matched, 3 mismatched" in result.cause and " deleted]" in result.cause
    record = drill_record(result)
    assert (record["outcome"], record["error"]) == ("FAILED", "RecordingsCheckFailed")
    checked = {b["bucket"]: b for b in record["result"]["recordings"]["buckets"]}
    assert checked["irisx-recordings"]["mismatched"] == 3 and checked["irisx-prod-recordings-672e7c49"]["matched"] == 3
    assert record["result"]["recordings"]["verdict"] == "failed" and record["result"]["torn_down"] is True
    assert record["failure_report"]["mismatched"] == 3
    (row,) = report_of(result)["drills"]
    assert row["recordings"] == "FAILED 3/6 matched" and row["verdict"] == "failed"
    assert row["what_failed"].startswith("RecordingsCheckFailed: ")


def test_a_check_cut_off_after_its_deletes_failed_leaves_copies_that_the_next_state_removes_and_the_drill_fails(rehearsal):
    world = rehearsal(inject=["CheckRecordings=Sandbox.Timedout@after"])
    refused = scratch_deletes_fail_during(world, "CheckRecordings")

    result = world.run("drill", {})

    assert len(refused) == 6  # the check's own removal of its six copies failed
    assert (result.status, result.error) == ("FAILED", "Sandbox.Timedout"), result.cause
    assert after(result.states(), "StartRestore", 4) == BEFORE_WAIT
    assert result.world["drill_scratch"] == []
    assert instance_ids(result.world) == [SOURCE]
    record = drill_record(result)
    assert record["result"]["recordings"]["verdict"] == "failed"
    assert record["result"]["recordings"]["scratch_cleanup"].startswith("removed 6 scratch copies left under s3://")
    assert "recordings scratch: removed 6 scratch copies" in result.cause


def test_a_scratch_removal_that_fails_is_named_and_the_database_copy_is_still_torn_down(rehearsal):
    world = rehearsal(inject=["RemoveRecordingsScratch=TeardownFailed"])

    result = world.run("drill", {})

    assert (result.status, result.error) == ("FAILED", "TeardownFailed"), result.cause
    states = result.states()
    assert after(states, "RemoveRecordingsScratch", 2) == ["RemoveRecordingsScratch", "WaitForRestore"]
    assert states.index("TearDown") < states.index("ExplainFailure")
    assert instance_ids(result.world) == [SOURCE]
    # The check removed its own copies; only the second removal failed, and the record says so.
    assert result.world["drill_scratch"] == []
    record = drill_record(result)
    assert record["result"]["recordings"]["verdict"] == "met"
    assert record["result"]["recordings"]["scratch_cleanup"].startswith("FAILED (TeardownFailed")


def test_buckets_without_a_key_that_has_an_older_version_are_reported_as_nothing_to_check_not_as_passed(rehearsal):
    # One recording per bucket, never overwritten (the seeded history's "untouched" pattern).
    world = rehearsal(recordings=1)

    result = world.run("drill", {})

    assert result.status == "SUCCEEDED", result.cause
    recordings = result.output["recordings"]
    assert (recordings["verdict"], recordings["keys_checked"]) == ("nothing to check", 0)
    assert {b["status"] for b in recordings["buckets"]} == {"nothing to check"}
    assert "nothing to check in irisx-recordings" in recordings["summary"]
    (row,) = report_of(result)["drills"]
    assert row["recordings"] == "nothing to check in irisx-prod-recordings-672e7c49, irisx-recordings"
    assert row["recordings_verdict"] != "met"
    assert result.world["drill_scratch"] == []


def test_a_drill_with_the_recordings_check_turned_off_says_so(rehearsal):
    world = rehearsal(settings_overrides={"DRILL_RECORDINGS_KEYS": "0"})

    result = world.run("drill", {})

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["recordings"]["verdict"] == "not checked"
    assert "drill_recordings_keys is 0" in result.output["summary"]
    (row,) = report_of(result)["drills"]
    assert row["recordings"] == "not checked"
