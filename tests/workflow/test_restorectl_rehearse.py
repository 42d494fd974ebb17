"""`python -m restorectl rehearse`: what a person or a script sees on the command line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from restorectl import cli
from restorectl.lambda_bridge import Injection
from restorectl.paths import ROOT

pytestmark = pytest.mark.workflow


def restorectl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restorectl", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def the_one_json_object(stdout: str) -> dict:
    """stdout parsed as JSON: it must be exactly one object, nothing before or after it."""
    result = json.loads(stdout)
    assert isinstance(result, dict)
    return result


def test_rehearse_json_prints_one_object_with_the_result_the_path_and_the_world():
    run = restorectl("rehearse", "restore", "--json", "--rows", "500", "--restore-minutes", "12", "--input", '{"mode": "snapshot"}')

    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert set(result) == {"workflow", "status", "output", "error", "cause", "path", "world"}
    assert (result["workflow"], result["status"], result["error"]) == ("restore", "SUCCEEDED", None)
    assert result["path"][0] == {"state": "RecordRequest", "type": "Pass", "error": None}
    assert {"state": "StartRestore", "type": "Task", "error": None} in result["path"]
    target = result["output"]["target_instance"]
    instances = {i["id"]: i for i in result["world"]["db_instances"]}
    assert instances[target]["status"] == "available"
    assert instances[target]["tags"]["irisx-restore:managed-by"] == "restore-runbook"
    assert {s["type"] for s in result["world"]["db_snapshots"]} == {"automated", "manual"}
    # the states are printed on stderr as they run
    assert "DescribeRestore" in run.stderr


def test_rehearse_exits_1_with_the_error_when_the_workflow_fails():
    run = restorectl(
        "rehearse", "restore", "--json", "--rows", "200", "--inject", "ValidateRestore=ValidationFailed", "--input", '{"mode": "snapshot"}'
    )

    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    assert (result["status"], result["error"]) == ("FAILED", "ValidationFailed")
    assert {"state": "ValidateRestore", "type": "Task", "error": "ValidationFailed"} in result["path"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rehearse", "restroe"], "unknown workflow 'restroe'; known workflows: "),
        (["rehearse", "restore", "--input", "{mode: snapshot}"], "--input is not valid JSON"),
        (["rehearse", "restore", "--inject", "StartRestore"], "write STATE=ERROR or STATE=ERROR:N"),
        (["rehearse", "restore", "--rows", "0"], "is not a positive whole number"),
        (["rehearse"], "the following arguments are required: workflow"),
        (["explode"], "invalid choice: 'explode'"),
    ],
)
def test_a_bad_command_line_is_a_usage_error_with_a_message_not_a_traceback(args, message):
    run = restorectl(*args)

    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_injections_fire_on_the_first_n_invocations_or_always():
    twice = Injection.parse("StartRestore=Lambda.TooManyRequestsException:2")
    always = Injection.parse("ValidateRestore=ValidationFailed")

    assert [twice.fires() for _ in range(3)] == [True, True, False]
    assert all(always.fires() for _ in range(5))


def test_an_after_injection_lets_the_handler_run_then_reports_the_error_and_the_old_syntax_still_parses():
    after = Injection.parse("StartCutover=Lambda.ServiceException:1@after")
    plain = Injection.parse("StartCutover=Lambda.ServiceException:1")

    assert (after.state, after.error, after.times, after.after) == ("StartCutover", "Lambda.ServiceException", 1, True)
    assert plain.after is False
    with pytest.raises(ValueError, match="@after"):
        Injection.parse("StartCutover=Oops@before")


# --json: stdout is the result's alone; the handlers' Powertools log lines go to stderr.


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--input", '{"restored_instance": "irisx-prod-rds-postgres"}'], "InvalidInput"),
        (
            ["--inject", "CheckRollbackInput=Boom", "--input", '{"restored_instance": "irisx-prod-rds-postgres-restored-20251102-120000"}'],
            "Boom",
        ),
    ],
    ids=["refused-input", "injected-failure"],
)
def test_a_failed_rollback_with_json_prints_one_object_and_its_log_lines_on_stderr(args, error):
    run = restorectl("rehearse", "rollback", "--json", *args)

    assert run.returncode == 1, run.stderr
    result = the_one_json_object(run.stdout)
    assert (result["workflow"], result["status"], result["error"]) == ("rollback", "FAILED", error)
    assert result["path"][-1] == {"state": "RollbackFailed", "type": "Fail", "error": error}
    # ExplainRollbackFailure logs "rollback failed" at ERROR (the rehearsal's default log level)
    assert '"message":"rollback failed"' in run.stderr
    assert '"level":"ERROR"' not in run.stdout


def test_a_successful_restore_with_json_and_info_logs_prints_one_object():
    run = restorectl(
        "rehearse", "restore", "--json", "--rows", "200", "--input", '{"mode": "snapshot"}', env={"REHEARSAL_LOG_LEVEL": "INFO"}
    )

    assert run.returncode == 0, run.stderr
    result = the_one_json_object(run.stdout)
    assert (result["workflow"], result["status"], result["error"]) == ("restore", "SUCCEEDED", None)
    assert '"level":"INFO"' in run.stderr and '"message":"restore input accepted"' in run.stderr
    assert '"level":"INFO"' not in run.stdout


def test_stdout_to_stderr_moves_prints_log_handlers_and_child_processes_then_gives_stdout_back(capfd):
    logger = logging.getLogger("test-stdout-to-stderr")
    handler = logging.StreamHandler(sys.stdout)  # as Powertools' Logger does when built before the rehearsal
    logger.addHandler(handler)
    try:
        with cli.stdout_to_stderr() as real:
            print("a print")
            logger.error("a log line")
            subprocess.run(["echo", "a child process"], check=True)
            os.write(1, b"descriptor 1\n")
        print(json.dumps({"status": "SUCCEEDED"}), file=real)
        assert handler.stream is sys.stdout  # given back
    finally:
        logger.removeHandler(handler)

    out, err = capfd.readouterr()
    assert the_one_json_object(out) == {"status": "SUCCEEDED"}
    for text in ("a print", "a log line", "a child process", "descriptor 1"):
        assert text in err


def test_a_rehearsal_that_breaks_still_prints_one_json_object_with_json(monkeypatch, capsys):
    from restorectl import localpg

    class BrokenPostgres:
        def __enter__(self):
            raise localpg.LocalPostgresError("initdb failed with exit code 1: out of disk")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(localpg, "LocalPostgres", BrokenPostgres)

    code = cli.main(["rehearse", "restore", "--json", "--rows", "100"])

    out, err = capsys.readouterr()
    assert code == cli.EXIT_FAILED
    result = the_one_json_object(out)
    assert (result["workflow"], result["status"], result["error"]) == ("restore", "ERROR", "LocalPostgresError")
    assert "out of disk" in result["cause"]
    assert "Traceback" in err
