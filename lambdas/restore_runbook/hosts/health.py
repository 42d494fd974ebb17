"""The application's health on every host (GET /health through SSM), and the verdict on it."""

from __future__ import annotations

import json
from typing import Any

from restore_runbook.common.errors import HealthCheckFailed, RollbackFailed
from restore_runbook.hosts import ssm
from restore_runbook.hosts.commands import phase_error
from restore_runbook.hosts.ssm import PENDING, SUCCESS
from restore_runbook.settings import RunbookSettings

HEALTHY_DATABASE = "connected"


def _health_of(result: dict[str, Any], expected_db_host: str | None) -> tuple[bool, str]:
    output = result.get("output", {})
    try:
        body = json.loads(output.get("health") or "null")
    except ValueError:
        body = None
    database = body.get("database") if isinstance(body, dict) else None
    db_host = output.get("db_host") or ""
    if result.get("status") != SUCCESS and database is None:
        return False, result.get("error") or f"health command {result.get('status')}"
    if database != HEALTHY_DATABASE:
        detail = body.get("error") if isinstance(body, dict) else None
        return False, f"database={database!r}" + (f": {detail}" if detail else "")
    # Host names are case-insensitive (DNS); RDS answers in lower case, a hand-edited .env may not.
    if expected_db_host is not None and db_host.lower() != expected_db_host.lower():
        return False, f".env names DB_HOST={db_host or 'nothing'}, expected {expected_db_host}"
    return True, f"database connected via {db_host or 'its .env'}"


def check_health(progress: dict[str, Any], health: dict[str, Any] | None, phase: str, settings: RunbookSettings) -> dict[str, Any]:
    """Ask every host's app for GET /health through SSM, a bounded number of times while pm2 comes up.

    Returns the health record: state 'pending' (a check is in flight), 'retry' (the last check was
    not healthy everywhere; ask again after the interval) or 'healthy'. Raises HealthCheckFailed
    (phase 'cutover') or RollbackFailed (phase 'rollback') when the attempts are used up.
    """
    expect: dict[str, str | None] = progress.get("expect") or {}
    hosts = sorted(expect)
    health = dict(health or {"checks": 0, "command": None, "polls": 0, "hosts": {}})
    if not hosts:
        # No host checked is not a healthy app: it would let the workflow delete a copy that hosts may use.
        if phase == "rollback":
            raise RollbackFailed(
                "there is no API host to check on the original database: the rollback does not know which hosts the cutover "
                "changed, so it cannot confirm that none still uses the restored copy; check every API host's DB_HOST by hand"
            )
        raise phase_error(phase)(f"the {phase} has no API host to check; the state machine input is broken")
    if health.get("command") is None:
        command = ssm.app_control(hosts, "health", settings, f"irisx-restore {phase}: health check")
        return {
            **health,
            "checks": int(health.get("checks", 0)) + 1,
            "command": command,
            "polls": 0,
            "state": "pending",
            "next_wait_seconds": settings.command_poll_seconds,
        }
    results = ssm.look([health["command"]])
    polls = int(health.get("polls", 0)) + 1
    if any(r["status"] in PENDING for r in results.values()) and polls < settings.command_poll_max_attempts:
        return {**health, "polls": polls, "state": "pending", "next_wait_seconds": settings.command_poll_seconds}
    verdicts = {host: _health_of(results.get(host, {"status": "Pending"}), expect[host]) for host in hosts}
    report = {host: {"healthy": ok, "detail": detail} for host, (ok, detail) in verdicts.items()}
    if all(ok for ok, _ in verdicts.values()):
        return {**health, "polls": polls, "command": None, "state": "healthy", "next_wait_seconds": 0, "hosts": report}
    if int(health.get("checks", 0)) < settings.health_check_attempts:
        return {
            **health,
            "polls": polls,
            "command": None,
            "state": "retry",
            "next_wait_seconds": settings.health_check_interval_seconds,
            "hosts": report,
        }
    unhealthy = "; ".join(f"{host}: {detail}" for host, (ok, detail) in sorted(verdicts.items()) if not ok)
    where = "; ".join(f"{host}: DB_HOST={(results.get(host) or {}).get('output', {}).get('db_host') or 'unknown'}" for host in hosts)
    checks = health.get("checks")
    if phase == "rollback":
        raise RollbackFailed(
            f"after pointing the hosts back, the app is not healthy on the original database after {checks} checks: "
            f"{unhealthy}; where the hosts stand: {where}"
        )
    phase_error(phase)
    raise HealthCheckFailed(
        f"the app is not healthy on the restored database after {checks} checks: {unhealthy}; where the hosts stand: {where}"
    )
