"""Applying one batch of the plan: copy a version back, remove delete markers, or hide a key.

Nothing here deletes a recording. The only version ever deleted is a delete marker, and only
after S3 itself confirmed it is one (a HEAD of that version answers 405 with x-amz-delete-marker);
hiding a key adds a marker (a DELETE without a version id), which an undelete can remove again.

Every entry's outcome (applied / skipped / failed, with the reason) is written to the work bucket
by the batch itself and an entry's failure is never raised: the outcome of the whole batch must
survive, because moto's Distributed Map swallows a failing child and AWS's would stop the run at
the tolerated-failure threshold. The aggregation step after the Map reads every result and fails
the execution with the failures listed. Re-running a batch is safe: each entry first checks
whether the bucket already shows its effect and is then skipped. A copy made by CopyObject keeps its
source's ETag; one made by multipart upload (over 5 GB) gets a new one, so it carries the source's
version id and ETag in its user metadata (beside all of the source's own), and a current version
carrying the marker of the version to restore counts as restored.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import RunbookError, UnsafeOperation
from restore_runbook.contract import RESTORED_FROM_ETAG_METADATA, RESTORED_FROM_VERSION_METADATA
from restore_runbook.recordings import store
from restore_runbook.recordings.plan import COPY, COPY_OBJECT_LIMIT, HIDE, NEEDS_RETRIEVAL, UNDELETE_ACTION, part_ranges

APPLIED, SKIPPED, FAILED = "applied", "skipped", "failed"
# What a HEAD of the source reports and a multipart upload must be told again (CopyObject keeps them itself).
CARRIED_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")


def copy_source(bucket: str, key: str, version_id: str) -> dict[str, str]:
    """The CopySource of a version. botocore URL-encodes the key of this dict form on the wire
    (x-amz-copy-source: bucket/recordings/t%201/caf%C3%A9%2B1.wav?versionId=...), as S3 requires;
    it also encodes a string CopySource, so a pre-encoded string would arrive encoded twice."""
    return {"Bucket": bucket, "Key": key, "VersionId": version_id}


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status else None


def _head(s3: Any, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """HEAD of a key (its current version) or of one version; None when it is gone or a delete marker."""
    kwargs = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    try:
        return dict(s3.head_object(**kwargs))
    except Exception as exc:
        if _status(exc) in (404, 405) or aws.error_code(exc) in ("404", "405", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed"):
            return None
        raise


def _is_delete_marker(s3: Any, bucket: str, key: str, version_id: str) -> bool | None:
    """True for a delete marker, False for a real version, None when the version no longer exists."""
    try:
        s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
    except Exception as exc:
        response = getattr(exc, "response", None) or {}
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if _status(exc) == 405 and str(headers.get("x-amz-delete-marker", "")).lower() == "true":
            return True
        if _status(exc) in (404,) or aws.error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
    return False


def _encryption_of(head: dict[str, Any]) -> dict[str, Any]:
    sse = head.get("ServerSideEncryption")
    if sse in ("aws:kms", "aws:kms:dsse"):
        kept: dict[str, Any] = {"ServerSideEncryption": sse}
        if head.get("SSEKMSKeyId"):
            kept["SSEKMSKeyId"] = head["SSEKMSKeyId"]
        if head.get("BucketKeyEnabled") is not None:
            kept["BucketKeyEnabled"] = bool(head["BucketKeyEnabled"])
        return kept
    if sse == "AES256":
        return {"ServerSideEncryption": "AES256"}
    return {}


def _multipart_copy(s3: Any, source: dict[str, str], bucket: str, key: str, head: dict[str, Any], storage_class: str) -> str:
    extra: dict[str, Any] = {name: head[name] for name in CARRIED_HEADERS if head.get(name)}
    tags = s3.get_object_tagging(Bucket=source["Bucket"], Key=source["Key"], VersionId=source["VersionId"]).get("TagSet") or []
    if tags:
        from urllib.parse import urlencode

        extra["Tagging"] = urlencode({t["Key"]: t["Value"] for t in tags})
    # The source's metadata, and which version (and ETag) this copy is of: its own ETag will differ.
    metadata = {
        **(head.get("Metadata") or {}),
        RESTORED_FROM_VERSION_METADATA: source["VersionId"],
        RESTORED_FROM_ETAG_METADATA: str(head.get("ETag") or "").strip('"'),
    }
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, Metadata=metadata, StorageClass=storage_class, **extra, **_encryption_of(head)
    )
    upload_id = upload["UploadId"]
    try:
        parts = []
        for number, byte_range in enumerate(part_ranges(int(head["ContentLength"])), start=1):
            part = s3.upload_part_copy(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, CopySource=source, CopySourceRange=byte_range
            )
            parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
        done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except Exception:
        # An abandoned upload's parts are billed until aborted.
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return str(done.get("VersionId") or "")


def already_restored(current: dict[str, Any] | None, source: dict[str, Any], version_id: str) -> str | None:
    """Why the current version already is the version to restore (same content), or None."""
    if current is None or current.get("ContentLength") != source.get("ContentLength"):
        return None
    if current.get("ETag") == source.get("ETag"):
        return "the current version already holds this content"
    marker = current.get("Metadata") or {}
    if marker.get(RESTORED_FROM_VERSION_METADATA) == version_id and marker.get(RESTORED_FROM_ETAG_METADATA) == str(
        source.get("ETag") or ""
    ).strip('"'):
        return f"the current version is a multipart copy of version {version_id} (its metadata says so; a multipart ETag differs)"
    return None


def copy_version(s3: Any, bucket: str, entry: dict[str, Any]) -> dict[str, Any]:
    key, version_id = entry["key"], entry["version_id"]
    target_bucket, target_key = entry.get("target_bucket") or bucket, entry.get("target_key") or key
    head = _head(s3, bucket, key, version_id)
    if head is None:
        return {"outcome": FAILED, "reason": f"version {version_id} of {key} no longer exists (expired or deleted since the plan)"}
    current = _head(s3, target_bucket, target_key)
    restored = already_restored(current, head, version_id)
    if restored:
        return {"outcome": SKIPPED, "reason": restored, "bytes": 0}
    changed = changed_since_plan(current, entry)
    if changed:
        return {"outcome": FAILED, "reason": changed}
    # HEAD leaves StorageClass out for STANDARD; CopyObject would silently make every copy STANDARD.
    storage_class = str(head.get("StorageClass") or "STANDARD")
    if storage_class in NEEDS_RETRIEVAL:
        return {
            "outcome": FAILED,
            "reason": f"version {version_id} is in {storage_class}: `aws s3api restore-object` it first (hours), then run again",
        }
    size = int(head.get("ContentLength") or 0)
    source = copy_source(bucket, key, version_id)
    if size > COPY_OBJECT_LIMIT:
        new_version = _multipart_copy(s3, source, target_bucket, target_key, head, storage_class)
        method = "multipart UploadPartCopy"
    else:
        copied = s3.copy_object(
            Bucket=target_bucket,
            Key=target_key,
            CopySource=source,
            MetadataDirective="COPY",
            TaggingDirective="COPY",
            StorageClass=storage_class,
            **_encryption_of(head),
        )
        new_version = str(copied.get("VersionId") or "")
        method = "CopyObject"
    return {
        "outcome": APPLIED,
        "reason": f"copied version {version_id} as the current version ({method})",
        "bytes": size,
        "new_version_id": new_version,
    }


def changed_since_plan(current: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
    """Why the copy must not be made: the key got a new version (or was deleted) after planning.

    Copying would make that newer recording noncurrent, and the bucket's noncurrent-version
    expiration would delete it for good days later. A plan from before the field existed has no
    `planned_current` and is applied as planned."""
    if "planned_current" not in entry:
        return None
    now = None if current is None else str(current.get("VersionId") or "") or None
    if now == entry["planned_current"]:
        return None
    was = entry["planned_current"] or "deleted (a delete marker)"
    found = now or "deleted (a delete marker)"
    return (
        f"the key changed since the plan (it was {was}, it is now {found}): not copied, so nothing written since is "
        "superseded; run the restore again to plan from what is there now"
    )


def undelete(s3: Any, bucket: str, entry: dict[str, Any]) -> dict[str, Any]:
    key = entry["key"]
    current = _head(s3, bucket, key)
    if current is not None and current.get("VersionId") == entry["restores"]:
        return {"outcome": SKIPPED, "reason": "already undeleted", "bytes": 0}
    if current is not None:
        # Someone wrote the key again after the plan: it is no longer deleted, and removing the
        # markers beneath the new version would change its history for nothing.
        return {
            "outcome": FAILED,
            "reason": f"the key was written again since the plan (now version {current.get('VersionId')}): no marker removed",
        }
    removed = []
    for marker in entry["markers"]:
        kind = _is_delete_marker(s3, bucket, key, marker)
        if kind is None:
            continue
        if kind is False:
            raise UnsafeOperation(f"refusing to delete version {marker} of {key}: it is a recording, not a delete marker")
        s3.delete_object(Bucket=bucket, Key=key, VersionId=marker)
        removed.append(marker)
    current = _head(s3, bucket, key)
    if current is None or current.get("VersionId") != entry["restores"]:
        exposed = current.get("VersionId") if current else "a delete marker"
        return {"outcome": FAILED, "reason": f"removed markers {removed} but the current version is {exposed}, not {entry['restores']}"}
    return {"outcome": APPLIED, "reason": f"removed {len(removed)} delete marker(s)", "bytes": 0, "removed_markers": removed}


def hide(s3: Any, bucket: str, entry: dict[str, Any]) -> dict[str, Any]:
    key = entry["key"]
    current = _head(s3, bucket, key)
    if current is None:
        return {"outcome": SKIPPED, "reason": "already hidden by a delete marker", "bytes": 0}
    if current.get("VersionId") != entry["version_id"]:
        return {"outcome": FAILED, "reason": f"the current version changed since the plan ({current.get('VersionId')}); left as it is"}
    # No VersionId: this adds a delete marker and deletes nothing.
    marker = s3.delete_object(Bucket=bucket, Key=key)
    return {
        "outcome": APPLIED,
        "reason": "hid the key created after the time with a delete marker",
        "bytes": 0,
        "marker": marker.get("VersionId"),
    }


ACTIONS = {COPY: copy_version, UNDELETE_ACTION: undelete, HIDE: hide}
# What each batch function may do; its IAM role allows exactly that (only UNDELETING may DeleteObjectVersion).
CHANGING = (COPY, HIDE)
UNDELETING = (UNDELETE_ACTION,)


def apply_entry(s3: Any, bucket: str, entry: dict[str, Any], allowed: tuple[str, ...] = (COPY, UNDELETE_ACTION, HIDE)) -> dict[str, Any]:
    try:
        if entry["action"] not in allowed:
            raise UnsafeOperation(f"this step may only {' or '.join(allowed)}, not {entry['action']}; the plan's batches are mixed up")
        outcome = ACTIONS[entry["action"]](s3, bucket, entry)
    except (RunbookError, Exception) as exc:  # noqa: BLE001 - recorded per entry; the aggregation step raises
        code = aws.error_code(exc) or type(exc).__name__
        outcome = {"outcome": FAILED, "reason": f"{code}: {exc}"}
    return {"key": entry["key"], "action": entry["action"], **outcome}


def apply_batch(batch: dict[str, Any], allowed: tuple[str, ...], s3: Any = None) -> dict[str, Any]:
    """Apply one batch and write its result file; returns the counts (small: the Map collects them)."""
    s3 = s3 or aws.client("s3")
    entries, bucket, index = batch["entries"], batch["bucket"], int(batch["index"])
    outcomes = [apply_entry(s3, bucket, entry, allowed) for entry in entries]
    counts = {name: sum(1 for o in outcomes if o["outcome"] == name) for name in (APPLIED, SKIPPED, FAILED)}
    store.put_json(
        batch["work_bucket"],
        store.result_key(batch["results_prefix"], index),
        {"batch": index, "finished_at": clock.isoformat(clock.now()), **counts, "outcomes": outcomes},
    )
    return {"batch": index, **counts}
