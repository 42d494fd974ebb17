"""The in-place restore's read of where the hosts point before the stop, and what its causes say about the copy's writes.

The SSM answers are given as GetCommandInvocation returns them (status, stdout, stderr), so each
verdict is checked against the exact words of ssm/app_control.sh; the workflow tests run the script.
"""

from __future__ import annotations

from typing import Any

import pytest

from restore_runbook.common.errors import UnsafeOperation
from restore_runbook.hosts import ssm
from restore_runbook.inplace import serving
from restore_runbook.inplace.explain import after_rename_back, writes_on_copy
from restore_runbook.settings import RunbookSettings

pytestmark = pytest.mark.unit

PRODUCTION = "irisx-prod-rds-postgres"
ENDPOINT = f"{PRODUCTION}.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
PLAN = {
    "production_instance": PRODUCTION,
    "production_endpoint": {"address": ENDPOINT, "port": 5432},
    "temporary_instance": f"{PRODUCTION}-inplace-20251102-120000",
    "final_snapshot": f"{PRODUCTION}-pre-restore-20251102-120000",
    "hosts": ["i-1", "i-2"],
}
SETTINGS = RunbookSettings.from_env({"SOURCE_INSTANCE": PRODUCTION})


def progress(hosts: tuple[str, ...] = ("i-1", "i-2"), attempts: int = 0) -> dict[str, Any]:
    return {
        "hosts": list(hosts),
        "commands": [{"command_id": "c-1", "document": "irisx-restore-app-control", "hosts": list(hosts)}],
        "attempts": attempts,
        "state": "pending",
    }


def answering(monkeypatch: pytest.MonkeyPatch, answers: dict[str, dict[str, str]]) -> None:
    monkeypatch.setattr(ssm, "invocation", lambda command_id, host: {"stdout": "", "stderr": "", **answers[host]})


def test_every_host_on_production_in_any_case_is_done_even_when_the_app_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    answering(
        monkeypatch,
        {
            "i-1": {"status": "Success", "stdout": f"db_host={ENDPOINT.upper()}\nhealth_status=200\n"},
            # the incident: the app fails its health check, which exits non-zero after db_host was printed
            "i-2": {
                "status": "Failed",
                "stdout": f"db_host={ENDPOINT}\nhealth_status=503\n",
                "stderr": "app_control: GET http://localhost:3000/health answered HTTP 503\n",
            },
        },
    )

    checked = serving.check_db_hosts(progress(), PLAN, SETTINGS)

    assert checked["state"] == "done"
    assert checked["db_hosts"] == {"i-1": ENDPOINT.upper(), "i-2": ENDPOINT}


def test_a_host_elsewhere_and_hosts_whose_db_host_is_unknown_are_each_named_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    answering(
        monkeypatch,
        {
            "i-1": {"status": "Success", "stdout": "db_host=irisx-copy.bbbbbbbbbb.us-east-1.rds.amazonaws.com\n"},
            "i-2": {
                "status": "Success",
                "stdout": "db_host=\nhealth_status=200\n",
                "stderr": "app_control: /home/ubuntu/irisx-backend/.env is a symbolic link; not following it, db_host unknown\n",
            },
            "i-3": {"status": "Failed", "stdout": "", "stderr": "some noise\napp_control: APP_NAME is not a pm2 process name\n"},
            "i-4": {"status": "Success", "stdout": "db_host=\n"},
        },
    )

    with pytest.raises(UnsafeOperation) as refused:
        serving.check_db_hosts(progress(("i-1", "i-2", "i-3", "i-4")), PLAN, SETTINGS)

    cause = str(refused.value)
    assert "i-1: DB_HOST=irisx-copy.bbbbbbbbbb.us-east-1.rds.amazonaws.com" in cause
    assert "i-2: DB_HOST unknown (/home/ubuntu/irisx-backend/.env is a symbolic link; not following it, db_host unknown)" in cause
    assert "i-3: DB_HOST unknown (the command Failed: app_control: APP_NAME is not a pm2 process name)" in cause
    assert "i-4: DB_HOST unknown (its .env has no DB_HOST line (or cannot be read))" in cause
    assert f"production's endpoint {ENDPOINT}" in cause and "The app was not stopped and production was not renamed" in cause


def test_a_read_still_running_waits_then_after_the_last_attempt_is_refused_naming_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    answering(monkeypatch, {"i-1": {"status": "Success", "stdout": f"db_host={ENDPOINT}\n"}, "i-2": {"status": "InProgress"}})

    waiting = serving.check_db_hosts(progress(), PLAN, SETTINGS)
    assert (waiting["state"], waiting["attempts"], waiting["next_wait_seconds"]) == ("pending", 1, SETTINGS.command_poll_seconds)

    with pytest.raises(UnsafeOperation, match=r"i-2: DB_HOST unknown \(the read was still InProgress after \d+ checks\)") as refused:
        serving.check_db_hosts(progress(attempts=SETTINGS.command_poll_max_attempts - 1), PLAN, SETTINGS)
    assert "i-1" not in str(refused.value)


def test_no_host_running_any_more_is_refused_before_any_command_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssm, "serving_now", lambda planned, settings: ([], list(planned)))
    sent: list[Any] = []
    monkeypatch.setattr(ssm, "app_control", lambda *args: sent.append(args))

    with pytest.raises(UnsafeOperation, match="none of the API hosts the run began with \\(i-1, i-2\\) is running"):
        serving.read_db_hosts(PLAN, SETTINGS)
    assert sent == []


def test_the_read_goes_to_the_hosts_that_serve_now_and_expects_production_on_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssm, "serving_now", lambda planned, settings: (["i-1", "i-9"], ["i-2"]))
    monkeypatch.setattr(ssm, "find_stopped_hosts", lambda settings: ["i-7"])
    monkeypatch.setattr(ssm, "app_control", lambda hosts, action, settings, comment: {"command_id": "c", "hosts": hosts, "action": action})

    sent = serving.read_db_hosts(PLAN, SETTINGS)

    assert sent["hosts"] == ["i-1", "i-9"] and sent["hosts_gone"] == ["i-2"]
    # a warm pool's host, stopped in EC2, is not read (no command reaches it) but recorded for the rename's check
    assert sent["ec2_stopped_hosts"] == ["i-7"]
    assert [c["action"] for c in sent["commands"]] == ["health"]
    assert sent["expect"] == {"i-1": ENDPOINT, "i-9": ENDPOINT}


START = {"sent_at": "2025-11-02T12:30:00Z", "hosts": ["i-1", "i-2"]}


class TestWritesOnTheCopy:
    def test_a_failure_before_the_start_says_nothing_about_writes(self) -> None:
        assert writes_on_copy(PLAN, None, None, None) is None
        outcome = after_rename_back({"Error": "RenameFailed", "Cause": "refused"}, PLAN, None)
        assert "writes" not in outcome["cause"]

    def test_a_confirmed_stop_says_the_writes_between_the_start_and_the_stop_are_in_the_named_copy(self) -> None:
        stop = {"sent_at": "2025-11-02T12:35:00Z", "hosts": ["i-1", "i-2"], "results": {}}
        outcome = after_rename_back({"Error": "HealthCheckFailed", "Cause": "not healthy"}, PLAN, None, start=START, stop=stop)
        assert outcome["error"] == "HealthCheckFailed"
        assert (
            "writes it took between the start (2025-11-02T12:30:00Z) and the stop (2025-11-02T12:35:00Z) are in the copy "
            f"{PLAN['temporary_instance']} only, not in production"
        ) in outcome["cause"]

    def test_a_stop_check_that_failed_names_the_hosts_not_reported_stopped_before_the_renames(self) -> None:
        stop = {"hosts": ["i-1", "i-2"], "results": {"i-1": {"status": "Success"}, "i-2": {"status": "InProgress"}}}
        failure = {"Error": "RollbackFailed", "Cause": "the rollback command failed on i-2"}
        said = writes_on_copy(PLAN, START, stop, failure)
        assert said is not None
        assert "could not be confirmed on i-2 (RollbackFailed: the rollback command failed on i-2)" in said
        assert "i-1" not in said.split("could not be confirmed on", 1)[1].split("(", 1)[0]

    def test_a_stop_never_sent_names_every_host_the_start_started(self) -> None:
        said = writes_on_copy(PLAN, START, None, {"Error": "CutoverFailed", "Cause": "ssm refused"})
        assert said is not None and "any API host (i-1, i-2): the stop command was not sent" in said
