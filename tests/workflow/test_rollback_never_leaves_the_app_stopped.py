"""The rollback stops the app first; from then on no failure may leave it stopped.

Every failure past `pm2 stop` restarts the app on the original database, else on the copy the hosts
used before, and only then fails with RollbackFailed naming each host's DB_HOST and whether it answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.workflow.conftest import SOURCE, instance_ids, terminate_host_before
from tests.workflow.redrives import assert_each_redrive_refused
from tests.workflow.test_cutover_workflow import endpoint_of
from tests.workflow.test_journal_workflow import executions, locks

pytestmark = pytest.mark.workflow


def hosts_of(result: Any) -> list[tuple[str, str]]:
    return [(h["db_host"], h["health"]) for h in result.world["app_hosts"]]


def a_cut_over_copy(world: Any) -> str:
    restored = world.run("restore", {"mode": "snapshot", "cutover": True})
    assert restored.status == "SUCCEEDED", restored.cause
    return str(restored.output["target_instance"])


@pytest.mark.parametrize("state", ["StopApp", "CheckStop", "PointDbHostBackAndRestart", "CheckRevert", "CheckHealthOnOriginal"])
def test_a_rollback_that_fails_after_touching_the_app_restarts_it_on_the_original(rehearsal, state):
    # Given production cut over to a restored copy, and a rollback step that acts, then crashes
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=[f"{state}=RuntimeError@after"])
    target = a_cut_over_copy(world)

    # When the rollback runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target, "requested_by": "on-call: ana"})

    # Then it fails with RollbackFailed, but only after restarting the app on the original
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    states = result.states()
    assert states.index(state) < states.index("RestartAppOnOriginal") < states.index("IsHealthyAfterRestartOnOriginal")
    assert "RestartAppOnCopy" not in states
    # And every host runs on the original database and answers
    assert hosts_of(result) == [(endpoint_of(SOURCE), "connected")] * 2
    assert "app running and healthy (original database)" in result.cause
    assert f"RuntimeError injected by the rehearsal into {state}" in result.cause
    # And the copy is kept (it was production), the lock released, the journal closed with the same words
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    assert f"{target} was NOT deleted: it still exists" in result.cause
    assert locks(result) == []
    (record,) = executions(result, "rollback")
    assert (record["outcome"], record["error"], record["cause"]) == ("FAILED", "RollbackFailed", result.cause)


def test_when_the_original_does_not_answer_the_app_goes_back_to_the_copy_it_used(rehearsal):
    # Given production cut over to a copy, and an original database that stopped accepting connections
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = a_cut_over_copy(world)
    copy_host = endpoint_of(target)
    original_db = world.rds.resolve(endpoint_of(SOURCE))
    with world.pg.connect("postgres", autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{original_db}" ALLOW_CONNECTIONS false')

    # When the rollback runs
    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the health check on the original fails, the restart on the original fails its health too,
    # and the app is started again on the copy the hosts used before
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    states = result.states()
    assert states.index("CheckHealthOnOriginal") < states.index("RestartAppOnOriginal") < states.index("RestartAppOnCopy")
    assert hosts_of(result) == [(copy_host, "connected")] * 2
    assert "app running and healthy (restored database)" in result.cause
    # and the copy, which serves production again, is not deleted
    assert sorted(instance_ids(result.world)) == sorted([SOURCE, target])
    # and a redrive resumed at any step of the fall-back to the copy refuses there, touching nothing
    assert_each_redrive_refused(world, result, only=["RestartAppOnCopy", "CheckRestartOnCopy", "CheckHealthAfterRestartOnCopy"])


def test_a_host_that_cannot_restart_anywhere_is_named_as_possibly_stopped(rehearsal):
    # Given a host whose pm2 restart always fails
    world = rehearsal(calls_rows=300, restore_minutes=3)
    target = a_cut_over_copy(world)
    broken = world.app_hosts.hosts[1]
    (broken.dir / "pm2_failures").write_text("-1")  # the emulated pm2's own knob: every restart from now on fails

    result = world.run("rollback", {"restored_instance": target, "confirm": target})

    # Then the restart on the original was tried once more; another database would not fix pm2, so the
    # other host stays on the original, and the cause names the broken host as possibly stopped
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert "RestartAppOnOriginal" in result.states() and "RestartAppOnCopy" not in result.states()
    source_host = endpoint_of(SOURCE)
    assert f"{broken.instance_id}: DB_HOST={source_host}, restart on the original database failed" in result.cause
    assert "the app may be STOPPED" in result.cause
    healthy = world.app_hosts.hosts[0]
    assert f"{healthy.instance_id}: DB_HOST={source_host}, app restarted" in result.cause
    assert hosts_of(result)[0] == (source_host, "connected")


def test_a_host_terminated_after_the_stop_does_not_keep_the_recovery_from_starting_the_others(rehearsal):
    import json

    # Given production cut over to a copy, a rollback whose stop is lost after acting, and one API
    # host terminated while the app is stopped (its autoscaling group replaced it)
    world = rehearsal(calls_rows=300, restore_minutes=3, inject=["StopApp=RuntimeError@after"])
    target = a_cut_over_copy(world)
    gone = terminate_host_before(world, "irisx-api-2", "RestartAppOnOriginal")

    result = world.run("rollback", {"restored_instance": target, "confirm": target, "requested_by": "on-call: ana"})

    # Then the recovery restarts the app on the host still running, healthy on the original
    assert (result.status, result.error) == ("FAILED", "RollbackFailed")
    assert "RestartAppOnCopy" not in result.states()
    serving = [h for h in result.world["app_hosts"] if h["name"] == "irisx-api-1"]
    assert [(h["db_host"], h["health"]) for h in serving] == [(endpoint_of(SOURCE), "connected")]
    (restart,) = [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in result.history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "RestartAppOnOriginal"
    ]
    assert restart["recovery_original"]["hosts_gone"] == [gone]
