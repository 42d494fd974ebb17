"""One recordings restore per bucket and prefix: a prefix that contains, or lies in, a held one refuses.

The prefixes held on a bucket live in one registry item (journal/prefix_registry.py), read
consistently and written by compare-and-swap on its version; these tests run it on moto's DynamoDB
and make the race between two takers deterministic by running one taker inside the other's
read-then-write window.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from restore_runbook.common.errors import OperationInProgress
from restore_runbook.journal import lock as journal_lock
from restore_runbook.journal import prefix_registry
from restore_runbook.journal import table as journal
from restore_runbook.journal.records import finish, record_start
from restore_runbook.recordings import locks
from restorectl.emulated_journal import table_definition

pytestmark = pytest.mark.unit

SETTINGS = journal.JournalSettings(table_name="journal", topic_arn="")
PREFIX = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-recordings-restore:"
MINE, OTHER, THIRD = PREFIX + "mine", PREFIX + "other", PREFIX + "third"
BUCKET = "irisx-recordings"
HELD = f"s3:{BUCKET}/recordings/7/"
ASL = Path(__file__).resolve().parents[2] / "statemachines" / "recordings-restore.asl.json"


def take(execution_arn: str, resource: str) -> dict[str, Any]:
    """What a recordings restore does before it plans: TakeLock, then CheckOverlappingRestores."""
    journal_lock.take_lock(
        workflow="recordings-restore", execution_arn=execution_arn, resource=resource, requested_by="x", settings=SETTINGS
    )
    return locks.refuse_overlapping(resource, execution_arn, SETTINGS, requested_by=f"on-call for {execution_arn[-5:]}")


def registry(bucket: str = BUCKET) -> prefix_registry.Registry:
    return prefix_registry.read(bucket, SETTINGS)


def holders(bucket: str = BUCKET) -> dict[str, str]:
    return {resource: entry["holder"] for resource, entry in registry(bucket).holders.items()}


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The executions Step Functions reports RUNNING; every other one has ended."""
    now_running = {MINE, OTHER, THIRD}
    monkeypatch.setattr(locks, "_holder_is_running", lambda holder, acquired_at: holder in now_running)
    return now_running


@pytest.fixture
def table() -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb").create_table(**table_definition("journal"))
        yield


@pytest.fixture
def held(table: None, running: set[str]) -> None:
    take(OTHER, HELD)


@pytest.mark.parametrize("prefix", ["recordings/", "recordings/7/", "recordings/7/123.wav", ""])
def test_an_overlapping_prefix_on_the_same_bucket_is_refused(held: None, prefix: str) -> None:
    with pytest.raises(OperationInProgress, match="overlaps") as refused:
        locks.refuse_overlapping(f"s3:irisx-recordings/{prefix}", MINE, SETTINGS)
    assert "other" in str(refused.value) and "requested by on-call for other" in str(refused.value)
    assert holders() == {HELD: OTHER}


@pytest.mark.parametrize("resource", ["s3:irisx-recordings/recordings/8/", "s3:irisx-prod-recordings-672e7c49/recordings/7/"])
def test_a_disjoint_prefix_or_another_bucket_proceeds(held: None, resource: str) -> None:
    assert locks.refuse_overlapping(resource, MINE, SETTINGS)["overlapping"] == 0
    bucket = resource.removeprefix("s3:").split("/")[0]
    assert holders(bucket)[resource] == MINE
    assert holders()[HELD] == OTHER


def test_a_lock_whose_holder_ended_does_not_block(held: None, running: set[str]) -> None:
    running.discard(OTHER)
    assert locks.refuse_overlapping("s3:irisx-recordings/recordings/", MINE, SETTINGS)["overlapping"] == 0


def test_a_stale_holders_entry_is_taken_over_and_dropped(held: None, running: set[str]) -> None:
    # Given the holder of recordings/7/ ended without releasing (its release never ran)
    running.discard(OTHER)

    result = locks.refuse_overlapping(f"s3:{BUCKET}/recordings/", MINE, SETTINGS)

    # Then its entry is gone and ours is the only one
    assert result["took_over_from"] == [HELD]
    assert holders() == {f"s3:{BUCKET}/recordings/": MINE}


def test_a_disjoint_entry_stays_beside_a_new_one(held: None) -> None:
    result = take(MINE, f"s3:{BUCKET}/recordings/8/")

    assert result["held_alongside"] == [HELD] and result["took_over_from"] == []
    assert holders() == {HELD: OTHER, f"s3:{BUCKET}/recordings/8/": MINE}


def test_a_retried_check_finds_its_own_entry_and_holds_it_once(held: None) -> None:
    take(MINE, f"s3:{BUCKET}/recordings/8/")
    again = locks.refuse_overlapping(f"s3:{BUCKET}/recordings/8/", MINE, SETTINGS)

    assert again["overlapping"] == 0
    assert holders() == {HELD: OTHER, f"s3:{BUCKET}/recordings/8/": MINE}


# -- the race made deterministic ------------------------------------------------------------------


def run_inside_the_window(monkeypatch: pytest.MonkeyPatch, interloper: Callable[[], Any], times: int = 1) -> list[Any]:
    """Run `interloper` right after a taker's consistent read and before its conditional write, `times` times."""
    original = prefix_registry.read
    outcomes: list[Any] = []

    def read_then_interlope(bucket: str, settings: journal.JournalSettings) -> prefix_registry.Registry:
        seen = original(bucket, settings)
        if len(outcomes) < times:
            monkeypatch.setattr(prefix_registry, "read", original)
            try:
                outcomes.append(interloper())
            except OperationInProgress as exc:
                outcomes.append(exc)
            monkeypatch.setattr(prefix_registry, "read", read_then_interlope)
        return seen

    monkeypatch.setattr(prefix_registry, "read", read_then_interlope)
    return outcomes


def test_a_taker_reading_after_the_first_write_sees_it_and_refuses(table: None, running: set[str]) -> None:
    # Given restore A of recordings/ has written its entry
    take(OTHER, f"s3:{BUCKET}/recordings/")

    # When restore B of recordings/t1/ reads the registry after that write
    with pytest.raises(OperationInProgress, match="overlaps"):
        take(MINE, f"s3:{BUCKET}/recordings/t1/")

    # Then only A holds a prefix
    assert holders() == {f"s3:{BUCKET}/recordings/": OTHER}


def test_a_taker_reading_before_the_first_write_loses_its_write_reads_again_and_refuses(
    table: None, running: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given restore B of recordings/t1/ has read the registry (empty) and restore A of recordings/
    # writes its entry before B writes: the exact interleaving an index read could not see
    journal_lock.take_lock(
        workflow="recordings-restore", execution_arn=MINE, resource=f"s3:{BUCKET}/recordings/t1/", requested_by="x", settings=SETTINGS
    )
    first = run_inside_the_window(monkeypatch, lambda: take(OTHER, f"s3:{BUCKET}/recordings/"))

    # When B goes on to write what it read
    with pytest.raises(OperationInProgress, match="overlaps") as refused:
        locks.refuse_overlapping(f"s3:{BUCKET}/recordings/t1/", MINE, SETTINGS)

    # Then A's write came first, B's conditional write failed, and B's second read saw A and refused
    assert first[0]["resource"] == f"s3:{BUCKET}/recordings/"
    assert "other" in str(refused.value)
    assert holders() == {f"s3:{BUCKET}/recordings/": OTHER}


def test_a_disjoint_taker_reading_before_the_first_write_is_let_through_beside_it(
    table: None, running: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same interleaving with prefixes that do not overlap (recordings/t1/ and recordings/t2/)
    first = run_inside_the_window(monkeypatch, lambda: take(OTHER, f"s3:{BUCKET}/recordings/t2/"))

    result = take(MINE, f"s3:{BUCKET}/recordings/t1/")

    # Then B wrote on its second attempt and neither entry was lost
    assert first[0]["attempts"] == 1 and result["attempts"] == 2
    assert holders() == {f"s3:{BUCKET}/recordings/t2/": OTHER, f"s3:{BUCKET}/recordings/t1/": MINE}


def test_a_taker_of_the_containing_prefix_reading_before_the_inner_ones_write_refuses(
    table: None, running: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # B (recordings/) reads, then A (recordings/t1/) reads and writes, then B writes: B loses and refuses, A holds
    interloper = run_inside_the_window(monkeypatch, lambda: take(OTHER, f"s3:{BUCKET}/recordings/t1/"))

    with pytest.raises(OperationInProgress):
        take(MINE, f"s3:{BUCKET}/recordings/")

    assert [type(o) for o in interloper] == [dict]
    assert holders() == {f"s3:{BUCKET}/recordings/t1/": OTHER}


def test_a_release_inside_the_window_makes_the_taker_read_again_and_not_bring_the_entry_back(
    held: None, running: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given B of recordings/8/ reads while A (recordings/7/) still holds, and A releases before B writes
    run_inside_the_window(monkeypatch, lambda: journal_lock.release_lock(execution_arn=OTHER, resource=HELD, settings=SETTINGS))

    result = take(MINE, f"s3:{BUCKET}/recordings/8/")

    # Then B's write on what it first read failed (the release changed the version), and A's released entry stays released
    assert result["attempts"] == 2
    assert holders() == {f"s3:{BUCKET}/recordings/8/": MINE}


def test_conflicts_are_retried_a_bounded_number_of_times_then_refused_by_name(
    table: None, running: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another restore of the same bucket writes the registry inside every window this taker opens
    others = iter(f"s3:{BUCKET}/other/{n}/" for n in range(100))
    interloper = run_inside_the_window(monkeypatch, lambda: locks.refuse_overlapping(next(others), THIRD, SETTINGS), times=locks.ATTEMPTS)

    with pytest.raises(OperationInProgress, match=f"changed {locks.ATTEMPTS} times"):
        locks.refuse_overlapping(f"s3:{BUCKET}/recordings/", MINE, SETTINGS)

    assert len(interloper) == locks.ATTEMPTS
    assert MINE not in holders().values()


def test_a_conflict_short_of_the_bound_is_retried_to_success(table: None, running: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    others = iter(f"s3:{BUCKET}/other/{n}/" for n in range(100))
    run_inside_the_window(monkeypatch, lambda: locks.refuse_overlapping(next(others), THIRD, SETTINGS), times=locks.ATTEMPTS - 1)

    result = locks.refuse_overlapping(f"s3:{BUCKET}/recordings/", MINE, SETTINGS)

    assert result["attempts"] == locks.ATTEMPTS
    assert holders()[f"s3:{BUCKET}/recordings/"] == MINE


# -- release on every ending ------------------------------------------------------------------------


def started(execution_arn: str) -> str:
    at = "2025-11-02T12:00:00.000Z"
    record_start(workflow="recordings-restore", execution_arn=execution_arn, started_at=at, execution_input={}, settings=SETTINGS)
    return at


@pytest.mark.parametrize(("outcome", "error"), [("SUCCEEDED", None), ("FAILED", "RecordingsRestoreIncomplete")], ids=["success", "failure"])
def test_the_end_record_releases_the_entry_and_leaves_the_others(held: None, outcome: str, error: str | None) -> None:
    mine = f"s3:{BUCKET}/recordings/8/"
    take(MINE, mine)
    version = registry().version

    done = finish(
        workflow="recordings-restore",
        execution_arn=MINE,
        started_at=started(MINE),
        outcome=outcome,
        error=error,
        cause="x" if error else None,
        left_behind="nothing",
        lock_resource=mine,
        details={},
        result=None,
        settings=SETTINGS,
    )

    assert done["lock"] == f"released the lock on s3://{BUCKET}/recordings/8/"
    assert holders() == {HELD: OTHER} and registry().version == version + 1
    # and the exact lock went with it
    assert boto3.resource("dynamodb").Table("journal").get_item(Key={"pk": f"LOCK#{mine}", "sk": "LOCK"}).get("Item") is None


def test_a_release_by_another_execution_leaves_the_entry(held: None) -> None:
    assert prefix_registry.release(HELD, MINE, SETTINGS) is False
    assert journal_lock.release_lock(execution_arn=MINE, resource=HELD, settings=SETTINGS).startswith("lock on")
    assert holders() == {HELD: OTHER}


def test_a_release_whose_lock_went_already_still_releases_the_entry(held: None) -> None:
    boto3.resource("dynamodb").Table("journal").delete_item(Key={"pk": f"LOCK#{HELD}", "sk": "LOCK"})

    said = journal_lock.release_lock(execution_arn=OTHER, resource=HELD, settings=SETTINGS, answered=False)

    assert "from the prefixes held on its bucket" in said
    assert holders() == {}


def test_the_reconciler_of_an_aborted_restore_releases_its_entry(held: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from restore_runbook.journal import abandoned

    # Given a restore that held recordings/7/ and was stopped from outside (no end step of its own)
    monkeypatch.setattr(abandoned, "last_state", lambda arn: "ApplyPlan")
    started(OTHER)
    event = {
        "detail": {
            "status": "ABORTED",
            "executionArn": OTHER,
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:irisx-restore-recordings-restore",
            "startDate": int(datetime(2025, 11, 2, 12, tzinfo=timezone.utc).timestamp() * 1000),
            "input": json.dumps({"bucket": BUCKET, "prefix": "recordings/7/"}),
        }
    }

    done = abandoned.record_abandoned(event, SETTINGS, "irisx-restore-")

    assert done["locks"] == [HELD]
    assert holders() == {}


def test_unlock_by_hand_releases_the_entry_of_the_ended_holder(held: None, running: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_lock, "_holder_is_running", lambda holder: False)

    journal_lock.unlock(resource=HELD, settings=SETTINGS)

    assert holders() == {}


# -- when is a holder proven ended --------------------------------------------------------------------


def described_as(monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | str) -> None:
    class StepFunctions:
        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            if isinstance(answer, str):
                raise ClientError({"Error": {"Code": answer, "Message": answer}}, "DescribeExecution")
            return answer

    monkeypatch.setattr(locks.aws, "client", lambda service: StepFunctions())


def ago(seconds: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("answer", "acquired", "is_running"),
    [
        ({"status": "RUNNING"}, ago(60), True),
        ({"status": "SUCCEEDED"}, ago(60), False),
        ({"status": "ABORTED"}, ago(60), False),
        # DescribeExecution is eventually consistent: a young entry whose holder "does not exist" may be
        # an execution it has not caught up with, so it blocks; one older than any execution can run has ended.
        ("ExecutionDoesNotExist", ago(60), True),
        ("ExecutionDoesNotExist", ago(86400 + 60), False),
        ("InvalidArn", ago(60), False),
    ],
    ids=["running", "succeeded", "aborted", "unknown-young", "unknown-older-than-any-run", "invalid-arn"],
)
def test_a_holder_is_dropped_only_on_proof_that_it_ended(
    monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any] | str, acquired: str, is_running: bool
) -> None:
    described_as(monkeypatch, answer)
    assert locks._holder_is_running(OTHER, acquired) is is_running


def test_any_other_describe_error_is_raised_not_taken_as_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    described_as(monkeypatch, "ThrottlingException")
    with pytest.raises(ClientError):
        locks._holder_is_running(OTHER, ago(60))


def test_the_longest_execution_is_the_workflows_own_timeout() -> None:
    assert locks.LONGEST_EXECUTION == timedelta(seconds=json.loads(ASL.read_text())["TimeoutSeconds"])
