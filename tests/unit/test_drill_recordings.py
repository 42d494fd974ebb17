"""The drill's recordings check at the function level: which keys qualify, what a mismatch raises, and
that the scratch copies go in every outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from restore_runbook.common.errors import InvalidInput, RecordingsCheckFailed, TeardownFailed
from restore_runbook.drill import recordings
from restore_runbook.settings import RunbookSettings
from restorectl.emulated_recordings import create_versioned_bucket

pytestmark = pytest.mark.unit

BUCKET, WORK = "irisx-recordings", "irisx-restore-work"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-drill:monthly-1"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        create_versioned_bucket(client, BUCKET)
        client.create_bucket(Bucket=WORK)
        yield client


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env(
        {
            "SOURCE_INSTANCE": "irisx-prod-rds-postgres",
            "RECORDINGS_WORK_BUCKET": WORK,
            "RECORDINGS_BUCKETS": f'["{BUCKET}"]',
            **overrides,
        }
    )


def scratch(client: Any) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=WORK).get("Contents") or []]


def test_only_keys_with_an_older_readable_version_qualify_and_the_newest_older_version_is_the_one(s3: Any) -> None:
    first = s3.put_object(Bucket=BUCKET, Key="recordings/1/overwritten.wav", Body=b"v1")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="recordings/1/overwritten.wav", Body=b"v2")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/1/overwritten.wav", Body=b"v3")
    s3.put_object(Bucket=BUCKET, Key="recordings/1/once.wav", Body=b"v1")
    # One version and a delete marker: nothing older to restore from but the only version.
    s3.put_object(Bucket=BUCKET, Key="recordings/1/deleted.wav", Body=b"v1")
    s3.delete_object(Bucket=BUCKET, Key="recordings/1/deleted.wav")
    s3.put_object(Bucket=BUCKET, Key="recordings/1/archived.wav", Body=b"v1", StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="recordings/1/archived.wav", Body=b"v2")

    found = recordings.candidates(s3, BUCKET, page_size=2)

    assert found["candidates"] == [{"key": "recordings/1/overwritten.wav", "version_id": second, "bytes": 2}]
    assert found["candidates"][0]["version_id"] != first
    assert found["skipped_archived"] == 1
    assert found["versions_scanned"] == 8


def test_a_check_that_matches_reports_per_bucket_and_leaves_nothing_in_the_scratch_prefix(s3: Any) -> None:
    for key in ("a", "b", "c", "d"):
        s3.put_object(Bucket=BUCKET, Key=f"recordings/2/{key}.wav", Body=f"old {key}".encode())
        s3.put_object(Bucket=BUCKET, Key=f"recordings/2/{key}.wav", Body=f"new {key}".encode())

    checked = recordings.check_recordings(EXECUTION, settings(DRILL_RECORDINGS_KEYS="3"), s3)

    assert (checked["verdict"], checked["keys_checked"], checked["matched"], checked["bytes"]) == ("met", 3, 3, 15)
    (bucket,) = checked["buckets"]
    assert bucket["candidates"] == 4 and all(k["sha256"] == k["copy_sha256"] for k in bucket["keys"])
    assert checked["scratch"] == f"s3://{WORK}/drill-scratch/monthly-1/" and checked["scratch_removed"] == 3
    assert scratch(s3) == []
    # A retried invocation picks the same keys (seeded by the execution).
    again = recordings.check_recordings(EXECUTION, settings(DRILL_RECORDINGS_KEYS="3"), s3)
    assert [k["key"] for k in again["buckets"][0]["keys"]] == [k["key"] for k in bucket["keys"]]


def test_a_version_that_cannot_be_copied_raises_a_named_error_after_removing_the_copies(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="recordings/3/a.wav", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="recordings/3/a.wav", Body=b"new")
    s3.put_object(Bucket=BUCKET, Key="recordings/3/b.wav", Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="recordings/3/b.wav", Body=b"new")
    real_copy = s3.copy_object

    def copy_then_fail(**kwargs: Any) -> Any:
        real_copy(**kwargs)
        if kwargs["CopySource"]["Key"] == "recordings/3/b.wav":
            raise RuntimeError("connection reset while copying")
        return {}

    with mock.patch.object(s3, "copy_object", copy_then_fail), pytest.raises(RecordingsCheckFailed) as raised:
        recordings.check_recordings(EXECUTION, settings(), s3)

    assert "FAILED in irisx-recordings: 1/2 matched, 0 mismatched, 1 could not be copied" in str(raised.value)
    assert "recordings/3/b.wav" in str(raised.value) and "connection reset" in str(raised.value)
    assert raised.value.report and raised.value.report["buckets"][0]["failed"] == [{"key": "recordings/3/b.wav", "status": "unrestorable"}]
    assert scratch(s3) == []


def test_nothing_to_check_is_not_a_pass_and_zero_keys_turns_the_check_off(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="recordings/4/once.wav", Body=b"v1")

    quiet = recordings.check_recordings(EXECUTION, settings(), s3)
    off = recordings.check_recordings(EXECUTION, settings(DRILL_RECORDINGS_KEYS="0"), s3)

    assert (quiet["verdict"], quiet["buckets"][0]["status"]) == ("nothing to check", "nothing to check")
    assert quiet["summary"] == "recordings: nothing to check in irisx-recordings (no key with an older version among 1 listed)"
    assert off["verdict"] == "not checked"


def test_the_scratch_removal_deletes_what_a_cut_off_check_left_and_fails_by_name_when_it_cannot(s3: Any) -> None:
    s3.put_object(Bucket=WORK, Key="drill-scratch/monthly-1/irisx-recordings/recordings/5/a.wav", Body=b"copy")
    s3.put_object(Bucket=WORK, Key="drill-scratch/other-run/irisx-recordings/recordings/5/a.wav", Body=b"another drill's")

    removed = recordings.remove_scratch(EXECUTION, settings(), s3)

    assert removed["removed"] == 1 and removed["detail"].startswith("removed 1 scratch copies left under")
    assert scratch(s3) == ["drill-scratch/other-run/irisx-recordings/recordings/5/a.wav"]
    assert recordings.remove_scratch(EXECUTION, settings(), s3)["detail"] == "no scratch copy was left"
    s3.put_object(Bucket=WORK, Key="drill-scratch/monthly-1/x.wav", Body=b"copy")
    with (
        mock.patch.object(s3, "delete_object", side_effect=RuntimeError("AccessDenied")),
        pytest.raises(TeardownFailed, match="stay under"),
    ):
        recordings.remove_scratch(EXECUTION, settings(), s3)


def test_more_keys_than_one_function_can_check_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="DRILL_RECORDINGS_KEYS=21"):
        settings(DRILL_RECORDINGS_KEYS="21")
