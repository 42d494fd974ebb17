"""One recordings restore per bucket and prefix: a prefix that contains, or lies in, a held one refuses."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from restore_runbook.common.errors import OperationInProgress
from restore_runbook.journal import lock as journal_lock
from restore_runbook.journal import table as journal
from restore_runbook.recordings import locks
from restorectl.emulated_journal import table_definition

pytestmark = pytest.mark.unit

SETTINGS = journal.JournalSettings(table_name="journal", topic_arn="")
MINE = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-recordings-restore:mine"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-recordings-restore:other"


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb").create_table(**table_definition("journal"))
        monkeypatch.setattr(locks, "_holder_is_running", lambda holder: holder == OTHER)
        journal_lock.take_lock(
            workflow="recordings-restore",
            execution_arn=OTHER,
            resource="s3:irisx-recordings/recordings/7/",
            requested_by="x",
            settings=SETTINGS,
        )
        yield


@pytest.mark.parametrize("prefix", ["recordings/", "recordings/7/", "recordings/7/123.wav", ""])
def test_an_overlapping_prefix_on_the_same_bucket_is_refused(held: None, prefix: str) -> None:
    with pytest.raises(OperationInProgress, match="overlaps"):
        locks.refuse_overlapping(f"s3:irisx-recordings/{prefix}", MINE, SETTINGS)


@pytest.mark.parametrize("resource", ["s3:irisx-recordings/recordings/8/", "s3:irisx-prod-recordings-672e7c49/recordings/7/"])
def test_a_disjoint_prefix_or_another_bucket_proceeds(held: None, resource: str) -> None:
    assert locks.refuse_overlapping(resource, MINE, SETTINGS)["overlapping"] == 0


def test_a_lock_whose_holder_ended_does_not_block(held: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "_holder_is_running", lambda holder: False)
    assert locks.refuse_overlapping("s3:irisx-recordings/recordings/", MINE, SETTINGS)["overlapping"] == 0
