"""Workflow tests: the real ASL, the real handlers, emulated AWS, a real PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from restorectl.harness import Rehearsal, RehearsalOptions
from restorectl.lambda_bridge import Injection
from restorectl.localpg import LocalPostgres

SOURCE = "irisx-prod-rds-postgres"


@pytest.fixture
def rehearsal(local_pg: LocalPostgres) -> Iterator[Callable[..., Rehearsal]]:
    """Build an emulated IRISX world; call it with RehearsalOptions fields, `inject=["STATE=ERROR:N"]`."""
    with contextlib.ExitStack() as stack:

        def make(inject: list[str] | None = None, **options: Any) -> Rehearsal:
            injections = [Injection.parse(text) for text in inject or []]
            return stack.enter_context(Rehearsal(local_pg, RehearsalOptions(injections=injections, **options)))

        yield make


def instance_ids(world: dict[str, Any]) -> list[str]:
    return sorted(i["id"] for i in world["db_instances"])
