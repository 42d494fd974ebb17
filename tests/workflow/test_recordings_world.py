"""The rehearsal's recordings match its database: every call's `recording_key` is where the
recordings generator put that call's recording, as in production."""

from __future__ import annotations

import boto3
import pytest

from restorectl.emulated_recordings import BUCKETS, ODD_NAMES, wav_body
from tests.workflow.conftest import SOURCE

pytestmark = pytest.mark.workflow


def test_every_seeded_calls_recording_key_is_its_recording_in_both_buckets(rehearsal):
    world = rehearsal(calls_rows=2000, recordings=40)
    conn = world.pg.connect(world.rds.instance_db[SOURCE])
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE recording_key <> 'recordings/' || tenant_id || '/' || id || '.wav') "
                "FROM calls WHERE recording_key IS NOT NULL"
            )
            recorded, misnamed = cursor.fetchone()
            cursor.execute("SELECT id, recording_key FROM calls WHERE recording_key IS NOT NULL ORDER BY id LIMIT 37")
            first_recorded = dict(cursor.fetchall())
            cursor.execute("SELECT max(id) FROM calls")
            (last_call,) = cursor.fetchone()
    finally:
        conn.close()
    assert recorded > 37 and misnamed == 0

    s3 = boto3.client("s3")
    for bucket in BUCKETS:
        seeded = world.recordings.seeded[bucket]
        named_by_calls = [key for key in seeded.keys if key.rsplit("/", 1)[-1] not in ODD_NAMES]
        # The 37 recordings the generator made for calls are exactly those calls' recording_keys ...
        assert sorted(named_by_calls) == sorted(first_recorded.values())
        for call_id, key in first_recorded.items():
            assert seeded.calls[key] == call_id
            versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
            bodies = [s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read() for v in versions["Versions"]]
            assert bodies and all(body.startswith(b"RIFF") for body in bodies)
            assert wav_body(call_id, "v1") in bodies or seeded.history[key] == "created-after"
        # ... and the three odd names belong to no call row.
        odd = [key for key in seeded.keys if key not in named_by_calls]
        assert len(odd) == len(ODD_NAMES) and all(seeded.calls[key] > last_call for key in odd)
