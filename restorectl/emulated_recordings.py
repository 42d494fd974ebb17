"""The recording buckets of the emulated world: versioned, with 30 days of overwrites and deletes.

Each recording `recordings/<tenant>/<call-id>.wav` (exactly the calls table's `recording_key`, in
the seeded production database) gets a small WAV-like body and one of six histories, the six
rows of the AWS guidance's rollback table, so every mode of `recordings-restore` has work to do.
The first three recordings are named as careless code breaks (ODD_NAMES) and belong to no call
row (their call ids follow the table's), so every call's `recording_key` names a real object:

    i % 6   before the bad deploy      after it
    0       v1                         -                  (untouched)
    1       v1, v1b (re-encoded)       v2                 (overwritten by the bad deploy)
    2       v1                         marker             (deleted)
    3       v1                         v2, marker         (overwritten, then deleted)
    4       v1                         marker, v2         (deleted, then written again)
    5       -                          v1                 (created after the bad deploy)

The bad deploy happened BAD_DEPLOY_AGO before the rehearsal starts. Times are S3's own
LastModified: moto's S3 clock is pointed at the seeding time while seeding and at the rehearsal's
simulated clock after it, so copies made by the workflow are newer than every seeded version.
"""

from __future__ import annotations

import contextlib
import random
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

BUCKETS = ("irisx-prod-recordings-672e7c49", "irisx-recordings")
BAD_DEPLOY_AGO = timedelta(hours=6)
HISTORY = timedelta(days=29)
# Keys S3 allows and careless code breaks: a space, a plus, non-ASCII.
ODD_NAMES = ("call with space.wav", "caf\u00e9+r\u00e9sum\u00e9.wav", "a+b=c.wav")


def wav_body(call_id: int, revision: str, seconds: int = 1) -> bytes:
    """A tiny RIFF/WAVE file (8 kHz, 8-bit mono) whose samples say which call and revision it is."""
    samples = (f"{call_id}:{revision};" * 64).encode()[: 80 * seconds]
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8) + b"data" + struct.pack("<I", len(samples))
    return header + samples


@dataclass
class S3Clock:
    """Where moto's S3 reads "now" for LastModified: a fixed seeding time, or a live clock."""

    live: Callable[[], datetime]
    fixed: datetime | None = None

    def __call__(self) -> datetime:
        moment = self.fixed if self.fixed is not None else self.live()
        return moment.astimezone(timezone.utc).replace(tzinfo=None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[S3Clock]:
        from moto.s3 import models as s3_models

        with mock.patch.object(s3_models, "utcnow", self):
            yield self

    @contextlib.contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        previous, self.fixed = self.fixed, moment
        try:
            yield
        finally:
            self.fixed = previous


_listing = threading.local()


@contextlib.contextmanager
def fast_version_listing() -> Iterator[None]:
    """moto's ListObjectVersions deep-copies and sorts every version of the bucket on every call, then
    filters by prefix and marker: a planner page or the CLI loop's `--prefix KEY` costs as much as the
    whole bucket (3.7 s per call at 20 k versions here, where S3 answers in milliseconds). This hands
    moto's own listing only the keys it would keep (under the prefix, from the key marker on, and no
    more than one page and a bit without a delimiter); the listing code itself, and so its answers,
    are moto's. Only for the listing thread's own call: other threads see the whole bucket."""
    from moto.s3.models import S3Backend
    from moto.s3.utils import _VersionedKeyStore

    original_listing, original_lists = S3Backend.list_object_versions, _VersionedKeyStore.iterlists

    def iterlists(self: Any) -> Iterator[tuple[str, list[Any]]]:
        if id(getattr(_listing, "store", None)) != id(self):
            yield from original_lists(self)
            return
        for name in _listing.names:
            versions = self.getlist(name)
            if versions:
                yield name, versions

    def list_object_versions(self: Any, bucket_name: str, delimiter: str | None = None, key_marker: str | None = None,
                             max_keys: int | None = 1000, prefix: str = "", version_id_marker: str | None = None) -> Any:  # fmt: skip
        store = self.get_bucket(bucket_name).keys
        names = sorted(n for n in list(store) if n.startswith(prefix or "") and (key_marker is None or n >= key_marker))
        if not delimiter:
            # Every key holds at least one version or marker: the marker's key (skipped) plus a page plus one more.
            names = names[: (max_keys if max_keys is not None else 1000) + 2]
        _listing.store, _listing.names = store, names
        try:
            return original_listing(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)
        finally:
            _listing.store = _listing.names = None

    with (
        mock.patch.object(S3Backend, "list_object_versions", list_object_versions),
        mock.patch.object(_VersionedKeyStore, "iterlists", iterlists),
    ):
        yield


def create_versioned_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


@dataclass
class SeededRecordings:
    bucket: str
    keys: list[str] = field(default_factory=list)
    versions: int = 0
    markers: int = 0
    history: dict[str, str] = field(default_factory=dict)  # key -> pattern name
    calls: dict[str, int] = field(default_factory=dict)  # key -> call id (its body says which)


PATTERNS = ("untouched", "overwritten", "deleted", "overwritten-then-deleted", "deleted-then-rewritten", "created-after")


def seed_bucket(s3: Any, s3_clock: S3Clock, bucket: str, calls: list[tuple[int, int]], now: datetime, *, seed: int = 7) -> SeededRecordings:
    """Write every call's recording history, in time order per key (S3 lists newest first)."""
    bad_deploy = now - BAD_DEPLOY_AGO
    seeded = SeededRecordings(bucket=bucket)
    events: list[tuple[datetime, str, str, bytes | None, dict[str, str]]] = []
    rng = random.Random(f"{seed}:{bucket}")  # noqa: S311 - a reproducible history, not a secret
    for index, (tenant, call_id) in enumerate(calls):
        key = f"recordings/{tenant}/{ODD_NAMES[index]}" if index < len(ODD_NAMES) else recording_key(tenant, call_id)
        pattern = index % 6
        meta = {"tenant": str(tenant), "call-id": str(call_id)}
        born = now - HISTORY + timedelta(seconds=rng.randrange(int((HISTORY - BAD_DEPLOY_AGO).total_seconds()) - 7200))
        after = [bad_deploy + timedelta(seconds=rng.randrange(60, int(BAD_DEPLOY_AGO.total_seconds()) - 3600)) for _ in range(2)]
        after.sort()
        if after[0] == after[1]:
            after[1] += timedelta(seconds=1)
        if pattern != 5:
            events.append((born, key, "put", wav_body(call_id, "v1"), meta))
        if pattern == 1:
            events.append((born + timedelta(hours=1), key, "put", wav_body(call_id, "v1b"), meta))
            events.append((after[0], key, "put", wav_body(call_id, "bad"), meta))
        elif pattern == 2:
            events.append((after[0], key, "delete", None, meta))
        elif pattern == 3:
            events.append((after[0], key, "put", wav_body(call_id, "bad"), meta))
            events.append((after[1], key, "delete", None, meta))
        elif pattern == 4:
            events.append((after[0], key, "delete", None, meta))
            events.append((after[1], key, "put", wav_body(call_id, "v2"), meta))
        elif pattern == 5:
            events.append((after[0], key, "put", wav_body(call_id, "new"), meta))
        seeded.keys.append(key)
        seeded.history[key] = PATTERNS[pattern]
        seeded.calls[key] = call_id
    events.sort(key=lambda e: (e[0], e[1]))
    # Straight into moto's S3 backend, 30x faster than through boto3: a rehearsal seeds this on
    # every start, and the benchmark seeds 100 k versions. What it writes is what PutObject writes.
    backend = _s3_backend(s3)
    for moment, key, kind, body, meta in events:
        with s3_clock.at(moment):
            if kind == "put":
                stored = backend.put_object(bucket, key, body)
                stored.set_metadata({"content-type": "audio/wav", **{f"x-amz-meta-{k}": v for k, v in meta.items()}})
                seeded.versions += 1
            else:
                backend.delete_object(bucket, key)
                seeded.markers += 1
    return seeded


def _s3_backend(s3: Any) -> Any:
    from moto.s3.models import s3_backends

    account = boto3_account(s3)
    return s3_backends[account]["aws"]


def boto3_account(s3: Any) -> str:
    import boto3

    return str(boto3.client("sts", region_name=s3.meta.region_name).get_caller_identity()["Account"])


def recording_key(tenant: int, call_id: int) -> str:
    """Where a call's recording lives: the calls table's `recording_key` (restorectl/sample_data.py)."""
    return f"recordings/{tenant}/{call_id}.wav"


def calls_with_recordings(pg: Any, dbname: str | None, count: int) -> list[tuple[int, int]]:
    """(tenant_id, call id) of `count` recordings: first the ODD_NAMES ones, with call ids past the
    table's (no call row names them), then the calls with a recording, from the seeded database.

    When the database has fewer (or none is given), call ids continue past the table's, spread
    over tenants 1..5, so `--recordings` can exceed the calls table in a benchmark.
    """
    odd = min(len(ODD_NAMES), count)
    rows: list[tuple[int, int]] = []
    last_id = 0
    if dbname:
        conn = pg.connect(dbname)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT coalesce(max(id), 0) FROM calls")
                (last_id,) = cursor.fetchone()
                cursor.execute(
                    "SELECT tenant_id, id, recording_key FROM calls WHERE recording_key IS NOT NULL ORDER BY id LIMIT %s", (count - odd,)
                )
                for tenant, call_id, key in cursor.fetchall():
                    if key != recording_key(int(tenant), int(call_id)):
                        raise ValueError(f"call {call_id}'s recording_key {key!r} is not {recording_key(int(tenant), int(call_id))!r}")
                    rows.append((int(tenant), int(call_id)))
        finally:
            conn.close()
    next_id = int(last_id) + 1
    unnamed = [(1 + (next_id + i) % 5, next_id + i) for i in range(odd)]
    next_id += odd
    while len(rows) < count - odd:
        rows.append((1 + next_id % 5, next_id))
        next_id += 1
    return [*unnamed, *rows]


class EmulatedRecordings:
    """Both recording buckets and the work bucket, in moto, seeded before the rehearsal starts."""

    def __init__(self, now: Callable[[], datetime], *, recordings: int, buckets: tuple[str, ...], work_bucket: str) -> None:
        self.s3_clock = S3Clock(live=now)
        self.recordings = recordings
        self.buckets = buckets
        self.work_bucket = work_bucket
        self.seeded: dict[str, SeededRecordings] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[EmulatedRecordings]:
        with self.s3_clock.installed(), fast_version_listing():
            yield self

    def seed(self, calls: list[tuple[int, int]]) -> None:
        import boto3

        s3 = boto3.client("s3")
        now = self.s3_clock.live()
        for bucket in self.buckets:
            create_versioned_bucket(s3, bucket)
            self.seeded[bucket] = seed_bucket(s3, self.s3_clock, bucket, calls, now)
        s3.create_bucket(Bucket=self.work_bucket)

    def state(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Per key: the current version (None when a delete marker is current), every version and marker."""
        import boto3

        s3 = boto3.client("s3")
        keys: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in page.get("Versions") or []:
                entry = keys.setdefault(version["Key"], {"current": None, "versions": [], "markers": []})
                entry["versions"].append(version["VersionId"])
                if version["IsLatest"]:
                    entry["current"] = version["VersionId"]
            for marker in page.get("DeleteMarkers") or []:
                entry = keys.setdefault(marker["Key"], {"current": None, "versions": [], "markers": []})
                entry["markers"].append(marker["VersionId"])
        return keys

    def scratch_keys(self) -> list[str]:
        """What the drill's recordings check left in the work bucket's scratch prefix (nothing, when it cleaned up)."""
        import boto3

        from restore_runbook.contract import DRILL_SCRATCH_PREFIX

        s3 = boto3.client("s3")
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.work_bucket, Prefix=DRILL_SCRATCH_PREFIX):
            keys += [item["Key"] for item in page.get("Contents") or []]
        return keys

    def report(self) -> dict[str, Any]:
        return {
            "drill_scratch": self.scratch_keys(),
            "recordings": {
                bucket: {
                    "seeded_versions": seeded.versions,
                    "seeded_markers": seeded.markers,
                    "keys": len(seeded.keys),
                    "bad_deploy_at": (self.s3_clock.live() - BAD_DEPLOY_AGO).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                for bucket, seeded in self.seeded.items()
            },
        }
