"""Following the commands a step sent: progress records, one look at a time, and the phase's error.

Every progress record is plain JSON the next step reads back; the attempt counts in settings bound
the state machine's poll loops.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock
from restore_runbook.common.errors import CutoverFailed, InvalidInput, RollbackFailed, RunbookError
from restore_runbook.hosts import ssm
from restore_runbook.hosts.ssm import PENDING, SUCCESS
from restore_runbook.settings import RunbookSettings

PHASE_ERRORS: dict[str, type[RunbookError]] = {"cutover": CutoverFailed, "rollback": RollbackFailed}


def phase_error(phase: str) -> type[RunbookError]:
    if phase not in PHASE_ERRORS:
        raise InvalidInput(f"phase {phase!r} is not one of {sorted(PHASE_ERRORS)}; the state machine definition is broken")
    return PHASE_ERRORS[phase]


def new_progress(commands: list[dict[str, Any]], expect: dict[str, str | None], settings: RunbookSettings, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "hosts": sorted(expect),
        "expect": expect,
        "commands": commands,
        "sent_at": clock.isoformat(clock.now()),
        "attempts": 0,
        "state": "pending" if commands else "done",
        "next_wait_seconds": settings.command_poll_seconds,
        "results": {},
        "health": None,
    }


def describe_hosts(results: dict[str, dict[str, Any]]) -> str:
    """Where each host stands, in words: which database its .env names, and what went wrong."""
    parts = []
    for host, result in sorted(results.items()):
        output = result.get("output", {})
        db_host = output.get("db_host") or output.get("previous_db_host")
        where = f"DB_HOST={db_host}" if db_host else "DB_HOST unknown"
        status = result.get("status", "unknown")
        problem = f" ({result['error']})" if result.get("error") else ""
        parts.append(f"{host}: {status}, {where}{problem}")
    return "; ".join(parts) or "no hosts"


def check_commands(progress: dict[str, Any], phase: str, settings: RunbookSettings) -> dict[str, Any]:
    """One look at the commands in flight: 'pending', 'done', or the phase's error naming every host."""
    error = phase_error(phase)
    attempts = int(progress.get("attempts", 0)) + 1
    results = ssm.look(progress.get("commands", []))
    updated = {**progress, "attempts": attempts, "results": results}
    waiting = sorted(h for h, r in results.items() if r["status"] in PENDING)
    failed = sorted(h for h, r in results.items() if r["status"] not in PENDING and r["status"] != SUCCESS)
    if waiting and not failed:
        if attempts >= settings.command_poll_max_attempts:
            raise error(
                f"the {phase} command is still running on {', '.join(waiting)} after {attempts} checks "
                f"(about {attempts * settings.command_poll_seconds} s); where the hosts stand: {describe_hosts(results)}"
            )
        return {**updated, "state": "pending", "next_wait_seconds": settings.command_poll_seconds}
    if failed:
        raise error(
            f"the {phase} command failed on {', '.join(failed)} of {len(results)} host(s); where the hosts stand: {describe_hosts(results)}"
        )
    return {**updated, "state": "done", "next_wait_seconds": 0}
