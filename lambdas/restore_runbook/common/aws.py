"""boto3 clients shared by the steps of one Lambda container.

Retries of throttled or flaky AWS calls are botocore's job (standard mode, bounded); the state
machine's own Retry covers the Lambda service itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


@cache
def resource(service: str) -> Any:
    """boto3's resource layer (DynamoDB's Python-to-attribute conversion), built once per container as the clients are."""
    return boto3.resource(service, config=RETRY_CONFIG)  # type: ignore[call-overload]


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError, or '' for anything else."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
