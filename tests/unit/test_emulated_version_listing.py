"""The rehearsal's faster ListObjectVersions answers exactly what moto's own does, page by page."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from restorectl.emulated_recordings import create_versioned_bucket, fast_version_listing

pytestmark = pytest.mark.unit

BUCKET = "irisx-recordings"


def pages(s3: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page, as the planner pages (KeyMarker and VersionIdMarker from the previous page)."""
    answers, marker = [], {}
    while True:
        page = s3.list_object_versions(Bucket=BUCKET, **{**kwargs, **marker})
        answers.append(
            {k: page.get(k) for k in ("Versions", "DeleteMarkers", "CommonPrefixes", "IsTruncated", "NextKeyMarker", "NextVersionIdMarker")}
        )
        if not page.get("IsTruncated"):
            return answers
        marker = {
            "KeyMarker": page["NextKeyMarker"],
            **({"VersionIdMarker": page["NextVersionIdMarker"]} if page.get("NextVersionIdMarker") else {}),
        }


@pytest.mark.parametrize(
    "listing",
    [
        {"MaxKeys": 3},
        {"MaxKeys": 4, "Prefix": "recordings/2/"},
        {"MaxKeys": 1000},
        {"MaxKeys": 2, "Delimiter": "/", "Prefix": "recordings/"},
        {"MaxKeys": 5, "Prefix": "recordings/1/7.wav"},
        {"MaxKeys": 2, "KeyMarker": "recordings/2/b.wav"},
    ],
    ids=["small-pages", "prefix", "one-page", "delimiter", "one-key", "key-marker-only"],
)
def test_the_fast_listing_pages_exactly_like_motos(listing: dict[str, Any]) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        create_versioned_bucket(s3, BUCKET)
        for tenant in (1, 2, 3):
            for name in ("7.wav", "a.wav", "b.wav", "c d.wav", "caf\u00e9+1.wav"):
                key = f"recordings/{tenant}/{name}"
                for revision in range(1 + (tenant + len(name)) % 3):
                    s3.put_object(Bucket=BUCKET, Key=key, Body=f"{key}:{revision}".encode())
                if name.startswith("b"):
                    s3.delete_object(Bucket=BUCKET, Key=key)
        moto_answers = pages(s3, **listing)
        with fast_version_listing():
            fast_answers = pages(s3, **listing)
            # other listings are untouched while it is installed
            assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 12

    assert fast_answers == moto_answers
    assert sum(len(p["Versions"] or []) + len(p["DeleteMarkers"] or []) + len(p["CommonPrefixes"] or []) for p in moto_answers) > 0
