"""The work bucket: the plan, the per-batch results and the summary, as JSON objects.

plans/<execution>/part-00001.json   one planner invocation's batches (a JSON array of arrays)
plans/<execution>/report-00001.json the same invocation's keys left as they are, and why
plans/<execution>/batches.json      every batch, the Distributed Map's ItemReader input
results/<execution>/<batch>.json    each batch's outcome per entry, written by the batch itself
results/<execution>/crashed-<batch>.json  why a batch's child failed (its error and cause), written by the child's catcher
results/<execution>/summary.json    the aggregation: totals and the full lists of skipped and failed keys
"""

from __future__ import annotations

import json
from typing import Any

from restore_runbook.common import aws


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def plan_prefix(execution_arn: str) -> str:
    return f"plans/{execution_name(execution_arn)}/"


def results_prefix(execution_arn: str) -> str:
    return f"results/{execution_name(execution_arn)}/"


def result_key(prefix: str, batch: int) -> str:
    return f"{prefix}{batch:06d}.json"


def crash_key(prefix: str, batch: int) -> str:
    return f"{prefix}crashed-{batch:06d}.json"


def put_json(bucket: str, key: str, value: Any) -> str:
    aws.client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(value, separators=(",", ":")).encode(), ContentType="application/json"
    )
    return f"s3://{bucket}/{key}"


def put_raw(bucket: str, key: str, body: bytes) -> str:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return f"s3://{bucket}/{key}"


def get_raw(bucket: str, key: str) -> bytes | None:
    try:
        body: bytes = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if aws.error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    return body


def get_json(bucket: str, key: str) -> Any:
    raw = get_raw(bucket, key)
    return None if raw is None else json.loads(raw)
