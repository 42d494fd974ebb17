"""What the rollback does once it failed past `pm2 stop`, and how it says where each host stands."""

from __future__ import annotations

import pytest

from restore_runbook.common import rds
from restore_runbook.common.errors import RollbackFailed
from restore_runbook.hosts import explain
from restore_runbook.rollback import recovery

pytestmark = pytest.mark.unit

PLAN = {
    "restored_instance": "irisx-copy",
    "original_endpoint": "irisx-prod.example",
    "hosts": ["i-1", "i-2"],
    "source_instance": "irisx-prod",
}


def test_recovery_first_targets_the_original_then_the_copy_the_hosts_used(monkeypatch):
    monkeypatch.setattr(rds, "find_instance", lambda identifier: {"Endpoint": {"Address": f"{identifier}.example"}})
    assert recovery.database_for(PLAN, "original") == "irisx-prod.example"
    assert recovery.database_for(PLAN, "restored") == "irisx-copy.example"
    with pytest.raises(RollbackFailed, match="not one of original, restored"):
        recovery.database_for(PLAN, "elsewhere")


def test_recovery_on_the_copy_refuses_when_no_copy_is_left(monkeypatch):
    monkeypatch.setattr(rds, "find_instance", lambda identifier: None)
    with pytest.raises(RollbackFailed, match="irisx-copy no longer exists, so no database is left"):
        recovery.database_for(PLAN, "restored")


def recovery_record(target: str, db_host: str, results: dict, health: dict | None = None) -> dict:
    return {"target": target, "db_host": db_host, "results": results, "health": {"hosts": health} if health else None}


def test_where_hosts_run_names_each_host_its_db_host_and_whether_the_app_answers():
    on_original = recovery_record(
        "original",
        "irisx-prod.example",
        {
            "i-1": {"status": "Success", "output": {"db_host": "irisx-prod.example"}, "error": ""},
            "i-2": {"status": "Failed", "output": {}, "error": "pm2 restart irisx-api failed"},
        },
        {"i-1": {"healthy": True, "detail": "database connected"}, "i-2": {"healthy": False, "detail": "curl: (7)"}},
    )

    text = explain.where_hosts_run(PLAN, [on_original, None])

    assert "i-1: DB_HOST=irisx-prod.example, app running and healthy (original database)" in text
    assert "i-2: DB_HOST unknown, restart on the original database failed (pm2 restart irisx-api failed): the app may be STOPPED" in text


def test_the_last_recovery_that_reached_a_host_is_the_one_reported():
    on_original = recovery_record("original", "irisx-prod.example", {"i-1": {"status": "Success", "output": {"db_host": "p"}}}, None)
    on_copy = recovery_record(
        "restored",
        "irisx-copy.example",
        {"i-1": {"status": "Success", "output": {"db_host": "irisx-copy.example"}}},
        {"i-1": {"healthy": True}},
    )
    text = explain.where_hosts_run({**PLAN, "hosts": ["i-1"]}, [on_original, on_copy])
    assert text == "i-1: DB_HOST=irisx-copy.example, app running and healthy (restored database)"
    assert explain.where_hosts_run({**PLAN, "hosts": ["i-1"]}, []) == "i-1: DB_HOST unknown, no restart confirmed: the app may be STOPPED"


def test_a_rollback_failure_cause_describes_the_copy_as_rds_shows_it(monkeypatch):
    states = {"irisx-copy": {"DBInstanceStatus": "deleting"}}
    monkeypatch.setattr(rds, "find_instance", lambda identifier: states.get(identifier))

    outcome = explain.explain_rollback_failure(None, {"Error": "Lambda.ServiceException", "Cause": "lost answer"}, PLAN, recoveries=[])

    assert outcome["error"] == "RollbackFailed"
    assert "[irisx-copy is being deleted (status deleting)]" in outcome["cause"]
    assert "the app: i-1: DB_HOST unknown" in outcome["cleanup"]
    states.clear()
    assert rds.presence("irisx-copy") == "irisx-copy no longer exists"
