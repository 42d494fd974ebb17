"""`restorectl start / history / status` against a deployment emulated by moto: exit codes and messages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from restorectl import start as start_module
from restorectl.cli import main

pytestmark = pytest.mark.workflow

ROLE = "arn:aws:iam::123456789012:role/irisx-restore-states"
SUCCEEDS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"snapshot_id": "irisx-manual-1"}, "End": True}}}
FAILS = {
    "StartAt": "Refuse",
    "States": {"Refuse": {"Type": "Fail", "Error": "InvalidInput", "Cause": "reason must be one of pre-migration, bulk-operation"}},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with Step Functions executing definitions; the wait loop's sleeps are tiny and counted."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sleeps: list[float] = []

    def tiny_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(0.01)

    monkeypatch.setattr(start_module, "SLEEP", tiny_sleep)
    # moto's CloudFormation needs extras this project does not install; CloudFormation answers as AWS
    # does (stubbed): no such stack, unless a test deploys outputs with `stack_with_outputs`.
    monkeypatch.setattr(start_module, "client", _client_with_cloudformation(start_module.client, STACKS))
    STACKS.clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        import boto3

        yield boto3.client("stepfunctions"), sleeps


STACKS: dict[str, dict[str, str]] = {}


def _client_with_cloudformation(make_client: Any, stacks: dict[str, dict[str, str]]) -> Any:
    from datetime import datetime, timezone

    from botocore.stub import Stubber

    def client(service: str, region: str | None = None) -> Any:
        made = make_client(service, region)
        if service != "cloudformation":
            return made
        stubber = Stubber(made)
        for name, outputs in stacks.items():
            stubber.add_response(
                "describe_stacks",
                {
                    "Stacks": [
                        {
                            "StackName": name,
                            "CreationTime": datetime.now(timezone.utc),
                            "StackStatus": "CREATE_COMPLETE",
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                        }
                    ]
                },
                {"StackName": name},
            )
        if not stacks:
            stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id irisx-restore-runbook does not exist", 400)
        stubber.activate()
        return made

    return client


def deploy(sfn: Any, name: str, definition: dict[str, Any]) -> str:
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]


def test_start_wait_exits_0_on_success_and_prints_the_result_as_rehearse_does_without_world(aws, capsys):
    sfn, _ = aws
    deploy(sfn, "irisx-restore-snapshot", SUCCEEDS)

    code = main(["start", "snapshot", "--input", '{"reason": "manual"}', "--wait", "--json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"workflow", "status", "output", "error", "cause", "path"}
    assert (result["workflow"], result["status"], result["output"]) == ("snapshot", "SUCCEEDED", {"snapshot_id": "irisx-manual-1"})
    assert result["path"] == [{"state": "Done", "type": "Pass", "error": None}]
    assert "console: https://console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/arn:aws:states:" in err


def test_start_wait_exits_1_on_failure_and_prints_error_and_cause(aws, capsys):
    sfn, _ = aws
    deploy(sfn, "irisx-restore-snapshot", FAILS)

    code = main(["start", "snapshot", "--input", '{"reason": "yolo"}', "--wait"])

    _, err = capsys.readouterr()
    assert code == 1
    assert "snapshot: FAILED" in err
    assert "error: InvalidInput" in err
    assert "cause: reason must be one of pre-migration, bulk-operation" in err


def test_start_finds_the_state_machine_by_the_stacks_output_before_its_name(aws, capsys):
    sfn, _ = aws
    arn = deploy(sfn, "renamed-by-someone", SUCCEEDS)
    deploy(sfn, "irisx-restore-snapshot", FAILS)  # the name fallback would fail; the output must win
    STACKS["irisx-restore-runbook"] = {"SnapshotStateMachineArn": arn, "RestoreStateMachineArn": "arn:aws:states:x"}

    code = main(["start", "snapshot", "--input", "{}", "--wait", "--json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["output"] == {"snapshot_id": "irisx-manual-1"}
    assert ":execution:renamed-by-someone:" in err


def test_start_without_a_deployed_state_machine_is_a_usage_error_with_a_message(aws, capsys):
    code = main(["start", "snapshot", "--input", '{"reason": "manual"}', "--wait"])

    _, err = capsys.readouterr()
    assert code == 2
    assert "no deployed state machine for workflow 'snapshot'" in err
    assert "no state machine is named 'irisx-restore-snapshot'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "snapshto", "--input", "{}"], "unknown workflow 'snapshto'"),
        (["start", "snapshot", "--input", "{reason: manual}"], "--input is not valid JSON"),
        (["start", "snapshot", "--timeout", "0"], "is not a positive number of seconds"),
        (["history", "--limit", "0"], "is not a positive whole number"),
    ],
)
def test_a_bad_start_command_line_exits_2(aws, capsys, args, message):
    code = main(args)

    assert code == 2
    assert message in capsys.readouterr().err


def test_start_wait_gives_up_at_the_timeout_with_a_growing_bounded_backoff(aws, capsys, monkeypatch):
    sfn, sleeps = aws
    deploy(sfn, "irisx-restore-snapshot", SUCCEEDS)
    # Given an execution that stays RUNNING, and a clock that advances by each sleep
    now = [0.0]
    monkeypatch.setattr(start_module, "MONOTONIC", lambda: now[0])
    monkeypatch.setattr(start_module, "SLEEP", lambda seconds: (sleeps.append(seconds), now.__setitem__(0, now[0] + seconds)))
    monkeypatch.setattr(start_module, "follow", _follow_running_execution(start_module.follow))

    code = main(["start", "snapshot", "--input", "{}", "--wait", "--timeout", "120"])

    assert code == 1
    assert "still RUNNING after 120 s" in capsys.readouterr().err
    assert sleeps[:4] == [2.0, 3.0, 4.5, 6.75]
    assert max(sleeps) <= start_module.MAX_WAIT_SECONDS
    assert sum(sleeps) <= 120


def _follow_running_execution(follow: Any) -> Any:
    class Running:
        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            return {"status": "RUNNING", "executionArn": executionArn}

    def patched(sfn: Any, execution_arn: str, **kwargs: Any) -> dict[str, Any]:
        return follow(Running(), execution_arn, **kwargs)

    return patched


def _journal(records: list[dict[str, Any]]) -> None:
    import boto3

    from restorectl.emulated_journal import table_definition

    boto3.client("dynamodb").create_table(**table_definition("irisx-restore-journal"))
    table = boto3.resource("dynamodb").Table("irisx-restore-journal")
    for record in records:
        table.put_item(Item=record)


def _run(workflow: str, started: str, outcome: str, **extra: Any) -> dict[str, Any]:
    sk = f"{started}#{workflow}-{started[-9:-1].replace(':', '')}"
    return {
        "pk": f"WORKFLOW#{workflow}",
        "sk": sk,
        "gsi1pk": "EXECUTION",
        "gsi1sk": sk,
        "workflow": workflow,
        "started_at": started,
        "outcome": outcome,
        "execution_name": sk.split("#")[1],
        "requested_by": "ci",
        "duration_seconds": 600,
        **extra,
    }


def test_history_and_status_read_the_journal(aws, capsys):
    _journal(
        [
            _run(
                "snapshot",
                "2025-11-01T10:00:00Z",
                "SUCCEEDED",
                result={"reason": "pre-migration", "snapshot_id": "irisx-pre-migration-old"},
            ),
            _run(
                "snapshot",
                "2025-11-02T10:00:00Z",
                "SUCCEEDED",
                result={"reason": "pre-migration", "snapshot_id": "irisx-pre-migration-new"},
            ),
            _run("snapshot", "2025-11-02T11:00:00Z", "FAILED", error="SnapshotFailed", result=None),
            _run("restore", "2025-11-02T12:00:00Z", "RUNNING"),
            {
                "pk": "LOCK#rds:irisx-prod-rds-postgres",
                "sk": "LOCK",
                "gsi1pk": "LOCK",
                "gsi1sk": "rds:irisx-prod-rds-postgres",
                "resource": "rds:irisx-prod-rds-postgres",
                "holder": "arn:aws:states:us-east-1:123456789012:execution:x:restore-1200",
                "workflow": "restore",
                "acquired_at": "2025-11-02T12:00:05Z",
                "requested_by": "ana",
            },
        ]
    )

    assert main(["history", "--limit", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["STARTED", "WORKFLOW", "OUTCOME", "DURATION"]
    assert [line.split()[1] for line in table[1:]] == ["restore", "snapshot"]  # newest first, two rows

    assert main(["history", "--workflow", "snapshot", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["outcome"] for r in runs] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]

    assert main(["status", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert [lock["holder"].rsplit(":", 1)[-1] for lock in state["locks"]] == ["restore-1200"]
    assert state["last_runs"]["snapshot"]["outcome"] == "FAILED"
    assert state["last_snapshot_by_reason"]["pre-migration"]["result"]["snapshot_id"] == "irisx-pre-migration-new"

    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "irisx-pre-migration-new" in text and "restore-1200" in text
    assert "rds:irisx-prod-rds-postgres" in text


def test_history_without_a_journal_table_is_a_usage_error(aws, capsys):
    assert main(["history"]) == 2
    assert "the journal table 'irisx-restore-journal' was not found" in capsys.readouterr().err


def test_unlock_releases_a_lock_kept_for_recovery_once_its_holder_has_ended_and_says_why_it_was_kept(aws, capsys):
    kept = {
        "pk": "LOCK#rds:irisx-prod-rds-postgres",
        "sk": "LOCK",
        "gsi1pk": "LOCK",
        "gsi1sk": "rds:irisx-prod-rds-postgres",
        "resource": "rds:irisx-prod-rds-postgres",
        # an execution Step Functions does not know (long ended): not running
        "holder": "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-in-place-restore:gone",
        "workflow": "in-place-restore",
        "acquired_at": "2025-11-02T12:00:05Z",
        "requested_by": "ana",
        "needs_recovery": "it stopped during the swap: the app may still be STOPPED on every API host",
    }
    _journal([kept])

    assert main(["unlock", "rds:irisx-prod-rds-postgres"]) == 0
    out = capsys.readouterr().out
    assert "released the lock on irisx-prod-rds-postgres held by gone" in out
    assert "it had been kept because: it stopped during the swap" in out

    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["locks"] == []
    assert main(["unlock", "rds:irisx-prod-rds-postgres", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["released"] is False
