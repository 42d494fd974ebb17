"""An SNS publish that fails, for the tests of end notices (journal/notice.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from restore_runbook.journal import notice


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)


def publish_throttled(**message: Any) -> bool:
    raise throttled("Publish")


@contextmanager
def publish_fails(monkeypatch: pytest.MonkeyPatch, failing: Any = publish_throttled) -> Iterator[None]:
    """Every publish inside raises as `failing` does, and so must the block; publishing works again after it."""
    real_notify = notice.notify
    monkeypatch.setattr(notice, "notify", failing)
    try:
        with pytest.raises(ClientError):
            yield
    finally:
        monkeypatch.setattr(notice, "notify", real_notify)
