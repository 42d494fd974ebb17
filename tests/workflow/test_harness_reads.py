"""The harness reads an execution's history and the journal in process, where the API would spend
most of a test's time serializing them (restorectl/emulated_sfn.py, restorectl/emulated_journal.py).
The workflow tests assert on those readings, so each must be what the API answers."""

from __future__ import annotations

import boto3
import pytest

from restorectl.harness import _all_events
from restorectl.lambda_bridge import Interruption
from tests.workflow.conftest import SOURCE

pytestmark = pytest.mark.workflow

IN_PLACE = {"confirm": SOURCE, "mode": "point-in-time", "requested_by": "on-call: ana"}


def test_a_redriven_executions_history_read_in_process_is_what_get_execution_history_pages_give(rehearsal):
    world = rehearsal(calls_rows=300, restore_minutes=3, snapshot_minutes=2, interruptions=[Interruption("CheckStop", "ABORTED")])
    stopped = world.run("in-place-restore", IN_PLACE)
    redriven = world.redrive(stopped.execution_arn)
    sfn = boto3.client("stepfunctions")

    merged = world.history(stopped.execution_arn)
    assert merged == _all_events(sfn, stopped.execution_arn)
    assert [e["type"] for e in merged].count("ExecutionRedriven") == 1
    assert [e["id"] for e in merged] == list(range(1, len(merged) + 1))
    # The redrive's own run, as the harness followed it: its events, typed and timed as the API gives them.
    (run,) = world.redrives.runs_of(stopped.execution_arn)
    assert redriven.history == _all_events(sfn, run) and redriven.history[-1]["type"] == "ExecutionFailed"


def test_the_journal_read_in_process_is_what_a_consistent_scan_returns(rehearsal):
    world = rehearsal(calls_rows=300, interruptions=[Interruption("CheckStop", "ABORTED")])
    world.run("in-place-restore", IN_PLACE)

    def by_key(items):
        return sorted(items, key=lambda i: (i["pk"], i["sk"]))

    in_process = world.journal._items_in_process()
    assert in_process is not None and any(i["pk"].startswith("LOCK#") for i in in_process), "an execution record and its kept lock"
    assert by_key(in_process) == by_key(world.journal._scanned_items())


def test_a_journal_item_holding_binary_reads_as_the_api_decodes_it(rehearsal):
    world = rehearsal(calls_rows=300)
    boto3.client("dynamodb").put_item(
        TableName=world.journal.table_name, Item={"pk": {"S": "WORKFLOW#probe"}, "sk": {"S": "x"}, "blob": {"B": b"\x00\x01"}}
    )
    assert world.journal._items_in_process() == world.journal._scanned_items()
    (probe,) = [r for r in world.journal.records() if r["pk"] == "WORKFLOW#probe"]
    assert bytes(probe["blob"]) == b"\x00\x01"
