"""How an in-place restore that failed after the swap began ends: the original error, and what is left where.

Two endings. The rename-back worked and the app is healthy on the original: fail with the ORIGINAL
error, saying production is back and where the copy and the final snapshot are. The rename-back
(or the app on the original) failed: RollbackFailed naming both instances, their names and
statuses, who holds production's name, and the app's state on each host.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import failure as failures
from restore_runbook.inplace import rename_back
from restore_runbook.settings import RunbookSettings


def app_state(*records: dict[str, Any] | None, last_failure: dict[str, Any] | None = None) -> str:
    """The last health verdict per host from the records given (the latest first), in words."""
    for record in records:
        health = (record or {}).get("health") or {}
        hosts = health.get("hosts") or {}
        if hosts:
            return "; ".join(
                f"{host}: {'healthy' if v.get('healthy') else 'NOT healthy'} ({v.get('detail')})" for host, v in sorted(hosts.items())
            )
    for record in records:
        results = (record or {}).get("results") or {}
        if results:
            return "; ".join(f"{host}: start command {r.get('status')}" for host, r in sorted(results.items())) + "; health not confirmed"
    if last_failure:
        # The start or its check failed before it could write a record; its error names every host.
        error, cause = failures.explain(last_failure)
        return f"the last start attempt failed ({error}: {cause}); start the app with pm2 on every host where it is not running"
    return "unknown: no start or health record (the app may still be STOPPED: start it with pm2 on every API host)"


def after_rename_back(failure: dict[str, Any] | None, plan: dict[str, Any], restart: dict[str, Any] | None) -> dict[str, str]:
    """Only reached once the app answered healthy on the original (the restart record says so)."""
    error, cause = failures.outcome_of(failure)  # the execution's error: never a States.* name
    copy = plan["temporary_instance"]
    left = (
        f"production {plan['production_instance']} is back under its name and the app is healthy on it; the restored copy is "
        f"kept as {copy} (marked failed-copy; turn its deletion protection off if on, then delete it once nothing needs it); "
        f"final snapshot {plan['final_snapshot']} kept"
    )
    return {"error": error, "cause": f"{cause} [{left}]", "cleanup": left}


def rename_back_failed(
    failure: dict[str, Any] | None,
    rollback_failure: dict[str, Any] | None,
    plan: dict[str, Any],
    records: list[dict[str, Any] | None],
    execution_id: str,
    settings: RunbookSettings,
    restart_failure: dict[str, Any] | None = None,
) -> dict[str, str]:
    error, cause = failures.explain(failure)
    back_error, back_cause = failures.explain(rollback_failure)
    try:
        where = rename_back.where_instances_stand(plan, execution_id, settings)
    except Exception as exc:  # noqa: BLE001 - the explanation must still be written; it says it could not look
        where = f"could not look at the instances ({type(exc).__name__}: {exc}); check both by hand"
    hosts = app_state(*records, last_failure=restart_failure or rollback_failure)
    left = f"{where}; the app on each host: {hosts}; final snapshot {plan.get('final_snapshot')} kept"
    return {
        "error": "RollbackFailed",
        "cause": f"renaming back failed ({back_error}: {back_cause}) [original error {error}: {cause}] [{left}]",
        "cleanup": left,
    }
