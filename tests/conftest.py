"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from restorectl.localpg import LocalPostgres

# Every rehearsed execution's history is recorded, and the workflow coverage printed at the end.
pytest_plugins = ["tests.workflow_coverage"]


@pytest.fixture(scope="session")
def local_pg() -> Iterator[LocalPostgres]:
    """One throwaway PostgreSQL cluster for the whole session; tests make their own databases in it."""
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(autouse=True)
def no_real_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may ever reach a real AWS account, whatever the developer's shell holds."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(autouse=True)
def fresh_aws_clients() -> Iterator[None]:
    """The handlers keep their boto3 clients and resources per container; each test is a new container."""
    from restore_runbook.common import aws

    aws.client.cache_clear()
    aws.resource.cache_clear()
    yield
    aws.client.cache_clear()
    aws.resource.cache_clear()
