"""After a rollback failed somewhere past `pm2 stop`: start the app again on a database that answers.

The runbook's rollback stops the app first. From that moment any failure (a stop whose answer was
lost, a revert command that failed, a health check that never passed) would leave every API host
stopped, so the workflow never goes straight to RollbackFailed from there: it first points every
host at the original database and restarts the app, and when the original does not answer health,
at the database the hosts used before the rollback (the restored copy). Only then does it fail,
with a cause that says where each host points and whether its app answers.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import rds
from restore_runbook.common.errors import RollbackFailed
from restore_runbook.hosts import commands, ssm
from restore_runbook.settings import RunbookSettings

TARGETS = ("original", "restored")


def database_for(plan: dict[str, Any], target: str) -> str:
    """The endpoint the recovery points every host at: the original, else the copy they used before."""
    if target == "original":
        return str(plan["original_endpoint"])
    if target != "restored":
        raise RollbackFailed(f"recovery target {target!r} is not one of {', '.join(TARGETS)}; the state machine definition is broken")
    instance = rds.find_instance(str(plan["restored_instance"]))
    address = ((instance or {}).get("Endpoint") or {}).get("Address")
    if not address:
        raise RollbackFailed(
            f"the original database did not answer and the restored copy {plan['restored_instance']} "
            f"{'reports no endpoint' if instance else 'no longer exists'}, so no database is left to start the app on"
        )
    return str(address)


def restart_on(plan: dict[str, Any], target: str, settings: RunbookSettings) -> dict[str, Any]:
    """Point every host that serves now (ssm.serving_now) at `target`'s database and restart the app (set-db-host)."""
    planned = list(plan["hosts"])
    hosts, gone = ssm.serving_now(planned, settings)
    if not hosts:
        raise RollbackFailed(f"none of the app hosts ({', '.join(planned) or 'none'}) is running any more, and no host carries the app tag")
    db_host = database_for(plan, target)
    command = ssm.set_db_host(hosts, db_host, settings, f"irisx-restore rollback recovery: restart on the {target} database")
    return commands.new_progress([command], dict.fromkeys(hosts, db_host), settings, target=target, db_host=db_host, hosts_gone=gone)
