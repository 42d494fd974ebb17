"""S3 ARNs for the recordings buckets, written out from settings like the RDS ARNs."""

from __future__ import annotations

from stacks.permissions.rds import partition_of
from stacks.settings import StackSettings


def bucket_arn(settings: StackSettings, bucket: str) -> str:
    return f"arn:{partition_of(settings.region)}:s3:::{bucket}"


def objects_arn(settings: StackSettings, bucket: str) -> str:
    return f"{bucket_arn(settings, bucket)}/*"
