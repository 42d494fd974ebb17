"""Applying a batch: copies keep what S3 would drop, undelete deletes only markers, nothing is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from restore_runbook.recordings import apply
from restorectl.emulated_recordings import create_versioned_bucket

pytestmark = pytest.mark.unit

BUCKET, WORK = "irisx-recordings", "irisx-restore-work"
ODD_KEYS = ["recordings/7/call with space.wav", "recordings/7/caf\u00e9+r\u00e9sum\u00e9.wav", "recordings/7/a+b=c?.wav"]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        create_versioned_bucket(client, BUCKET)
        client.create_bucket(Bucket=WORK)
        yield client


def all_versions(client: Any, key: str) -> tuple[list[str], list[str]]:
    page = client.list_object_versions(Bucket=BUCKET, Prefix=key)
    return (
        [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key],
        [m["VersionId"] for m in page.get("DeleteMarkers", []) if m["Key"] == key],
    )


def batch(entries: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    return {"entries": entries, "index": index, "bucket": BUCKET, "work_bucket": WORK, "results_prefix": "results/run-1/"}


def test_a_copy_keeps_storage_class_metadata_content_type_tags_and_encryption(s3: Any) -> None:
    # Given a recording in STANDARD_IA, KMS-encrypted, with metadata and tags, then overwritten plainly
    kms = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    old = s3.put_object(
        Bucket=BUCKET,
        Key="recordings/1/1.wav",
        Body=b"RIFF-original",
        StorageClass="STANDARD_IA",
        ContentType="audio/wav",
        Metadata={"call-id": "1"},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms,
        Tagging="tenant=1",
    )["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/1/1.wav", Body=b"bad deploy")

    # When the batch copies the old version back
    counts = apply.apply_batch(batch([{"key": "recordings/1/1.wav", "action": "copy", "version_id": old}]), apply.CHANGING)

    # Then it is the current version again, with everything S3's defaults would have dropped
    assert counts == {"batch": 0, "applied": 1, "skipped": 0, "failed": 0}
    head = s3.head_object(Bucket=BUCKET, Key="recordings/1/1.wav")
    assert s3.get_object(Bucket=BUCKET, Key="recordings/1/1.wav")["Body"].read() == b"RIFF-original"
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["ContentType"] == "audio/wav" and head["Metadata"] == {"call-id": "1"}
    assert head["ServerSideEncryption"] == "aws:kms" and kms in head["SSEKMSKeyId"]
    assert s3.get_object_tagging(Bucket=BUCKET, Key="recordings/1/1.wav")["TagSet"] == [{"Key": "tenant", "Value": "1"}]
    # And nothing was deleted: three versions, the bad one still among them
    assert len(all_versions(s3, "recordings/1/1.wav")[0]) == 3


def test_keys_with_spaces_plus_and_unicode_are_sent_url_encoded_and_restored(s3: Any) -> None:
    sent: list[str] = []
    s3.meta.events.register("before-send.s3.CopyObject", lambda request, **_: sent.append(request.headers["x-amz-copy-source"]))
    old = {key: s3.put_object(Bucket=BUCKET, Key=key, Body=f"old {key}".encode())["VersionId"] for key in ODD_KEYS}
    for key in ODD_KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"bad")

    counts = apply.apply_batch(batch([{"key": key, "action": "copy", "version_id": old[key]} for key in ODD_KEYS]), apply.CHANGING, s3=s3)

    assert counts["applied"] == 3
    for key in ODD_KEYS:
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == f"old {key}".encode()
    header = sent[0].decode() if isinstance(sent[0], bytes) else sent[0]
    assert header == f"{BUCKET}/recordings/7/call%20with%20space.wav?versionId={old[ODD_KEYS[0]]}"
    second = sent[1].decode() if isinstance(sent[1], bytes) else sent[1]
    assert "caf%C3%A9%2Br%C3%A9sum%C3%A9.wav" in second and " " not in second and "+" not in second.split("?")[0]


class SixGigabytes:
    """The real (moto) client, except that HEAD reports a 6 GB object: CopyObject would refuse it.
    With `every_head`, the current version's HEAD too (a restored 6 GB copy is 6 GB)."""

    def __init__(self, client: Any, *, every_head: bool = False) -> None:
        self._client = client
        self.every_head = every_head
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        head = self._client.head_object(**kwargs)
        if kwargs.get("VersionId") or self.every_head:
            head["ContentLength"] = 6 * 1024**3
        return head

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


def test_a_six_gigabyte_version_is_copied_in_multipart_upload_part_copy_parts(s3: Any, monkeypatch) -> None:
    # moto checks the 5 MiB minimum part size against the real (tiny) body; the size is stubbed, not the body
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 0)
    old = s3.put_object(
        Bucket=BUCKET,
        Key="recordings/2/big.wav",
        Body=b"RIFF-long-call",
        ContentType="audio/wav",
        Metadata={"call-id": "2"},
        StorageClass="STANDARD_IA",
        ServerSideEncryption="AES256",
    )["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"bad")
    stub = SixGigabytes(s3)

    outcome = apply.apply_entry(stub, BUCKET, {"key": "recordings/2/big.wav", "action": "copy", "version_id": old})

    names = [name for name, _ in stub.calls]
    assert outcome["outcome"] == "applied" and "multipart" in outcome["reason"] and outcome["bytes"] == 6 * 1024**3
    assert "copy_object" not in names
    parts = [kwargs for name, kwargs in stub.calls if name == "upload_part_copy"]
    assert len(parts) == 12  # 6 GiB in 512 MiB parts
    assert parts[0]["CopySourceRange"] == "bytes=0-536870911" and parts[-1]["CopySourceRange"].endswith(f"-{6 * 1024**3 - 1}")
    assert all(p["CopySource"] == {"Bucket": BUCKET, "Key": "recordings/2/big.wav", "VersionId": old} for p in parts)
    created = next(kwargs for name, kwargs in stub.calls if name == "create_multipart_upload")
    assert created["StorageClass"] == "STANDARD_IA" and created["ContentType"] == "audio/wav"
    # the source's metadata kept, and which version (and ETag) the copy is of, for a re-run to recognize it
    source_etag = s3.head_object(Bucket=BUCKET, Key="recordings/2/big.wav", VersionId=old)["ETag"].strip('"')
    assert created["Metadata"] == {"call-id": "2", "irisx-restored-from-version": old, "irisx-restored-from-etag": source_etag}
    assert created["ServerSideEncryption"] == "AES256"
    assert names[-1] == "complete_multipart_upload"
    assert s3.get_object(Bucket=BUCKET, Key="recordings/2/big.wav")["Body"].read() == b"RIFF-long-call"


def test_a_rerun_of_a_six_gigabyte_restore_recognizes_its_multipart_copy_and_copies_nothing(s3: Any, monkeypatch) -> None:
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 0)
    old = s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"RIFF-long-call", Metadata={"call-id": "2"})["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"bad")
    entry = {"key": "recordings/2/big.wav", "action": "copy", "version_id": old}
    first = apply.apply_entry(SixGigabytes(s3, every_head=True), BUCKET, entry)
    restored = s3.head_object(Bucket=BUCKET, Key="recordings/2/big.wav")
    assert first["outcome"] == "applied" and "multipart" in first["reason"]
    # A multipart copy's ETag is not its source's: ETag alone would copy it again.
    assert restored["ETag"] != s3.head_object(Bucket=BUCKET, Key="recordings/2/big.wav", VersionId=old)["ETag"]
    versions_before, _ = all_versions(s3, "recordings/2/big.wav")

    again = SixGigabytes(s3, every_head=True)
    second = apply.apply_entry(again, BUCKET, entry)

    assert second["outcome"] == "skipped" and f"multipart copy of version {old}" in second["reason"] and second["bytes"] == 0
    # Only HEADs (which the stub does not record): no upload, no copy, no tagging call.
    assert again.calls == []
    assert all_versions(s3, "recordings/2/big.wav")[0] == versions_before
    assert restored["Metadata"]["call-id"] == "2"


def test_a_multipart_copy_of_another_version_is_not_taken_for_the_one_to_restore(s3: Any, monkeypatch) -> None:
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 0)
    first = s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"RIFF-first-take")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"RIFF-second-tk")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/2/big.wav", Body=b"bad")
    apply.apply_entry(SixGigabytes(s3, every_head=True), BUCKET, {"key": "recordings/2/big.wav", "action": "copy", "version_id": first})

    outcome = apply.apply_entry(
        SixGigabytes(s3, every_head=True), BUCKET, {"key": "recordings/2/big.wav", "action": "copy", "version_id": second}
    )

    assert outcome["outcome"] == "applied" and "multipart" in outcome["reason"]
    assert s3.get_object(Bucket=BUCKET, Key="recordings/2/big.wav")["Body"].read() == b"RIFF-second-tk"


def test_part_ranges_stay_within_ten_thousand_parts() -> None:
    ranges = apply.part_ranges(50 * 1024**4)  # 50 TB, S3's largest object
    assert len(ranges) <= 10_000 and ranges[-1].endswith(f"-{50 * 1024**4 - 1}")


def test_undelete_deletes_only_the_marker_version(s3: Any) -> None:
    v1 = s3.put_object(Bucket=BUCKET, Key="recordings/3/3.wav", Body=b"kept")["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key="recordings/3/3.wav")["VersionId"]

    outcome = apply.apply_entry(s3, BUCKET, {"key": "recordings/3/3.wav", "action": "undelete", "markers": [marker], "restores": v1})

    assert outcome["outcome"] == "applied" and outcome["removed_markers"] == [marker]
    assert all_versions(s3, "recordings/3/3.wav") == ([v1], [])
    assert s3.get_object(Bucket=BUCKET, Key="recordings/3/3.wav")["Body"].read() == b"kept"
    # Run again: nothing more to do
    again = apply.apply_entry(s3, BUCKET, {"key": "recordings/3/3.wav", "action": "undelete", "markers": [marker], "restores": v1})
    assert again["outcome"] == "skipped"


def test_undelete_refuses_to_delete_a_version_that_is_not_a_marker(s3: Any) -> None:
    v1 = s3.put_object(Bucket=BUCKET, Key="recordings/3/4.wav", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=BUCKET, Key="recordings/3/4.wav", Body=b"two")["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key="recordings/3/4.wav")["VersionId"]

    # A corrupted plan names a recording's version among the markers of a deleted key
    entry = {"key": "recordings/3/4.wav", "action": "undelete", "markers": [marker, v2], "restores": v1}
    outcome = apply.apply_entry(s3, BUCKET, entry)

    assert outcome["outcome"] == "failed" and "UnsafeOperation" in outcome["reason"] and "not a delete marker" in outcome["reason"]
    assert sorted(all_versions(s3, "recordings/3/4.wav")[0]) == sorted([v1, v2])


def test_undelete_of_a_key_written_again_since_the_plan_removes_no_marker(s3: Any) -> None:
    # Given a key deleted when planned, then uploaded again before the apply
    v1 = s3.put_object(Bucket=BUCKET, Key="recordings/3/5.wav", Body=b"one")["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key="recordings/3/5.wav")["VersionId"]
    v2 = s3.put_object(Bucket=BUCKET, Key="recordings/3/5.wav", Body=b"new call")["VersionId"]

    outcome = apply.apply_entry(s3, BUCKET, {"key": "recordings/3/5.wav", "action": "undelete", "markers": [marker], "restores": v1})

    # Then nothing is deleted, the new upload stays current, and the outcome says why
    assert outcome["outcome"] == "failed" and f"written again since the plan (now version {v2})" in outcome["reason"]
    assert sorted(all_versions(s3, "recordings/3/5.wav")[0]) == sorted([v1, v2])
    assert s3.get_object(Bucket=BUCKET, Key="recordings/3/5.wav")["Body"].read() == b"new call"


@pytest.mark.parametrize("since", ["uploaded", "deleted"])
def test_a_copy_over_a_key_changed_since_the_plan_is_refused_and_the_newer_recording_stays_current(s3: Any, since: str) -> None:
    # Given a plan made when v2 was current, to bring back v1
    key = f"recordings/3/changed-{since}.wav"
    v1 = s3.put_object(Bucket=BUCKET, Key=key, Body=b"good")["VersionId"]
    v2 = s3.put_object(Bucket=BUCKET, Key=key, Body=b"bad deploy")["VersionId"]
    entry = {"key": key, "action": "copy", "version_id": v1, "size": 4, "planned_current": v2}
    # And a new call recorded onto the key (or the key deleted) after the plan
    if since == "uploaded":
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"a new call")
    else:
        s3.delete_object(Bucket=BUCKET, Key=key)
    versions_before = all_versions(s3, key)

    outcome = apply.apply_entry(s3, BUCKET, entry)

    # Then nothing is copied over what was written since, and the outcome says what changed
    assert outcome["outcome"] == "failed" and "the key changed since the plan" in outcome["reason"]
    assert f"it was {v2}" in outcome["reason"]
    assert all_versions(s3, key) == versions_before

    # While the plan's own view still holds, the copy is made
    fresh = f"recordings/3/unchanged-{since}.wav"
    w1 = s3.put_object(Bucket=BUCKET, Key=fresh, Body=b"good")["VersionId"]
    w2 = s3.put_object(Bucket=BUCKET, Key=fresh, Body=b"bad deploy")["VersionId"]
    applied = apply.apply_entry(s3, BUCKET, {"key": fresh, "action": "copy", "version_id": w1, "size": 4, "planned_current": w2})
    assert applied["outcome"] == "applied"
    assert s3.get_object(Bucket=BUCKET, Key=fresh)["Body"].read() == b"good"


def test_hide_adds_a_marker_and_deletes_nothing(s3: Any) -> None:
    v1 = s3.put_object(Bucket=BUCKET, Key="recordings/4/new.wav", Body=b"created after")["VersionId"]
    outcome = apply.apply_entry(s3, BUCKET, {"key": "recordings/4/new.wav", "action": "hide", "version_id": v1})
    versions, markers = all_versions(s3, "recordings/4/new.wav")
    assert outcome["outcome"] == "applied" and versions == [v1] and len(markers) == 1
    assert apply.apply_entry(s3, BUCKET, {"key": "recordings/4/new.wav", "action": "hide", "version_id": v1})["outcome"] == "skipped"


def test_a_batch_records_every_outcome_and_raises_nothing_for_a_failing_entry(s3: Any) -> None:
    # Given a copy that will work, one already done, and a Glacier version that cannot be copied yet
    good = s3.put_object(Bucket=BUCKET, Key="recordings/5/a.wav", Body=b"a")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/5/a.wav", Body=b"bad")
    done = s3.put_object(Bucket=BUCKET, Key="recordings/5/b.wav", Body=b"b")["VersionId"]
    cold = s3.put_object(Bucket=BUCKET, Key="recordings/5/c.wav", Body=b"c", StorageClass="GLACIER")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="recordings/5/c.wav", Body=b"bad")
    entries = [
        {"key": "recordings/5/a.wav", "action": "copy", "version_id": good},
        {"key": "recordings/5/b.wav", "action": "copy", "version_id": done},
        {"key": "recordings/5/c.wav", "action": "copy", "version_id": cold},
        {"key": "recordings/5/gone.wav", "action": "copy", "version_id": "no-such-version"},
    ]

    counts = apply.apply_batch(batch(entries, index=3), apply.CHANGING)

    assert counts == {"batch": 3, "applied": 1, "skipped": 1, "failed": 2}
    result = json.loads(s3.get_object(Bucket=WORK, Key="results/run-1/000003.json")["Body"].read())
    by_key = {o["key"]: o for o in result["outcomes"]}
    assert by_key["recordings/5/c.wav"]["outcome"] == "failed" and "GLACIER" in by_key["recordings/5/c.wav"]["reason"]
    assert by_key["recordings/5/gone.wav"]["outcome"] == "failed" and "no longer exists" in by_key["recordings/5/gone.wav"]["reason"]
    assert by_key["recordings/5/b.wav"]["outcome"] == "skipped"


def test_a_change_batch_refuses_an_undelete_and_deletes_nothing(s3: Any) -> None:
    v1 = s3.put_object(Bucket=BUCKET, Key="recordings/6/6.wav", Body=b"six")["VersionId"]
    marker = s3.delete_object(Bucket=BUCKET, Key="recordings/6/6.wav")["VersionId"]
    entry = {"key": "recordings/6/6.wav", "action": "undelete", "markers": [marker], "restores": v1}

    counts = apply.apply_batch(batch([entry]), apply.CHANGING)

    assert counts["failed"] == 1 and all_versions(s3, "recordings/6/6.wav") == ([v1], [marker])
