"""The API hosts, reached only through SSM Run Command with the project's own documents.

No SSH and no host address anywhere: the hosts are the running instances that carry the app-host
tag, and every change runs one of the stack's Command documents (`set-db-host`, `app-control`),
whose parameters SSM checks against their allowedPattern before anything runs on a host.

Steps here never wait: they send a command and return, or look at a command once and say whether
it is finished. The state machine's Wait -> Task -> Choice loops do the waiting, bounded by the
settings' attempt counts. Every progress record is plain JSON the next step reads back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from restore_runbook import aws, clock, rds
from restore_runbook.errors import CutoverFailed, HealthCheckFailed, InvalidInput, RollbackFailed, RunbookError
from restore_runbook.settings import RunbookSettings

PENDING = frozenset({"Pending", "InProgress", "Delayed"})
SUCCESS = "Success"
PHASE_ERRORS: dict[str, type[RunbookError]] = {"cutover": CutoverFailed, "rollback": RollbackFailed}
HEALTHY_DATABASE = "connected"


def phase_error(phase: str) -> type[RunbookError]:
    if phase not in PHASE_ERRORS:
        raise InvalidInput(f"phase {phase!r} is not one of {sorted(PHASE_ERRORS)}; the state machine definition is broken")
    return PHASE_ERRORS[phase]


# -- finding hosts and sending commands ---------------------------------------------------------------


def find_hosts(settings: RunbookSettings) -> list[str]:
    """Running instances carrying the app-host tag, sorted by id."""
    ec2 = aws.client("ec2")
    hosts: list[str] = []
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": f"tag:{settings.app_host_tag_key}", "Values": [settings.app_host_tag_value]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    ):
        for reservation in page.get("Reservations", []):
            hosts.extend(i["InstanceId"] for i in reservation.get("Instances", []))
    return sorted(set(hosts))


def send(document: str, hosts: list[str], parameters: dict[str, str], comment: str) -> dict[str, Any]:
    response = aws.client("ssm").send_command(
        DocumentName=document,
        InstanceIds=hosts,
        Parameters={name: [value] for name, value in parameters.items()},
        Comment=comment[:100],
        TimeoutSeconds=600,
    )
    return {"command_id": response["Command"]["CommandId"], "document": document, "hosts": list(hosts)}


def set_db_host(hosts: list[str], db_host: str, settings: RunbookSettings, comment: str) -> dict[str, Any]:
    return send(
        settings.set_db_host_document,
        hosts,
        {"DbHost": db_host, "EnvFile": settings.app_env_file, "AppName": settings.app_pm2_name},
        comment,
    )


def app_control(hosts: list[str], action: str, settings: RunbookSettings, comment: str) -> dict[str, Any]:
    return send(
        settings.app_control_document,
        hosts,
        {"Action": action, "AppName": settings.app_pm2_name, "HealthUrl": settings.app_health_url, "EnvFile": settings.app_env_file},
        comment,
    )


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


# -- reading command results ----------------------------------------------------------------------------


def parse_output(stdout: str) -> dict[str, str]:
    """The `key=value` lines a script printed (the last one of each key wins)."""
    values: dict[str, str] = {}
    for line in (stdout or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            values[key] = value.strip()
    return values


def invocation(command_id: str, host: str) -> dict[str, Any]:
    """One host's result as GetCommandInvocation reports it (Pending before the host picked it up)."""
    try:
        answer = aws.client("ssm").get_command_invocation(CommandId=command_id, InstanceId=host)
    except Exception as exc:
        if aws.error_code(exc) == "InvocationDoesNotExist":
            return {"status": "Pending", "stdout": "", "stderr": ""}
        raise
    return {
        "status": answer.get("Status", "Pending"),
        "stdout": answer.get("StandardOutputContent", ""),
        "stderr": answer.get("StandardErrorContent", ""),
    }


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def look(commands: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every host's status and the values its script printed."""
    results: dict[str, dict[str, Any]] = {}
    for command in commands:
        for host in command["hosts"]:
            answer = invocation(command["command_id"], host)
            results[host] = {
                "status": answer["status"],
                "output": parse_output(answer["stdout"]),
                "error": _last_line(answer["stderr"]) if answer["status"] != SUCCESS else "",
            }
    return results


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
    results = look(progress.get("commands", []))
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


# -- health ---------------------------------------------------------------------------------------------


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
    if expected_db_host is not None and db_host != expected_db_host:
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
        return {**health, "state": "healthy", "next_wait_seconds": 0, "hosts": {}}
    if health.get("command") is None:
        command = app_control(hosts, "health", settings, f"irisx-restore {phase}: health check")
        return {
            **health,
            "checks": int(health.get("checks", 0)) + 1,
            "command": command,
            "polls": 0,
            "state": "pending",
            "next_wait_seconds": settings.command_poll_seconds,
        }
    results = look([health["command"]])
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


# -- the restore workflow's cutover and its automatic rollback ------------------------------------------


def start_cutover(plan: dict[str, Any], restore: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    db_host = ((restore or {}).get("endpoint") or {}).get("address")
    if not db_host:
        raise CutoverFailed(
            "the restored instance reported no endpoint address, so there is nothing to point the app at; no host was changed"
        )
    hosts = find_hosts(settings)
    if not hosts:
        raise CutoverFailed(
            f"no running instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}, so no API host "
            "could be pointed at the restored database; no host was changed"
        )
    command = set_db_host(hosts, db_host, settings, f"irisx-restore cutover to {plan.get('target_instance')}")
    return new_progress([command], dict.fromkeys(hosts, db_host), settings, target_db_host=db_host, execution_id=execution_id)


def source_endpoint(source_instance: str) -> str:
    instance = rds.describe_source(source_instance)
    address = (instance.get("Endpoint") or {}).get("Address")
    if not address:
        raise RollbackFailed(
            f"the source instance {source_instance!r} reports no endpoint address, so there is no original database to go back to"
        )
    return str(address)


def revert_cutover(cutover: dict[str, Any] | None, plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """Put every host the cutover touched back on the DB_HOST it had before.

    The previous value comes from the cutover command's own output on each host. A host whose
    command failed before reading its .env was not changed and is left alone; a host whose result
    is unknown (still running, timed out) goes back to the source's endpoint.
    """
    commands = (cutover or {}).get("commands") or []
    if not commands:
        return new_progress([], {}, settings, note="the cutover changed no host")
    results = look(commands)
    fallback: str | None = None
    targets: dict[str, str] = {}
    unchanged: list[str] = []
    for host in sorted(results):
        result = results[host]
        previous = result["output"].get("previous_db_host")
        if previous is None and result["status"] not in PENDING:
            unchanged.append(host)  # the script stopped before it read (let alone wrote) the .env
            continue
        if not previous:
            fallback = fallback or source_endpoint(str(plan.get("source_instance")))
            previous = fallback
        targets[host] = previous
    by_value: dict[str, list[str]] = {}
    for host, value in targets.items():
        by_value.setdefault(value, []).append(host)
    sent = [set_db_host(hosts, value, settings, "irisx-restore rollback of cutover") for value, hosts in sorted(by_value.items())]
    expect: dict[str, str | None] = {**targets, **dict.fromkeys(unchanged)}
    return new_progress(sent, expect, settings, unchanged=unchanged, reverted_to=targets)


def explain_rollback_failure(
    failure: dict[str, Any] | None, rollback_failure: dict[str, Any] | None, plan: dict[str, Any] | None
) -> dict[str, str]:
    """The RollbackFailed error a human finishes by hand from: what failed first, and where hosts stand."""
    from restore_runbook import failure as failures

    rollback_error, rollback_cause = failures.explain(rollback_failure)
    if plan is None and not failure:
        # The rollback workflow's input check refused: nothing was touched, so the refusal stands as is.
        return {"error": rollback_error, "cause": rollback_cause}
    parts = [
        f"rollback failed ({rollback_error}): {rollback_cause}"
        if rollback_error != "RollbackFailed"
        else f"rollback failed: {rollback_cause}"
    ]
    if failure:
        error, cause = failures.explain(failure)
        parts.append(f"[original error {error}: {cause}]")
    target = (plan or {}).get("target_instance")  # the restore workflow's copy; the rollback workflow reports its own
    if target:
        parts.append(f"[{target} was NOT deleted: a host may still use it; finish the rollback by hand, then delete it]")
    return {"error": "RollbackFailed", "cause": " ".join(parts)}
