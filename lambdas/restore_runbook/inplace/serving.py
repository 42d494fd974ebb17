"""Before the stop: do the API hosts serve production's endpoint? Read without changing anything.

An in-place restore keeps DB_HOST as it is (the endpoint name moves to the copy), so it is right
only when every host's .env names production's endpoint. A host pointing elsewhere (production was
cut over to a copy by `restore`, and that copy serves) would be stopped for nothing, and the
renames would replace an instance no host uses. The app-control document's `health` action
prints `db_host=` (its own .env reading: never following a symlink, refusing a value that is not
a plain host) before it asks the app for /health; the HTTP answer does not matter here: an
in-place restore is often run because the app is failing.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common.errors import UnsafeOperation
from restore_runbook.hosts import commands, ssm
from restore_runbook.hosts.ssm import PENDING, SUCCESS
from restore_runbook.settings import RunbookSettings

# The cleanup that follows says what became of the copy and the final snapshot, after looking.
NOTHING_DONE = "The app was not stopped and production was not renamed"


def read_db_hosts(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """Send the read-only `health` action to the hosts that serve now: the ones the stop will stop.

    The plan listed the hosts when the run began, a restore ago; one replaced since must be checked
    too, and one terminated since would make SSM refuse the command for all of them."""
    planned = list(plan["hosts"])
    hosts, gone = ssm.serving_now(planned, settings)
    if not hosts:
        raise UnsafeOperation(
            f"none of the API hosts the run began with ({', '.join(planned) or 'none'}) is running any more, and no host carries the "
            f"tag {settings.app_host_tag_key}={settings.app_host_tag_value}: there is no host to check or to start after the swap. "
            + NOTHING_DONE
        )
    command = ssm.app_control(hosts, "health", settings, "irisx-restore in-place: read DB_HOST before the stop")
    endpoint = plan["production_endpoint"]["address"]
    # A warm pool's hosts, stopped in EC2, run no app to stop: the rename refuses only if one starts meanwhile.
    return commands.new_progress(
        [command], dict.fromkeys(hosts, endpoint), settings, hosts_gone=gone, ec2_stopped_hosts=ssm.find_stopped_hosts(settings)
    )


def _unknown_because(answer: dict[str, Any]) -> str:
    """Why a host printed no DB_HOST, in the script's own words when it gave them."""
    notes = [line.removeprefix("app_control: ").strip() for line in (answer.get("stderr") or "").splitlines() if "db_host unknown" in line]
    if notes:
        return "; ".join(notes)
    if answer["status"] != SUCCESS:
        last = [line.strip() for line in (answer.get("stderr") or "").splitlines() if line.strip()]
        return f"the command {answer['status']}" + (f": {last[-1]}" if last else "")
    return "its .env has no DB_HOST line (or cannot be read)"


def check_db_hosts(progress: dict[str, Any], plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """One look: 'pending', 'done' when every host names production's endpoint, else UnsafeOperation naming each host."""
    endpoint: str = plan["production_endpoint"]["address"]
    production = plan["production_instance"]
    attempts = int(progress.get("attempts", 0)) + 1
    hosts = list(progress["hosts"])
    answers: dict[str, dict[str, Any]] = {}
    for command in progress.get("commands", []):
        for host in command["hosts"]:
            answers[host] = ssm.invocation(command["command_id"], host)
    waiting = sorted(h for h in hosts if answers.get(h, {"status": "Pending"})["status"] in PENDING)
    if waiting and attempts < settings.command_poll_max_attempts:
        return {**progress, "attempts": attempts, "state": "pending", "next_wait_seconds": settings.command_poll_seconds}

    db_hosts: dict[str, str | None] = {}
    problems: list[str] = []
    for host in hosts:
        answer = answers.get(host, {"status": "Pending", "stdout": "", "stderr": ""})
        if answer["status"] in PENDING:
            db_hosts[host] = None
            problems.append(f"{host}: DB_HOST unknown (the read was still {answer['status']} after {attempts} checks)")
            continue
        db_host = ssm.parse_output(answer.get("stdout", "")).get("db_host") or None
        db_hosts[host] = db_host
        if db_host is None:
            problems.append(f"{host}: DB_HOST unknown ({_unknown_because(answer)})")
        elif db_host.lower() != endpoint.lower():
            problems.append(f"{host}: DB_HOST={db_host}")
    if problems:
        raise UnsafeOperation(
            f"an in-place restore keeps DB_HOST as it is and renames {production}, so it is right only when every API host serves "
            f"production's endpoint {endpoint}, and not every host does: {'; '.join(problems)}. If production was cut over to a "
            f"copy, that copy serves now: restore or roll back that copy instead, or point every host at {endpoint} first. " + NOTHING_DONE
        )
    return {**progress, "attempts": attempts, "state": "done", "next_wait_seconds": 0, "db_hosts": db_hosts}
