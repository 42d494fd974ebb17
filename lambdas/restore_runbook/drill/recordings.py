"""The drill proves call recordings restorable too: per configured recordings bucket, a few keys with
an older version get that version copied to the work bucket's scratch prefix by recordings-restore's
own copy code, read back, and compared with the version; then every scratch copy is removed.

The comparison is a SHA-256 of the two bodies as S3 returns them (the version, read by version id,
and the copy, read back), with their lengths. An ETag would be cheaper but says nothing here: it is
an MD5 of the content only for a single-part object without SSE-KMS, a multipart copy gets a new
ETag by design, and an ETag equal by copy would not show that the bytes can actually be read back,
which is what a restore needs. The price is reading each checked version twice, so the keys are few
and versions above MAX_CHECK_BYTES are not picked.

A key qualifies when the bucket holds at least two real versions of it (delete markers do not
count) and its newest non-current version is in a storage class a copy can read (Glacier Flexible
Retrieval and Deep Archive need a restore-object first, which a drill does not wait for). The scan
is bounded (SCAN_PAGES pages of ListObjectVersions from the start of the bucket), so in a bucket of
millions the picks come from its first keys in S3's order. A bucket with no such key is reported as
"nothing to check", never as a pass.

The scratch copies are removed in a `finally` here, and once more by the next state
(`RemoveRecordingsScratch`, its own function) for a check that was cut off mid-way; a lifecycle rule
on the prefix expires anything both missed.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import InvalidInput, RecordingsCheckFailed, TeardownFailed
from restore_runbook.contract import DRILL_SCRATCH_PREFIX
from restore_runbook.recordings import apply, store
from restore_runbook.recordings.plan import NEEDS_RETRIEVAL
from restore_runbook.settings import RunbookSettings

SCAN_PAGES = 10
PAGE_SIZE = 1000
MAX_CHECK_BYTES = 256 * 1024**2
READ_CHUNK = 1024**2

MATCHED, MISMATCHED, UNRESTORABLE = "matched", "mismatched", "unrestorable"
# Per bucket and for the whole check.
MET, FAILED, NOTHING_TO_CHECK, NOT_CHECKED = "met", "failed", "nothing to check", "not checked"


def scratch_prefix(execution_arn: str) -> str:
    return f"{DRILL_SCRATCH_PREFIX}{store.execution_name(execution_arn)}/"


def work_bucket_of(settings: RunbookSettings) -> str:
    if not settings.recordings_work_bucket:
        raise InvalidInput("RECORDINGS_WORK_BUCKET is not set: the stack tells the drill's recordings steps the work bucket's name")
    return settings.recordings_work_bucket


def candidates(s3: Any, bucket: str, *, pages: int = SCAN_PAGES, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Keys with two or more versions in the first `pages` pages, each with its newest non-current version."""
    versions: dict[str, list[dict[str, Any]]] = {}
    marker: dict[str, str] = {}
    scanned = 0
    for _ in range(pages):
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=page_size, **marker)
        for version in page.get("Versions") or []:
            versions.setdefault(version["Key"], []).append(version)
        scanned += len(page.get("Versions") or []) + len(page.get("DeleteMarkers") or [])
        if not page.get("IsTruncated"):
            break
        marker = {
            "KeyMarker": page["NextKeyMarker"],
            **({"VersionIdMarker": page["NextVersionIdMarker"]} if page.get("NextVersionIdMarker") else {}),
        }
    picked, archived, too_large = [], 0, 0
    for key, listed in versions.items():
        if len(listed) < 2:
            continue
        # S3 lists a key's versions newest first; the first non-current one is what a restore would most likely want back.
        older = next((v for v in listed if not v.get("IsLatest")), None)
        if older is None:
            continue
        if str(older.get("StorageClass") or "STANDARD") in NEEDS_RETRIEVAL:
            archived += 1
        elif int(older.get("Size") or 0) > MAX_CHECK_BYTES:
            too_large += 1
        else:
            picked.append({"key": key, "version_id": older["VersionId"], "bytes": int(older.get("Size") or 0)})
    return {"versions_scanned": scanned, "candidates": picked, "skipped_archived": archived, "skipped_too_large": too_large}


def _sha256(body: Any) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    for chunk in iter(lambda: body.read(READ_CHUNK), b""):
        digest.update(chunk)
        length += len(chunk)
    return digest.hexdigest(), length


def check_key(s3: Any, bucket: str, work_bucket: str, prefix: str, candidate: dict[str, Any], written: list[str]) -> dict[str, Any]:
    """Copy one older version to the scratch prefix with the restore's own copy, read both back, compare."""
    key, version_id, size = candidate["key"], candidate["version_id"], candidate["bytes"]
    scratch_key = f"{prefix}{bucket}/{key}"
    checked: dict[str, Any] = {"key": key, "version_id": version_id, "bytes": size}
    # Before the copy: a copy that fails after writing must still be removed.
    written.append(scratch_key)
    try:
        copied = apply.copy_version(
            s3, bucket, {"key": key, "version_id": version_id, "target_bucket": work_bucket, "target_key": scratch_key}
        )
        if copied["outcome"] != apply.APPLIED:
            return {**checked, "status": UNRESTORABLE, "reason": copied["reason"]}
        source_sha, source_bytes = _sha256(s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"])
        copy_sha, copy_bytes = _sha256(s3.get_object(Bucket=work_bucket, Key=scratch_key)["Body"])
    except Exception as exc:  # noqa: BLE001 - one key's failure is that key's outcome; the check raises once, named
        return {**checked, "status": UNRESTORABLE, "reason": f"{aws.error_code(exc) or type(exc).__name__}: {exc}"}
    # copy_version says "copied version V as the current version (CopyObject)": the method is the part in brackets.
    checked.update(sha256=source_sha, copy_sha256=copy_sha, method=str(copied["reason"]).rsplit("(", 1)[-1].rstrip(")"))
    if copy_sha != source_sha or copy_bytes != source_bytes or source_bytes != size:
        return {
            **checked,
            "status": MISMATCHED,
            "reason": f"the copy read back {copy_bytes} bytes with SHA-256 {copy_sha[:16]}..., the version {source_bytes} bytes "
            f"with {source_sha[:16]}... (listed as {size} bytes)",
        }
    return {**checked, "status": MATCHED}


def check_bucket(
    s3: Any, bucket: str, work_bucket: str, prefix: str, wanted: int, rng: random.Random, written: list[str]
) -> dict[str, Any]:
    began = time.monotonic()
    try:
        found = candidates(s3, bucket)
    except Exception as exc:  # noqa: BLE001 - reported as this bucket's failure, raised once for the whole check
        reason = f"could not list its versions: {aws.error_code(exc) or type(exc).__name__}: {exc}"
        return {"bucket": bucket, "status": FAILED, "reason": reason, "keys_checked": 0, "matched": 0, "mismatched": 0,
                "unrestorable": 0, "bytes": 0, "duration_seconds": round(time.monotonic() - began, 3), "keys": []}  # fmt: skip
    pool = found.pop("candidates")
    picked = rng.sample(pool, min(wanted, len(pool)))
    keys = [check_key(s3, bucket, work_bucket, prefix, candidate, written) for candidate in picked]
    counts = {name: sum(1 for k in keys if k["status"] == name) for name in (MATCHED, MISMATCHED, UNRESTORABLE)}
    if not keys:
        status = NOTHING_TO_CHECK
    elif counts[MATCHED] == len(keys):
        status = MET
    else:
        status = FAILED
    return {
        "bucket": bucket,
        "status": status,
        "keys_checked": len(keys),
        **counts,
        # What was copied and compared (a version that could not be copied adds nothing).
        "bytes": sum(k["bytes"] for k in keys if k["status"] != UNRESTORABLE),
        "duration_seconds": round(time.monotonic() - began, 3),
        "candidates": len(pool),
        **found,
        "keys": keys,
    }


def remove_keys(s3: Any, work_bucket: str, keys: list[str]) -> list[str]:
    """Delete each scratch key (the work bucket is unversioned: a delete removes it); the keys that stayed."""
    left = []
    for key in keys:
        try:
            s3.delete_object(Bucket=work_bucket, Key=key)
        except Exception:  # noqa: BLE001 - the next state removes what is left and fails the drill if it cannot
            left.append(key)
    return left


def _bucket_line(checked: dict[str, Any]) -> str:
    if checked["status"] == NOTHING_TO_CHECK:
        return f"nothing to check in {checked['bucket']} (no key with an older version among {checked.get('versions_scanned', 0)} listed)"
    if checked["status"] == FAILED and not checked["keys_checked"]:
        return f"{checked['bucket']}: {checked.get('reason')}"
    if checked["status"] == MET:
        return f"{checked['matched']}/{checked['keys_checked']} matched in {checked['bucket']} ({checked['bytes']} bytes)"
    return (
        f"FAILED in {checked['bucket']}: {checked['matched']}/{checked['keys_checked']} matched, {checked['mismatched']} mismatched, "
        f"{checked['unrestorable']} could not be copied"
    )


def summarize(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = {b["status"] for b in buckets}
    verdict = FAILED if FAILED in statuses else NOTHING_TO_CHECK if NOTHING_TO_CHECK in statuses or not buckets else MET
    return {
        "verdict": verdict,
        "keys_checked": sum(b["keys_checked"] for b in buckets),
        "matched": sum(b["matched"] for b in buckets),
        "mismatched": sum(b["mismatched"] for b in buckets),
        "unrestorable": sum(b["unrestorable"] for b in buckets),
        "bytes": sum(b["bytes"] for b in buckets),
        "summary": "recordings: " + ("; ".join(_bucket_line(b) for b in buckets) or "no recordings bucket is configured"),
    }


def check_recordings(execution_arn: str, settings: RunbookSettings, s3: Any = None) -> dict[str, Any]:
    """Check `drill_recordings_keys` keys of every configured bucket; RecordingsCheckFailed, after removing
    the scratch copies, when one did not match or could not be copied."""
    wanted = settings.drill_recordings_keys
    started_at, began = clock.isoformat(clock.now()), time.monotonic()
    if wanted == 0:
        return {"verdict": NOT_CHECKED, "summary": "recordings: not checked (drill_recordings_keys is 0)", "buckets": [],
                "keys_checked": 0, "matched": 0, "mismatched": 0, "unrestorable": 0, "bytes": 0}  # fmt: skip
    s3 = s3 or aws.client("s3")
    work_bucket, prefix = work_bucket_of(settings), scratch_prefix(execution_arn)
    written: list[str] = []
    buckets: list[dict[str, Any]] = []
    left: list[str] = []
    try:
        for bucket in settings.recordings_buckets:
            # Seeded by the execution: a retried invocation picks the same keys, the next month's drill others.
            rng = random.Random(f"{execution_arn}:{bucket}")  # noqa: S311 - a sample, not a secret
            buckets.append(check_bucket(s3, bucket, work_bucket, prefix, wanted, rng, written))
    finally:
        left = remove_keys(s3, work_bucket, written)
    result = {
        **summarize(buckets),
        "keys_per_bucket": wanted,
        "buckets": buckets,
        "duration_seconds": round(time.monotonic() - began, 3),
        "scratch": f"s3://{work_bucket}/{prefix}",
        "scratch_removed": len(written) - len(left),
        "scratch_left": left,
        "started_at": started_at,
        "finished_at": clock.isoformat(clock.now()),
    }
    if result["verdict"] == FAILED:
        failed = [
            f"{b['bucket']}/{k['key']} version {k['version_id']}: {k['status']}: {k.get('reason')}"
            for b in buckets
            for k in b["keys"]
            if k["status"] != MATCHED
        ] + [f"{b['bucket']}: {b['reason']}" for b in buckets if b["status"] == FAILED and b.get("reason")]
        raise RecordingsCheckFailed(
            f"{result['summary']}. Not restorable as recorded: {'; '.join(failed[:5])}"
            f"{f' (and {len(failed) - 5} more)' if len(failed) > 5 else ''}; scratch copies removed: {result['scratch_removed']}",
            report=_report(result),
        )
    return result


def _report(result: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a failed check (bounded by the failure report's limit): counts per bucket, failed keys."""
    return {
        **{k: result[k] for k in ("verdict", "keys_checked", "matched", "mismatched", "unrestorable", "bytes", "duration_seconds")},
        "scratch_removed": result["scratch_removed"],
        "buckets": [
            {
                **{k: b.get(k) for k in ("bucket", "status", "keys_checked", "matched", "mismatched", "unrestorable", "bytes")},
                "failed": [{"key": k["key"], "status": k["status"]} for k in b["keys"] if k["status"] != MATCHED],
            }
            for b in result["buckets"]
        ],
    }


def remove_scratch(execution_arn: str, settings: RunbookSettings, s3: Any = None) -> dict[str, Any]:
    """Remove whatever is left under this execution's scratch prefix; TeardownFailed when something stays."""
    s3 = s3 or aws.client("s3")
    work_bucket, prefix = work_bucket_of(settings), scratch_prefix(execution_arn)

    def listed() -> list[str]:
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=work_bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents") or []]
        return keys

    found = listed()
    left = remove_keys(s3, work_bucket, found)
    still = listed() if found else []
    if still:
        raise TeardownFailed(
            f"{len(still)} drill scratch copies stay under s3://{work_bucket}/{prefix} ({', '.join(still[:3])}); "
            f"delete them by hand, or the work bucket's lifecycle rule expires them within a day"
        )
    detail = (
        f"removed {len(found) - len(left)} scratch copies left under s3://{work_bucket}/{prefix}" if found else "no scratch copy was left"
    )
    return {"prefix": f"s3://{work_bucket}/{prefix}", "removed": len(found) - len(left), "detail": detail}
