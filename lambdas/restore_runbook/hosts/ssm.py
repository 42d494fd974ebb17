"""Reaching the API hosts: SSM Run Command with the project's own documents, and reading the results.

No SSH and no host address anywhere: the hosts are the running instances that carry the app-host
tag, and every change runs one of the stack's Command documents (`set-db-host`, `app-control`),
whose parameters SSM checks against their allowedPattern before anything runs on a host.

Steps never wait here: they send a command and return, or look at a command once. The state
machine's Wait -> Task -> Choice loops do the waiting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.settings import RunbookSettings

PENDING = frozenset({"Pending", "InProgress", "Delayed"})

SUCCESS = "Success"
# EC2 states of an instance that exists but runs no app: it keeps its .env and starts with it.
STOPPED = ["stopping", "stopped"]
# Every state but shutting-down and terminated: the instance still has its .env.
LIVE = ["pending", "running", *STOPPED]


def find_hosts(settings: RunbookSettings) -> list[str]:
    """Running instances carrying the app-host tag, sorted by id."""
    return sorted(_tagged_host_states(settings, ["running"]))


def find_stopped_hosts(settings: RunbookSettings) -> list[str]:
    """Tagged app hosts stopped (or stopping) in EC2, a warm pool's say: no command reaches one, and
    it starts with the .env it has."""
    return sorted(_tagged_host_states(settings, STOPPED))


def appeared_since(known: list[str], settings: RunbookSettings, *, known_stopped: Sequence[str] = ()) -> list[str]:
    """App hosts not among `known` (the running ones a workflow found and acted on), in any state but
    terminated: a pending one is about to serve, and a stopped one serves with its DB_HOST as it was
    when it starts. One of `known_stopped` (stopped in EC2 when the workflow found its hosts) counts
    only once it is no longer stopped."""
    states = _tagged_host_states(settings, LIVE)
    return sorted(h for h, state in states.items() if h not in known and not (h in known_stopped and state in STOPPED))


def still_running(hosts: list[str]) -> list[str]:
    """Those of `hosts` that are running now. Filtered, not looked up by id: a terminated instance
    that EC2 has forgotten would fail a look-up by id for all of them."""
    return sorted(_instance_states([{"Name": "instance-id", "Values": list(hosts)}], ["running"])) if hosts else []


def not_terminated(hosts: list[str]) -> list[str]:
    """Those of `hosts` that still exist: a stopped one keeps its .env, and starts with it."""
    return sorted(_instance_states([{"Name": "instance-id", "Values": list(hosts)}], LIVE)) if hosts else []


def _tagged_host_states(settings: RunbookSettings, states: list[str]) -> dict[str, str]:
    return _instance_states([{"Name": f"tag:{settings.app_host_tag_key}", "Values": [settings.app_host_tag_value]}], states)


def _instance_states(filters: list[dict[str, Any]], states: list[str]) -> dict[str, str]:
    """Instance id -> EC2 state of the instances matching `filters` in one of `states`."""
    found: dict[str, str] = {}
    paginator = aws.client("ec2").get_paginator("describe_instances")
    for page in paginator.paginate(Filters=[*filters, {"Name": "instance-state-name", "Values": states}]):
        for reservation in page.get("Reservations", []):
            found.update({i["InstanceId"]: (i.get("State") or {}).get("Name", "") for i in reservation.get("Instances", [])})
    return found


def serving_now(planned: list[str], settings: RunbookSettings) -> tuple[list[str], list[str]]:
    """(the hosts to command now, those of `planned` gone since): the planned hosts still running and
    any tagged since. A step that restarts the app long after its plan listed the hosts uses this: a
    host terminated meanwhile (replaced by its autoscaling group while the app was stopped) would
    make SSM refuse the whole command and leave the others stopped."""
    hosts = sorted(set(still_running(planned)) | set(find_hosts(settings)))
    return hosts, sorted(set(planned) - set(hosts))


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
