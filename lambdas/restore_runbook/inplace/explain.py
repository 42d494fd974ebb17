"""How an in-place restore that failed after the swap began ends: the original error, and what is left where.

Two endings. The rename-back worked and the app is healthy on the original: fail with the ORIGINAL
error, saying production is back and where the copy and the final snapshot are. The rename-back
(or the app on the original) failed: RollbackFailed naming both instances, their names and
statuses, who holds production's name, and the app's state on each host; and, unless production's
name is back on the original and the app confirmed healthy, the words on which the end step keeps
production's lock.

A failure from the start on also stopped the app (on the copy, which held production's name)
before renaming back; either ending then says that writes the app took between the start and that
stop are in the copy, and which hosts the stop could not be confirmed on (they may have written to
the copy until it gave up the name, and to the original after).
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


def writes_on_copy(
    plan: dict[str, Any],
    start: dict[str, Any] | None,
    stop: dict[str, Any] | None,
    stop_failure: dict[str, Any] | None,
    copy: str | None = None,
) -> str | None:
    """What the app may have written to the copy, when the failure came after the start; None before it.

    `copy` names the copy as it stands (by default its temporary name, which a finished rename-back
    gives it again). Only the stop's record says which hosts were confirmed stopped BEFORE the
    renames back: a look now would describe a later moment."""
    if stop is None and stop_failure is None:
        return None
    copy = copy or f"the copy {plan['temporary_instance']}"
    since = f" ({start['sent_at']})" if start and start.get("sent_at") else ""
    if stop_failure is None:
        until = f" ({stop['sent_at']})" if stop and stop.get("sent_at") else ""
        return (
            f"the app was started on the restored copy and stopped again before renaming back: writes it took between the "
            f"start{since} and the stop{until} are in {copy} only, not in production; reconcile them from it before deleting it"
        )
    error, cause = failures.explain(stop_failure)
    if stop is None:
        hosts = sorted((start or {}).get("hosts") or plan.get("hosts") or [])
        unconfirmed = f"any API host ({', '.join(hosts) or 'none listed'}): the stop command was not sent"
    else:
        results = stop.get("results") or {}
        pending = sorted(h for h in stop.get("hosts") or [] if (results.get(h) or {}).get("status") != "Success")
        unconfirmed = ", ".join(pending) or "no host (every host reported stopped)"
    return (
        f"the app was started on the restored copy; stopping it before renaming back could not be confirmed on {unconfirmed} "
        f"({error}: {cause}), and the renames back went ahead: the app there may have written to {copy} while it held "
        f"production's name and to production after; writes taken since the start{since} may be in {copy} only: reconcile "
        "them from it before deleting it"
    )


def after_rename_back(
    failure: dict[str, Any] | None,
    plan: dict[str, Any],
    restart: dict[str, Any] | None,
    *,
    start: dict[str, Any] | None = None,
    stop: dict[str, Any] | None = None,
    stop_failure: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Only reached once the app answered healthy on the original (the restart record says so)."""
    error, cause = failures.outcome_of(failure)  # the execution's error: never a States.* name
    copy = plan["temporary_instance"]
    left = (
        f"production {plan['production_instance']} is back under its name and the app is healthy on it; the restored copy is "
        f"kept as {copy} (marked failed-copy; turn its deletion protection off if on, then delete it once nothing needs it); "
        f"final snapshot {plan['final_snapshot']} kept"
    )
    writes = writes_on_copy(plan, start, stop, stop_failure)
    if writes:
        left = f"{left}; {writes}"
    return {"error": error, "cause": f"{cause} [{left}]", "cleanup": left}


def rename_back_failed(
    failure: dict[str, Any] | None,
    rollback_failure: dict[str, Any] | None,
    plan: dict[str, Any],
    records: list[dict[str, Any] | None],
    execution_id: str,
    settings: RunbookSettings,
    restart_failure: dict[str, Any] | None = None,
    *,
    start: dict[str, Any] | None = None,
    stop: dict[str, Any] | None = None,
    stop_failure: dict[str, Any] | None = None,
) -> dict[str, str]:
    error, cause = failures.explain(failure)
    back_error, back_cause = failures.explain(rollback_failure)
    try:
        where = rename_back.where_instances_stand(plan, execution_id, settings)
        put_right = rename_back.production_name_put_right(plan, execution_id, settings)
    except Exception as exc:  # noqa: BLE001 - the explanation must still be written; it says it could not look
        where = f"could not look at the instances ({type(exc).__name__}: {exc}); check both by hand"
        put_right = False
    hosts = app_state(*records, last_failure=restart_failure or rollback_failure)
    left = f"{where}; the app on each host: {hosts}; final snapshot {plan.get('final_snapshot')} kept"
    # The rename-back failed: the copy's name now is what `where` says.
    writes = writes_on_copy(plan, start, stop, stop_failure, f"the restored copy created as {plan['temporary_instance']}")
    if writes:
        left = f"{left}; {writes}"
    outcome = {
        "error": "RollbackFailed",
        "cause": f"renaming back failed ({back_error}: {back_cause}) [original error {error}: {cause}] [{left}]",
        "cleanup": left,
    }
    # The end step keeps production's lock on these words (journal/events.py): the next workflow on production's
    # name would otherwise act on whichever instance holds it now, or on a fleet a person is starting by hand.
    if not put_right:
        outcome["recovery"] = needs_recovery(plan, where)
    elif not app_confirmed_healthy(records[0]):
        outcome["recovery"] = (
            f"production's name {plan['production_instance']} is back on the original production, but the app is not confirmed "
            f"healthy on every API host ({hosts}): start it with pm2 where it is not running and check its health"
        )
    return outcome


def app_confirmed_healthy(restart: dict[str, Any] | None) -> bool:
    """The last start's health check passed on every host it checked (hosts/health.py answers 'healthy' only then)."""
    return ((restart or {}).get("health") or {}).get("state") == "healthy"


def needs_recovery(plan: dict[str, Any], where: str) -> str:
    return (
        f"renaming back failed and production's name {plan['production_instance']} is not back on the original production "
        f"(resource id {plan['production_resource_id']}) alone: {where}. Give production's name to the instance that should "
        "serve, mark it irisx-restore:role=production, start the app with pm2 on every API host and check its health"
    )
