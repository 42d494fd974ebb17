"""The restore workflow's cutover (DB_HOST to the restored copy) and its automatic revert."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, rds
from restore_runbook.common.errors import CutoverFailed, RollbackFailed
from restore_runbook.hosts import commands, ssm
from restore_runbook.hosts.ssm import PENDING
from restore_runbook.settings import RunbookSettings


def refuse_drill_copy(plan: dict[str, Any]) -> None:
    """A drill's copy is a throwaway that its drill deletes: production must never be pointed at it."""
    target = plan.get("target_instance")
    instance = rds.find_instance(str(target)) if target else None
    if plan.get("purpose") == rds.PURPOSE_DRILL or rds.tags_of(instance or {}).get(rds.TAG_PURPOSE) == rds.PURPOSE_DRILL:
        raise CutoverFailed(
            f"{target} is a drill's temporary copy (tag {rds.TAG_PURPOSE}={rds.PURPOSE_DRILL}), which its drill deletes; "
            "it is never a cutover target. No host was changed"
        )


def start_cutover(plan: dict[str, Any], restore: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    refuse_drill_copy(plan)
    db_host = ((restore or {}).get("endpoint") or {}).get("address")
    if not db_host:
        raise CutoverFailed(
            "the restored instance reported no endpoint address, so there is nothing to point the app at; no host was changed"
        )
    marker = ssm.execution_marker(execution_id)
    record = {
        "target_db_host": db_host,
        "execution_id": execution_id,
        "marker": marker,
        "target_instance": plan.get("target_instance"),
        "source_instance": plan.get("source_instance"),
        # A warm pool's hosts, stopped in EC2: no command reaches them, and one started later serves with the
        # DB_HOST its own .env has, the old database's; the success record names them (restore/protection.py).
        # Read before anything is sent, so a failure to read them reverts nothing.
        "ec2_stopped_hosts": ssm.find_stopped_hosts(settings),
    }
    # Idempotent: a retry of this step (the first invocation sent the command, then its answer was lost)
    # finds this execution's command by the marker in its Comment and follows it instead of sending again.
    # A second send would record the restored endpoint as every host's previous DB_HOST.
    sent = ssm.find_sent_command(settings.set_db_host_document, marker)
    if sent is not None:
        if sent["db_host"] not in (None, db_host):
            raise CutoverFailed(
                f"this execution already sent command {sent['command_id']} pointing {', '.join(sent['hosts'])} at "
                f"{sent['db_host']}, not at {db_host}; the rollback puts every host back on the source"
            )
        command = {key: sent[key] for key in ("command_id", "document", "hosts")}
        return commands.new_progress([command], dict.fromkeys(sent["hosts"], db_host), settings, **record, reused_command=True)
    hosts = ssm.find_hosts(settings)
    if not hosts:
        raise CutoverFailed(
            f"no running instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}, so no API host "
            "could be pointed at the restored database; no host was changed"
        )
    command = ssm.set_db_host(hosts, db_host, settings, f"irisx-restore cutover [{marker}] to {plan.get('target_instance')}")
    return commands.new_progress([command], dict.fromkeys(hosts, db_host), settings, **record)


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
    cutover_commands = (cutover or {}).get("commands") or []
    if not cutover_commands:
        return revert_unknown_cutover(plan, settings)
    restored_host = (cutover or {}).get("target_db_host")
    results = ssm.look(cutover_commands)
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
    # A host terminated since the cutover (its autoscaling group replaced it) took its .env with it,
    # and one such id in a command makes SSM refuse the command for every host.
    terminated = set(results) - set(ssm.not_terminated(sorted(results)))
    if terminated == set(results):
        raise RollbackFailed(
            f"every API host the cutover reached ({', '.join(sorted(terminated))}) has been terminated since, so no host can be "
            f"pointed back or checked; the hosts serving now were never pointed at the copy by this execution, but check their "
            "DB_HOST by hand"
        )
    by_value: dict[str, list[str]] = {}
    for host, value in targets.items():
        if host not in terminated:
            by_value.setdefault(value, []).append(host)
    sent: list[dict[str, Any]] = []
    for value, hosts in sorted(by_value.items()):
        command, gone = _send_to_hosts_still_there(hosts, value, settings)
        terminated.update(gone)
        sent += [command] if command else []
    targets = {host: value for host, value in targets.items() if host not in terminated}
    unchanged = [host for host in unchanged if host not in terminated]
    expect: dict[str, str | None] = {**targets, **dict.fromkeys(unchanged)}
    extra: dict[str, Any] = {"terminated_since_cutover": sorted(terminated)} if terminated else {}
    return commands.new_progress(sent, expect, settings, unchanged=unchanged, reverted_to=targets, **extra)


def _send_to_hosts_still_there(hosts: list[str], db_host: str, settings: RunbookSettings) -> tuple[dict[str, Any] | None, list[str]]:
    """(the revert command sent, the hosts terminated before it could be): hosts pointed at a copy that
    failed its health check fail their load balancer's checks too, so their autoscaling group may be
    terminating one at this very moment, and SSM refuses a command naming one for every host. Each
    resend names fewer hosts, so this ends."""
    try:
        return ssm.set_db_host(hosts, db_host, settings, "irisx-restore rollback of cutover"), []
    except Exception as exc:
        if aws.error_code(exc) != "InvalidInstanceId":
            raise
        there = ssm.not_terminated(hosts)
        if there == sorted(hosts):
            raise  # refused for another reason (a host SSM does not manage, say): the error names it
        gone = sorted(set(hosts) - set(there))
        if not there:
            return None, gone
        command, later = _send_to_hosts_still_there(there, db_host, settings)
        return command, gone + later


def revert_unknown_cutover(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """No record of what the cutover did: point every tagged host at the source's endpoint and check it there."""
    hosts = ssm.find_hosts(settings)
    if not hosts:
        raise RollbackFailed(
            "the cutover left no record (its start step failed, possibly after sending the command) and no running "
            f"instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}, so no API host can be "
            "checked; check every API host's DB_HOST by hand"
        )
    original = source_endpoint(str(plan.get("source_instance")))
    command = ssm.set_db_host(hosts, original, settings, "irisx-restore rollback of an unrecorded cutover")
    return commands.new_progress(
        [command],
        dict.fromkeys(hosts, original),
        settings,
        unchanged=[],
        reverted_to=dict.fromkeys(hosts, original),
        note="no cutover record (its start step failed, possibly after sending): every tagged host is pointed at the source",
    )
