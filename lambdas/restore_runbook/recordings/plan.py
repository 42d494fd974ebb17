"""The planner: what each key under the prefix needs, from its versions, before anything changes.

`decide` is the per-key rule (the AWS guidance's "bucket rollback" table, plus undelete and one
version); `plan_pages` pages through ListObjectVersions a bounded number of pages per invocation
(the ASL loops until `done`), and `finish_plan` writes the Distributed Map's input.

The plan is written as a JSON array of BATCHES (each item `{"kind", "entries"}` with up to
`recordings_batch_size` entries), not of single entries: moto's interpreter rejects `ItemBatcher`, so batching is done
here and each Distributed Map child applies one batch. On AWS this also cuts child executions
(and their state transitions) by the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import InvalidInput
from restore_runbook.recordings import store
from restore_runbook.recordings.request import AS_OF, UNDELETE, VERSION, RecordingsRequest
from restore_runbook.settings import RunbookSettings

COPY, UNDELETE_ACTION, HIDE = "copy", "undelete", "hide"
ACTIONS = (COPY, UNDELETE_ACTION, HIDE)
# Not changed, but reported: why each key is left as it is.
UNCHANGED = "unchanged"  # already as wanted (also: deleted then, deleted now)
SAME_CONTENT = "same-content"  # the current version already holds the wanted content
CREATED_AFTER = "created-after"  # did not exist at T; left alone unless hide_created_after
NOT_DELETED = "not-deleted"  # undelete mode: current version is not a marker placed after T
NOTHING_UNDER_MARKER = "nothing-under-marker"  # undelete mode: removing the markers would expose no recording
# A version and a delete marker of the key written in the same second, neither the current one: S3 lists
# times to the second and versions and markers in two lists, so which came first cannot be known, and a
# guess could copy back a version that was deleted, or leave a key deleted. Reported, never acted on.
SAME_SECOND = "same-second"
REASONS = (UNCHANGED, SAME_CONTENT, CREATED_AFTER, NOT_DELETED, NOTHING_UNDER_MARKER, SAME_SECOND)
NEEDS_RETRIEVAL = ("GLACIER", "DEEP_ARCHIVE")
# CopyObject copies at most 5 GB; above that S3 needs a multipart upload of UploadPartCopy parts.
COPY_OBJECT_LIMIT = 5 * 1024**3
PART_SIZE = 512 * 1024**2
MAX_PARTS = 10_000
SAMPLE = 20
# The planner loop's bound: with the default 200 pages of 1,000 per round, 100 million versions.
MAX_PLAN_ROUNDS = 500


@dataclass(frozen=True)
class Item:
    """One entry of a key's history: a version or a delete marker."""

    version_id: str
    last_modified: datetime
    marker: bool
    size: int = 0
    etag: str = ""
    storage_class: str = "STANDARD"


def _copy(key: str, item: Item, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "action": COPY,
        "version_id": item.version_id,
        "size": item.size,
        "etag": item.etag,
        "storage_class": item.storage_class,
        **extra,
    }


def _same_content(a: Item, b: Item) -> bool:
    return not a.marker and not b.marker and a.etag == b.etag and a.size == b.size


def order_unknown(history: list[Item], decisive: datetime) -> list[Item]:
    """The items below the current one whose place in the history is a guess that decides the outcome:
    a version and a delete marker with the same LastModified, in the second that decides (`decisive`:
    the state at T in as_of, the item the markers would expose in undelete) or later. IsLatest places
    the current one; within versions, and within markers, S3's own order is kept; a tie in any
    other second changes nothing the key needs."""
    older = [item for item in history[1:] if item.last_modified >= decisive]
    versions = {item.last_modified for item in older if not item.marker}
    markers = {item.last_modified for item in older if item.marker}
    return [item for item in older if item.last_modified in versions & markers]


def _same_second(key: str, unknown: list[Item]) -> tuple[str, dict[str, Any]]:
    second = clock.isoformat(unknown[0].last_modified)
    return SAME_SECOND, {
        "key": key,
        "version_ids": [item.version_id for item in unknown],
        "detail": (
            f"a version and a delete marker were both written at {second} (S3 lists times to the second), so which came "
            "first is unknown; left as it is: restore the version wanted by its version_id"
        ),
    }


def decide(key: str, history: list[Item], request: RecordingsRequest) -> tuple[str, dict[str, Any]]:
    """(action or reason, entry) for one key; `history` is newest first, as S3 lists it."""
    current = history[0]
    moment = clock.parse_utc(request.point_in_time) if request.point_in_time else None
    if request.mode == UNDELETE:
        assert moment is not None
        markers = []
        for item in history:
            if not item.marker or item.last_modified <= moment:
                break
            markers.append(item)
        exposed = history[len(markers)] if len(markers) < len(history) else None
        unknown = order_unknown(history, exposed.last_modified) if exposed is not None else []
        if unknown:
            return _same_second(key, unknown)
        if not markers:
            return NOT_DELETED, {"key": key}
        if exposed is None or exposed.marker:
            return NOTHING_UNDER_MARKER, {"key": key}
        return UNDELETE_ACTION, {
            "key": key,
            "action": UNDELETE_ACTION,
            "markers": [m.version_id for m in markers],
            "restores": exposed.version_id,
            "size": exposed.size,
        }
    assert request.mode == AS_OF and moment is not None
    at_time = next((item for item in history if item.last_modified <= moment), None)
    if at_time is not None and at_time is not current:
        # Only the second of the state at T decides: newer items count as a set, older ones not at all.
        unknown = [item for item in order_unknown(history, at_time.last_modified) if item.last_modified == at_time.last_modified]
        if unknown:
            return _same_second(key, unknown)
    if at_time is None or at_time.marker:
        # It did not exist at T (never, or deleted): whatever is there now was created after T.
        if current.marker:
            return UNCHANGED, {"key": key}
        if request.hide_created_after:
            return HIDE, {"key": key, "action": HIDE, "version_id": current.version_id, "size": current.size}
        return CREATED_AFTER, {"key": key, "version_id": current.version_id, "last_modified": clock.isoformat(current.last_modified)}
    if current is at_time:
        return UNCHANGED, {"key": key}
    newer = history[: history.index(at_time)]
    if current.marker and all(item.marker for item in newer):
        return UNDELETE_ACTION, {
            "key": key,
            "action": UNDELETE_ACTION,
            "markers": [m.version_id for m in newer],
            "restores": at_time.version_id,
            "size": at_time.size,
        }
    if _same_content(current, at_time):
        return SAME_CONTENT, {"key": key, "version_id": at_time.version_id}
    # What the key held at planning: the apply refuses to copy over anything written since.
    return COPY, _copy(key, at_time, planned_current=None if current.marker else current.version_id)


# ---------------------------------------------------------------------------------------- listing


def _items(page: dict[str, Any]) -> dict[str, list[Item]]:
    """A page's versions and delete markers (two separate lists) merged per key, newest first."""
    by_key: dict[str, list[tuple[bool, Item]]] = {}
    for version in page.get("Versions") or []:
        item = Item(
            version_id=version["VersionId"],
            last_modified=version["LastModified"],
            marker=False,
            size=int(version.get("Size") or 0),
            etag=str(version.get("ETag") or ""),
            storage_class=str(version.get("StorageClass") or "STANDARD"),
        )
        by_key.setdefault(version["Key"], []).append((bool(version.get("IsLatest")), item))
    for marker in page.get("DeleteMarkers") or []:
        item = Item(version_id=marker["VersionId"], last_modified=marker["LastModified"], marker=True)
        by_key.setdefault(marker["Key"], []).append((bool(marker.get("IsLatest")), item))
    # The two lists lose S3's one interleaved order; IsLatest and LastModified (1 s resolution) restore it,
    # but for a version and a marker in the same second, which `decide` refuses to guess (order_unknown).
    return {
        key: [item for _, item in sorted(entries, key=lambda e: (e[0], e[1].last_modified), reverse=True)]
        for key, entries in by_key.items()
    }


def _item_to_state(key: str, item: Item) -> dict[str, Any]:
    return {
        "key": key,
        "version_id": item.version_id,
        "last_modified": item.last_modified.isoformat(),
        "marker": item.marker,
        "size": item.size,
        "etag": item.etag,
        "storage_class": item.storage_class,
    }


def _item_from_state(state: dict[str, Any]) -> tuple[str, Item]:
    return state["key"], Item(
        version_id=state["version_id"],
        last_modified=datetime.fromisoformat(state["last_modified"]),
        marker=state["marker"],
        size=state["size"],
        etag=state["etag"],
        storage_class=state["storage_class"],
    )


def empty_totals() -> dict[str, Any]:
    return {
        "keys": 0,
        "versions": 0,
        "delete_markers": 0,
        "pages": 0,
        "entries": 0,
        "bytes_to_copy": 0,
        "actions": {action: 0 for action in ACTIONS},
        "left_as_is": {reason: 0 for reason in REASONS},
        "needs_retrieval": 0,
        "markers_to_remove": 0,
        "multipart_parts": 0,
    }


def start_progress(request: RecordingsRequest, execution_arn: str, settings: RunbookSettings) -> dict[str, Any]:
    return {
        "work_bucket": settings.recordings_work_bucket,
        "plan_prefix": store.plan_prefix(execution_arn),
        "key_marker": None,
        "version_id_marker": None,
        "carry": [],
        "parts": [],
        "batch_count": 0,
        "invocations": 0,
        "totals": empty_totals(),
        "created_after_sample": [],
        "started_at": clock.isoformat(clock.now()),
        "done": False,
    }


def _count(totals: dict[str, Any], outcome: str, entry: dict[str, Any]) -> None:
    totals["keys"] += 1
    if outcome in ACTIONS:
        totals["actions"][outcome] += 1
        totals["entries"] += 1
        if outcome == COPY:
            size = int(entry.get("size") or 0)
            totals["bytes_to_copy"] += size
            if size > COPY_OBJECT_LIMIT:
                totals["multipart_parts"] += len(part_ranges(size))
            if entry.get("storage_class") in NEEDS_RETRIEVAL:
                totals["needs_retrieval"] += 1
        elif outcome == UNDELETE_ACTION:
            totals["markers_to_remove"] += len(entry["markers"])
    else:
        totals["left_as_is"][outcome] = totals["left_as_is"].get(outcome, 0) + 1


def part_ranges(size: int, part_size: int = PART_SIZE) -> list[str]:
    """CopySourceRange values covering `size` bytes in at most 10,000 parts."""
    part_size = max(part_size, math.ceil(size / MAX_PARTS))
    return [f"bytes={start}-{min(start + part_size, size) - 1}" for start in range(0, size, part_size)]


# Two kinds of batch, run by two functions: only the undelete one may call s3:DeleteObjectVersion.
UNDELETE_BATCH, CHANGE_BATCH = "undelete", "change"


def _batches(entries: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    batches = []
    for kind in (CHANGE_BATCH, UNDELETE_BATCH):
        chosen = [e for e in entries if (e["action"] == UNDELETE_ACTION) == (kind == UNDELETE_BATCH)]
        batches += [{"kind": kind, "entries": chosen[i : i + size]} for i in range(0, len(chosen), size)]
    return batches


def _write_part(progress: dict[str, Any], entries: list[dict[str, Any]], left: list[dict[str, Any]], settings: RunbookSettings) -> None:
    number = len(progress["parts"]) + 1
    bucket, prefix = progress["work_bucket"], progress["plan_prefix"]
    part_key = f"{prefix}part-{number:05d}.json"
    batches = _batches(entries, settings.recordings_batch_size)
    store.put_json(bucket, part_key, batches)
    progress["batch_count"] += len(batches)
    store.put_json(bucket, f"{prefix}report-{number:05d}.json", left)
    progress["parts"].append(part_key)


def _decide_all(
    history_by_key: Iterable[tuple[str, list[Item]]],
    request: RecordingsRequest,
    progress: dict[str, Any],
    entries: list[Any],
    left: list[Any],
) -> None:
    totals = progress["totals"]
    for key, history in history_by_key:
        outcome, entry = decide(key, history, request)
        _count(totals, outcome, entry)
        if outcome in ACTIONS:
            entries.append(entry)
        else:
            left.append({**entry, "left_as_is": outcome})
            if outcome == CREATED_AFTER and len(progress["created_after_sample"]) < SAMPLE:
                progress["created_after_sample"].append(key)


def plan_next(request_state: Any, progress: dict[str, Any] | None, execution_arn: str, settings: RunbookSettings) -> dict[str, Any]:
    """One invocation of the planner loop: the first one starts the listing, later ones resume it."""
    request = RecordingsRequest.from_state(request_state)
    if progress and progress["invocations"] >= MAX_PLAN_ROUNDS:
        raise InvalidInput(
            f"s3://{request.bucket}/{request.prefix} holds more versions than {MAX_PLAN_ROUNDS} planner rounds list "
            f"({progress['totals']['versions']} so far); restore it in narrower prefixes, e.g. one tenant at a time"
        )
    return plan_pages(request, progress or start_progress(request, execution_arn, settings), settings)


def plan_pages(request: RecordingsRequest, progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """List up to `recordings_pages_per_invocation` pages from where the last invocation stopped."""
    progress = {**progress, "totals": {**progress["totals"]}, "invocations": progress["invocations"] + 1}
    progress["totals"]["actions"] = dict(progress["totals"]["actions"])
    progress["totals"]["left_as_is"] = dict(progress["totals"]["left_as_is"])
    entries: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    if request.mode == VERSION:
        _plan_one_version(request, progress, entries, left)
        progress["done"] = True
        _write_part(progress, entries, left, settings)
        return progress
    s3 = aws.client("s3")
    carry: list[dict[str, Any]] = list(progress["carry"])
    for _ in range(settings.recordings_pages_per_invocation):
        kwargs: dict[str, Any] = {"Bucket": request.bucket, "Prefix": request.prefix, "MaxKeys": settings.recordings_list_page_size}
        if progress["key_marker"] is not None:
            kwargs["KeyMarker"] = progress["key_marker"]
            if progress["version_id_marker"]:
                kwargs["VersionIdMarker"] = progress["version_id_marker"]
        page = s3.list_object_versions(**kwargs)
        totals = progress["totals"]
        totals["pages"] += 1
        totals["versions"] += len(page.get("Versions") or [])
        totals["delete_markers"] += len(page.get("DeleteMarkers") or [])
        by_key = _with_carry(carry, _items(page))
        truncated = bool(page.get("IsTruncated"))
        carry = []
        if truncated and by_key:
            # The page may end in the middle of the last key's history: hold it back for the next page.
            last = max(by_key)
            carry = [_item_to_state(last, item) for item in by_key.pop(last)]
        _decide_all(sorted(by_key.items()), request, progress, entries, left)
        if not truncated:
            progress["done"] = True
            break
        progress["key_marker"] = page.get("NextKeyMarker")
        progress["version_id_marker"] = page.get("NextVersionIdMarker")
    progress["carry"] = carry
    _write_part(progress, entries, left, settings)
    return progress


def _with_carry(carry: list[dict[str, Any]], page_items: dict[str, list[Item]]) -> dict[str, list[Item]]:
    """The key held back from the previous page goes first: its newer entries were listed before."""
    if not carry:
        return page_items
    merged: dict[str, list[Item]] = {}
    for state in carry:
        key, item = _item_from_state(state)
        merged.setdefault(key, []).append(item)
    for key, items in page_items.items():
        merged[key] = [*merged.get(key, []), *items]
    return merged


def _current_of(bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(aws.client("s3").head_object(Bucket=bucket, Key=key))
    except Exception as exc:
        status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status in (404, 405) or aws.error_code(exc) in ("404", "NoSuchKey"):
            return None
        raise


def _plan_one_version(request: RecordingsRequest, progress: dict[str, Any], entries: list[Any], left: list[Any]) -> None:
    assert request.key and request.version_id and request.target_bucket and request.target_key
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=request.bucket, Key=request.key, VersionId=request.version_id)
    source = Item(
        version_id=request.version_id,
        last_modified=head["LastModified"],
        marker=False,
        size=int(head.get("ContentLength") or 0),
        etag=str(head.get("ETag") or ""),
        storage_class=str(head.get("StorageClass") or "STANDARD"),
    )
    totals = progress["totals"]
    totals["versions"] += 1
    current = _current_of(request.target_bucket, request.target_key)
    if current is not None and str(current.get("ETag")) == source.etag and int(current.get("ContentLength") or 0) == source.size:
        outcome, entry = SAME_CONTENT, {"key": request.target_key, "version_id": request.version_id}
    else:
        planned_current = None if current is None else str(current.get("VersionId") or "") or None
        outcome, entry = (
            COPY,
            _copy(request.key, source, target_bucket=request.target_bucket, target_key=request.target_key, planned_current=planned_current),
        )
    _count(totals, outcome, entry)
    (entries if outcome in ACTIONS else left).append(entry if outcome in ACTIONS else {**entry, "left_as_is": outcome})


# ---------------------------------------------------------------------------------------- the plan


def finish_plan(request_state: Any, progress: dict[str, Any], execution_arn: str) -> dict[str, Any]:
    """Join the parts into the one file the Distributed Map reads, and report the totals."""
    request = RecordingsRequest.from_state(request_state)
    bucket, prefix = progress["work_bucket"], progress["plan_prefix"]
    pieces: list[bytes] = []
    for part in progress["parts"]:
        raw = store.get_raw(bucket, part)
        if raw is None:
            raise RuntimeError(f"plan part s3://{bucket}/{part} is missing; the work bucket was changed during the plan")
        body = raw.strip()
        # Each part is itself a JSON array of batches: splice the arrays without parsing them again.
        if body != b"[]":
            pieces.append(body[1:-1])
    plan_key = f"{prefix}batches.json"
    location = store.put_raw(bucket, plan_key, b"[" + b",".join(pieces) + b"]")
    totals = progress["totals"]
    return {
        "mode": request.mode,
        "bucket": request.bucket,
        "prefix": request.prefix,
        "point_in_time": request.point_in_time,
        "dry_run": request.dry_run,
        "work_bucket": bucket,
        "plan_key": plan_key,
        "plan_location": location,
        "plan_reports": [p.replace("/part-", "/report-") for p in progress["parts"]],
        "results_prefix": store.results_prefix(execution_arn),
        "batch_count": progress["batch_count"],
        "totals": totals,
        "created_after_sample": progress["created_after_sample"],
        "invocations": progress["invocations"],
        "started_at": progress["started_at"],
        "planned_at": clock.isoformat(clock.now()),
    }
