"""The API hosts, reached only through SSM Run Command with the project's own documents.

No SSH and no host address anywhere: the hosts are the running instances that carry the app-host
tag, and every change runs one of the stack's Command documents (`set-db-host`, `app-control`),
whose parameters SSM checks against their allowedPattern before anything runs on a host.

Steps here never wait: they send a command and return, or look at a command once and say whether
it is finished. The state machine's Wait -> Task -> Choice loops do the waiting, bounded by the
settings' attempt counts. Every progress record is plain JSON the next step reads back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from restore_runbook import aws, clock, rds
from restore_runbook.errors import CutoverFailed, HealthCheckFailed, InvalidInput, RollbackFailed, RunbookError, UnsafeOperation
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


def execution_marker(execution_id: str) -> str:
    """A short, deterministic tag for one execution, carried in the Comment of the commands it sends."""
    return "x:" + hashlib.sha256(execution_id.encode()).hexdigest()[:16]


# How far back ListCommands looks for this execution's own command (the workflow's timeout is 4 hours).
COMMAND_LOOKBACK = timedelta(hours=6)


def find_sent_command(document: str, marker: str) -> dict[str, Any] | None:
    """The command of `document` whose Comment carries `marker`, if one was sent (ssm:ListCommands)."""
    after = clock.isoformat(clock.now() - COMMAND_LOOKBACK)
    pages = (
        aws.client("ssm")
        .get_paginator("list_commands")
        .paginate(Filters=[{"key": "InvokedAfter", "value": after}, {"key": "DocumentName", "value": document}])
    )
    for page in pages:
        for command in page.get("Commands", []):
            if command.get("DocumentName") == document and marker in (command.get("Comment") or ""):
                return {
                    "command_id": command["CommandId"],
                    "document": document,
                    "hosts": sorted(command.get("InstanceIds") or []),
                    "db_host": ((command.get("Parameters") or {}).get("DbHost") or [None])[0],
                }
    return None


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
        # No host checked is not a healthy app: it would let the workflow delete a copy that hosts may use.
        if phase == "rollback":
            raise RollbackFailed(
                "there is no API host to check on the original database: the rollback does not know which hosts the cutover "
                "changed, so it cannot confirm that none still uses the restored copy; check every API host's DB_HOST by hand"
            )
        raise phase_error(phase)(f"the {phase} has no API host to check; the state machine input is broken")
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
        healthy = {**health, "polls": polls, "command": None, "state": "healthy", "next_wait_seconds": 0, "hosts": report}
        if phase == "cutover":
            healthy.update(after_successful_cutover(progress))
        return healthy
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


# -- after a successful cutover --------------------------------------------------------------------------


def protect_new_production(instance: str | None, source: str | None) -> dict[str, Any]:
    """Turn deletion protection on for the instance production now uses. Never raises: the cutover succeeded.

    Returns {"instance", "enabled", "detail"}; a failure (e.g. missing rds:ModifyDBInstance) is reported, and the
    success record says so, rather than rolling back a healthy cutover.
    """
    if not instance:
        return {"instance": None, "enabled": False, "detail": "not turned on: the cutover record names no target instance"}
    if instance == source:
        return {"instance": instance, "enabled": False, "detail": f"not changed: {instance} is the source instance"}
    try:
        aws.client("rds").modify_db_instance(DBInstanceIdentifier=instance, DeletionProtection=True, ApplyImmediately=True)
    except Exception as exc:  # noqa: BLE001 - reported in the success record and notification
        code = aws.error_code(exc) or type(exc).__name__
        return {
            "instance": instance,
            "enabled": False,
            "detail": f"could NOT be turned on ({code}: {exc}); turn it on by hand: production now uses {instance}",
        }
    return {"instance": instance, "enabled": True, "detail": f"turned on for {instance}"}


def lift_deletion_protection(identifier: str, *, source: str, tag_key: str, tag_value: str) -> str | None:
    """Before the rollback workflow deletes a copy that was cut over to: turn off the protection the cutover turned on.

    Only for an instance this tool created (management tag), never the source; anything else is left
    as it is, for the deletion's own checks to refuse. Returns what was done, or None.
    """
    if identifier == source:
        raise UnsafeOperation(f"refusing to change {identifier!r}: it is the source instance")
    instance = rds.find_instance(identifier)
    if instance is None or not instance.get("DeletionProtection") or not rds.is_managed(instance, tag_key, tag_value):
        return None
    aws.client("rds").modify_db_instance(DBInstanceIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
    return f"turned off deletion protection on {identifier} (turned on when production was cut over to it)"


def after_successful_cutover(progress: dict[str, Any]) -> dict[str, Any]:
    """Deletion protection on the new production instance, and the words the success record leaves behind."""
    target, source = progress.get("target_instance"), progress.get("source_instance")
    protection = protect_new_production(target, source)
    left_behind = (
        f"production now runs on {target} (DB_HOST={progress.get('target_db_host')} on {', '.join(sorted(progress.get('expect') or {}))}, "
        f"cut over at {progress.get('sent_at')}); deletion protection {protection['detail']}; "
        f"the old instance {source or 'the source'} is untouched and still running. Do NOT delete {target}: "
        "to go back, run the rollback workflow"
    )
    return {"deletion_protection": protection, "left_behind": left_behind}


# -- the restore workflow's cutover and its automatic rollback ------------------------------------------


def start_cutover(plan: dict[str, Any], restore: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    db_host = ((restore or {}).get("endpoint") or {}).get("address")
    if not db_host:
        raise CutoverFailed(
            "the restored instance reported no endpoint address, so there is nothing to point the app at; no host was changed"
        )
    marker = execution_marker(execution_id)
    record = {
        "target_db_host": db_host,
        "execution_id": execution_id,
        "marker": marker,
        "target_instance": plan.get("target_instance"),
        "source_instance": plan.get("source_instance"),
    }
    # Idempotent: a retry of this step (the first invocation sent the command, then its answer was lost)
    # finds this execution's command by the marker in its Comment and follows it instead of sending again.
    # A second send would record the restored endpoint as every host's previous DB_HOST.
    sent = find_sent_command(settings.set_db_host_document, marker)
    if sent is not None:
        if sent["db_host"] not in (None, db_host):
            raise CutoverFailed(
                f"this execution already sent command {sent['command_id']} pointing {', '.join(sent['hosts'])} at "
                f"{sent['db_host']}, not at {db_host}; the rollback puts every host back on the source"
            )
        command = {key: sent[key] for key in ("command_id", "document", "hosts")}
        return new_progress([command], dict.fromkeys(sent["hosts"], db_host), settings, **record, reused_command=True)
    hosts = find_hosts(settings)
    if not hosts:
        raise CutoverFailed(
            f"no running instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}, so no API host "
            "could be pointed at the restored database; no host was changed"
        )
    command = set_db_host(hosts, db_host, settings, f"irisx-restore cutover [{marker}] to {plan.get('target_instance')}")
    return new_progress([command], dict.fromkeys(hosts, db_host), settings, **record)


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
    is unknown (still running, timed out) goes back to the source's endpoint, and so does a host
    whose recorded previous value is the restored endpoint itself (a second send of the cutover).

    No cutover record (its start step failed, possibly after sending the command) means unknown,
    not unchanged: every host carrying the app-host tag goes back to the source's endpoint.
    """
    commands = (cutover or {}).get("commands") or []
    if not commands:
        return revert_unknown_cutover(plan, settings)
    restored_host = (cutover or {}).get("target_db_host")
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
        if not previous or previous == restored_host:
            # Unknown, or the restored endpoint itself (the cutover ran twice on this host): the source's endpoint.
            fallback = fallback or source_endpoint(str(plan.get("source_instance")))
            previous = fallback
        targets[host] = previous
    by_value: dict[str, list[str]] = {}
    for host, value in targets.items():
        by_value.setdefault(value, []).append(host)
    sent = [set_db_host(hosts, value, settings, "irisx-restore rollback of cutover") for value, hosts in sorted(by_value.items())]
    expect: dict[str, str | None] = {**targets, **dict.fromkeys(unchanged)}
    return new_progress(sent, expect, settings, unchanged=unchanged, reverted_to=targets)


def revert_unknown_cutover(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """No record of what the cutover did: point every tagged host at the source's endpoint and check it there."""
    hosts = find_hosts(settings)
    if not hosts:
        raise RollbackFailed(
            "the cutover left no record (its start step failed, possibly after sending the command) and no running "
            f"instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}, so no API host can be "
            "checked; check every API host's DB_HOST by hand"
        )
    original = source_endpoint(str(plan.get("source_instance")))
    command = set_db_host(hosts, original, settings, "irisx-restore rollback of an unrecorded cutover")
    return new_progress(
        [command],
        dict.fromkeys(hosts, original),
        settings,
        unchanged=[],
        reverted_to=dict.fromkeys(hosts, original),
        note="no cutover record (its start step failed, possibly after sending): every tagged host is pointed at the source",
    )


def where_hosts_stand(cutover: dict[str, Any] | None, rollback: dict[str, Any] | None) -> str:
    """Every host the cutover or its rollback touched, and the last DB_HOST the records show for it."""
    cutover, rollback = cutover or {}, rollback or {}
    if not cutover.get("commands") and not rollback.get("commands"):
        return (
            "no record of the hosts (the cutover's start step failed, possibly after sending the command): "
            "check every API host's DB_HOST by hand"
        )
    target = cutover.get("target_db_host") or "the restored endpoint"
    back_results = rollback.get("results") or {}
    reverted_to = rollback.get("reverted_to") or {}
    unchanged = set(rollback.get("unchanged") or [])
    cut_results = cutover.get("results") or {}
    health = ((rollback.get("health") or {}).get("hosts")) or {}
    hosts = sorted(set(cutover.get("hosts") or []) | set(rollback.get("hosts") or []) | set(back_results) | set(cut_results))
    parts = []
    for host in hosts:
        back = back_results.get(host) or {}
        cut = cut_results.get(host) or {}
        if back.get("output", {}).get("db_host"):
            where = (
                f"DB_HOST={back['output']['db_host']} (rollback {back.get('status')}"
                + (f": {back['error']}" if back.get("error") else "")
                + ")"
            )
        elif host in reverted_to:
            before = cut.get("output", {}).get("db_host") or back.get("output", {}).get("previous_db_host") or f"{target} (probably)"
            where = f"DB_HOST={before}; the rollback to {reverted_to[host]} was sent, result {back.get('status') or 'not seen'}"
            if back.get("error"):
                where += f" ({back['error']})"
        elif host in unchanged:
            where = "not changed by the cutover (its command stopped before reading .env)"
        elif cut.get("output", {}).get("db_host"):
            where = f"DB_HOST={cut['output']['db_host']} (set by the cutover; no rollback sent)"
        else:
            where = f"DB_HOST unknown: the cutover to {target} was sent, no rollback sent"
        if host in health:
            where += f"; health: {health[host].get('detail')}"
        parts.append(f"{host}: {where}")
    return "; ".join(parts)


def explain_rollback_failure(
    failure: dict[str, Any] | None,
    rollback_failure: dict[str, Any] | None,
    plan: dict[str, Any] | None,
    cutover: dict[str, Any] | None = None,
    rollback: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The RollbackFailed error a human finishes by hand from: what failed first, and where hosts stand.

    With the restore workflow's cutover and rollback records, every host is named with the last
    DB_HOST those records show, in the cause and in `cleanup` (the journal's "left behind").
    """
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
    if not target:
        return {"error": "RollbackFailed", "cause": " ".join(parts)}
    hosts = where_hosts_stand(cutover, rollback)
    parts.append(f"[where the hosts stand: {hosts}]")
    parts.append(f"[{target} was NOT deleted: a host may still use it; finish the rollback by hand, then delete it]")
    left = f"{target} (the restored copy) was NOT deleted: a host may still use it; where the hosts stand: {hosts}"
    return {"error": "RollbackFailed", "cause": " ".join(parts), "cleanup": left}
