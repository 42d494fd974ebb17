"""Emulated IRISX API hosts for rehearsals: SSM Run Command with the project's documents, for real.

Each host is a moto EC2 instance carrying the app-host tag, plus a sandbox directory standing in
for its file system: `<sandbox>/home/ubuntu/irisx-backend/.env` (an IRISX-like file: several
variables, comments, a last line without a newline), a `pm2` stub on PATH that (re)starts a small
health server (restorectl/app_health_server.py) reading DB_HOST from that .env, and a `curl`
wrapper that sends `localhost:3000` to that host's own server (each host has its own localhost).

moto's `send_command` is patched for the project's documents: the document content stored in SSM
is read back, every parameter is checked against its allowedPattern/allowedValues exactly as SSM
does (a refused value never reaches a host), the `{{ Param }}` substitutions are made, and the
resulting command text runs under /bin/sh (as the SSM agent runs `_script.sh`) in the host's sandbox.
Absolute paths in EnvFile are mapped into the sandbox, like a chroot. Results (Success/Failed, stdout,
stderr) are what GetCommandInvocation answers, visible after a few simulated seconds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from restorectl.paths import ROOT
from restorectl.simclock import SimulatedClock

COMMAND_SECONDS = 4.0  # simulated time a host takes to pick up and run a command
PARAMETER = re.compile(r"\{\{\s*([A-Za-z0-9]+)\s*\}\}")


class ParameterRefused(ValueError):
    """SSM refused a SendCommand parameter (InvalidParameters)."""


def check_and_render(content: dict[str, Any], parameters: dict[str, list[str]]) -> str:
    """What SSM does before a command reaches a host: check every parameter, then substitute.

    Raises ParameterRefused for an unknown or missing parameter, or a value outside its
    allowedValues or not matching its allowedPattern. Returns the shell text the agent runs.
    """
    specs: dict[str, Any] = content.get("parameters", {})
    problems = [f"parameter {name} is not defined in the document" for name in sorted(set(parameters) - set(specs))]
    values: dict[str, str] = {}
    for name, spec in specs.items():
        given = parameters.get(name)
        if given is None and "default" in spec:
            given = [spec["default"]]
        if not given or len(given) != 1 or not isinstance(given[0], str):
            problems.append(f"parameter {name} needs exactly one string value")
            continue
        value = given[0]
        if "allowedValues" in spec and value not in spec["allowedValues"]:
            problems.append(f"parameter {name} value {value!r} is not one of {spec['allowedValues']}")
        elif "allowedPattern" in spec and not re.fullmatch(spec["allowedPattern"], value):
            problems.append(f"parameter {name} value {value!r} does not match the allowedPattern {spec['allowedPattern']}")
        values[name] = value
    if problems:
        raise ParameterRefused("; ".join(problems))
    lines: list[str] = []
    for step in content.get("mainSteps", []):
        if step.get("action") != "aws:runShellScript":
            raise ParameterRefused(f"the rehearsal runs only aws:runShellScript steps, not {step.get('action')}")
        lines.extend(step["inputs"]["runCommand"])
    return PARAMETER.sub(lambda m: values[m.group(1)], "\n".join(lines)) + "\n"


def irisx_env(db_host: str, db_user: str, db_password: str) -> str:
    """An IRISX-like .env: comments, several variables, CRLF-free, and no newline after the last line."""
    return (
        "# IRISX API configuration (managed by hand on the API host)\n"
        "NODE_ENV=production\n"
        "PORT=3000\n"
        "\n"
        "# Database\n"
        f"DB_HOST={db_host}\n"
        "DB_PORT=5432\n"
        "DB_NAME=irisx\n"
        f"DB_USER={db_user}\n"
        f"DB_PASSWORD={db_password}\n"
        "\n"
        "# Telephony\n"
        "TWILIO_REGION=us1\n"
        "RECORDINGS_BUCKET=irisx-prod-recordings-672e7c49"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PM2_STUB = """#!/bin/bash
# pm2 stand-in for one emulated host: restart/start/stop the health server. Fails on purpose when the
# rehearsal asked for it (pm2_failures: N more failures, -1 = always).
set -u
HOST_DIR={host_dir}
action=${{1:-}}
failures=$(cat "$HOST_DIR/pm2_failures" 2>/dev/null || echo 0)
stop_server() {{
  if [ -f "$HOST_DIR/server.pid" ]; then
    kill "$(cat "$HOST_DIR/server.pid")" 2>/dev/null || true
    rm -f "$HOST_DIR/server.pid"
  fi
}}
case "$action" in
  restart|start)
    if [ "$failures" != 0 ]; then
      [ "$failures" -gt 0 ] && echo $((failures - 1)) > "$HOST_DIR/pm2_failures"
      echo "[PM2][ERROR] Process ${{2:-?}} errored while restarting" >&2
      exit 1
    fi
    stop_server
    {python} -m restorectl.app_health_server {env_file} {map_file} {port} </dev/null >>"$HOST_DIR/server.log" 2>&1 &
    echo $! > "$HOST_DIR/server.pid"
    for _ in $(seq 1 500); do  # 5 s
      if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then
        echo "[PM2] [${{2:-?}}](0) ✓"
        exit 0
      fi
      sleep 0.01
    done
    echo "[PM2][ERROR] ${{2:-?}} did not start listening" >&2
    exit 1
    ;;
  stop)
    stop_server
    echo "[PM2] [${{2:-?}}](0) stopped"
    ;;
  *)
    echo "pm2 stub: unsupported action $action" >&2
    exit 1
    ;;
esac
"""

CURL_WRAPPER = """#!/bin/sh
# This host's localhost:{app_port} is its own health server.
exec {curl} --connect-to localhost:{app_port}:127.0.0.1:{port} --connect-to 127.0.0.1:{app_port}:127.0.0.1:{port} "$@"
"""


@dataclass
class EmulatedHost:
    instance_id: str
    name: str
    root: Path  # the host's "/"
    port: int

    @property
    def dir(self) -> Path:
        return self.root / "_emulation"

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


@dataclass
class Invocation:
    status: str
    stdout: str
    stderr: str
    ready_at: datetime
    polls_in_progress: int = 0  # polls still to answer InProgress, whatever the clock says


@dataclass
class EmulatedAppHosts:
    clock: SimulatedClock
    rds: Any  # EmulatedRds
    pg: Any  # LocalPostgres
    name_prefix: str
    tag_key: str
    tag_value: str
    env_file: str
    health_url: str
    count: int = 2
    failing_hosts: tuple[str, ...] = ()  # the first pm2 restart fails (the cutover's), later ones work
    broken_hosts: tuple[str, ...] = ()  # every pm2 restart fails (the rollback cannot fix them either)
    app_blocked_from_restored: bool = False  # the app cannot reach restored instances (as with a missing SG rule)
    # Every command reads InProgress for its first N polls: a real SSM command takes seconds, so a
    # workflow's "still running" loop-back is taken however long its Wait is.
    command_polls: int = 0
    hosts: list[EmulatedHost] = field(default_factory=list)
    invocations: dict[tuple[str, str], Invocation] = field(default_factory=dict)
    commands_run: list[dict[str, Any]] = field(default_factory=list)
    sandbox: Path | None = None

    # ------------------------------------------------------------------ the world at the start

    def seed(self, source_id: str) -> None:
        import boto3

        from stacks.ssm_documents import DOCUMENTS, content_json

        ssm = boto3.client("ssm")
        for document in DOCUMENTS:
            ssm.create_document(
                Name=document.name(self.name_prefix), Content=content_json(document), DocumentType="Command", DocumentFormat="JSON"
            )
        ec2 = boto3.client("ec2")
        image = "ami-1e749f67"  # moto checks no image (the rehearsal loads none: MOTO_EC2_LOAD_DEFAULT_AMIS)
        source = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=source_id)["DBInstances"][0]
        source_host = source["Endpoint"]["Address"]
        self.sandbox = Path(tempfile.mkdtemp(prefix="irisx-app-hosts-"))
        self._write_map()
        for index in range(1, self.count + 1):
            name = f"irisx-api-{index}"
            instance = ec2.run_instances(
                ImageId=image,
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.small",
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": self.tag_key, "Value": self.tag_value}, {"Key": "Name", "Value": name}]}
                ],
            )["Instances"][0]
            host = EmulatedHost(instance["InstanceId"], name, self.sandbox / instance["InstanceId"], _free_port())
            self._build_host(host, source_host)
            self.hosts.append(host)
        # An untagged instance in the same account must never receive a command.
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "irisx-worker"}]}],
        )
        self._start_apps()

    def _build_host(self, host: EmulatedHost, source_host: str) -> None:
        assert self.sandbox is not None, "seed() makes the sandbox before any host"
        env_path = host.path(self.env_file)
        env_path.parent.mkdir(parents=True)
        env_path.write_text(irisx_env(source_host, self.pg.user, self.pg.password))
        bin_dir = host.root / "usr" / "local" / "bin"
        bin_dir.mkdir(parents=True)
        host.dir.mkdir()
        failures = (
            -1
            if host.name in self.broken_hosts or host.instance_id in self.broken_hosts
            else (1 if host.name in self.failing_hosts or host.instance_id in self.failing_hosts else 0)
        )
        # The first start (the app running before the rehearsal) is not one of the counted restarts.
        (host.dir / "pm2_failures").write_text("0")
        (host.dir / "pm2_failures_after_start").write_text(str(failures))
        app_port = re.match(r"^https?://[^/:]+:?(\d*)", self.health_url)
        pm2 = bin_dir / "pm2"
        pm2.write_text(
            PM2_STUB.format(
                host_dir=host.dir, python=sys.executable, env_file=env_path, map_file=self.sandbox / "dbmap.json", port=host.port
            )
        )
        curl = bin_dir / "curl"
        curl.write_text(
            CURL_WRAPPER.format(
                curl=shutil.which("curl") or "/usr/bin/curl", app_port=(app_port and app_port.group(1)) or "80", port=host.port
            )
        )
        for tool in (pm2, curl):
            tool.chmod(0o755)

    def _start_apps(self) -> None:
        """The app running on every host before the rehearsal, started side by side."""
        started = [
            (
                host,
                subprocess.Popen(
                    [str(host.root / "usr/local/bin/pm2"), "start", "irisx-api"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                ),
            )
            for host in self.hosts
        ]
        for host, process in started:
            _, stderr = process.communicate(timeout=30)
            if process.returncode != 0:
                raise RuntimeError(f"could not start the emulated app on {host.name}: {stderr}")
            (host.dir / "pm2_failures").write_text((host.dir / "pm2_failures_after_start").read_text())

    def _write_map(self) -> None:
        """Emulated DNS for the health servers: RDS endpoint address -> local database (available instances only)."""
        from moto.rds import models as rds_models

        assert self.sandbox is not None
        backend = rds_models.rds_backends["123456789012"]["us-east-1"]
        routes: dict[str, dict[str, Any]] = {}
        source_ids = {
            i for i, db in backend.databases.items() if not any(t.get("Key") == "irisx-restore:managed-by" for t in db.tags or [])
        }
        for instance_id, instance in backend.databases.items():
            if instance_id not in self.rds.instance_db or instance.status != "available":
                continue
            blocked = self.app_blocked_from_restored and instance_id not in source_ids
            routes[instance.address] = {
                "host": self.pg.host,
                "port": 1 if blocked else self.pg.port,  # nothing listens on port 1: connection refused
                "dbname": self.rds.instance_db[instance_id],
            }
        tmp = self.sandbox / "dbmap.json.tmp"
        tmp.write_text(json.dumps(routes))
        tmp.replace(self.sandbox / "dbmap.json")

    # ------------------------------------------------------------------ SSM Run Command

    def _run_on(self, host: EmulatedHost, script: str, command_id: str) -> tuple[str, str, str]:
        work = host.root / "var" / "lib" / "amazon" / "ssm" / command_id
        work.mkdir(parents=True)
        (work / "_script.sh").write_text(script)
        env = {
            "PATH": f"{host.root / 'usr/local/bin'}:/usr/bin:/bin",
            "HOME": str(host.root / "root"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        try:
            result = subprocess.run(
                ["/bin/sh", str(work / "_script.sh")], capture_output=True, text=True, cwd=work, env=env, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            return "TimedOut", "", "the command did not finish within its timeout"
        return ("Success" if result.returncode == 0 else "Failed"), result.stdout, result.stderr

    def send_command(self, command: Any, document_content: dict[str, Any], parameters: dict[str, list[str]]) -> None:
        self._write_map()
        by_id = {h.instance_id: h for h in self.hosts}
        ready_at = self.clock.now() + timedelta(seconds=COMMAND_SECONDS)
        scripts: dict[str, tuple[EmulatedHost, str]] = {}
        for instance_id in command.instance_ids:
            host = by_id.get(instance_id)
            if host is None:
                self.invocations[(command.command_id, instance_id)] = Invocation(
                    "Failed", "", "instance is not an emulated API host", ready_at
                )
                continue
            chrooted = dict(parameters)
            if "EnvFile" in chrooted:
                chrooted["EnvFile"] = [str(host.path(chrooted["EnvFile"][0]))]
            scripts[instance_id] = (host, check_and_render(document_content, chrooted))
        # SSM runs a command on its hosts at the same time; each script mostly waits for its app to listen.
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(scripts))) as pool:
            runs = {i: pool.submit(self._run_on, host, script, command.command_id) for i, (host, script) in scripts.items()}
        for instance_id, run in runs.items():
            host = scripts[instance_id][0]
            status, stdout, stderr = run.result()
            self.invocations[(command.command_id, instance_id)] = Invocation(status, stdout, stderr, ready_at, self.command_polls)
            self.commands_run.append({"host": host.name, "document": command.document_name, "parameters": parameters, "status": status})

    @functools.cached_property
    def _ec2(self) -> Any:
        import boto3

        return boto3.client("ec2")  # every SSM command asks which hosts still run: one client, not one per command

    def not_running(self, instance_ids: list[str]) -> list[str]:
        """Which of `instance_ids` EC2 does not list as running (terminated or stopped since)."""
        running: set[str] = set()
        pages = self._ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": instance_ids}, {"Name": "instance-state-name", "Values": ["running"]}]
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                running.update(i["InstanceId"] for i in reservation.get("Instances", []))
        return [i for i in instance_ids if i not in running]

    def answer(self, command_id: str, instance_id: str, original: dict[str, Any]) -> dict[str, Any]:
        invocation = self.invocations.get((command_id, instance_id))
        if invocation is None:
            return original
        in_progress = invocation.polls_in_progress > 0
        invocation.polls_in_progress -= 1 if in_progress else 0
        if in_progress or self.clock.now() < invocation.ready_at:
            return {
                **original,
                "Status": "InProgress",
                "StatusDetails": "InProgress",
                "ResponseCode": -1,
                "StandardOutputContent": "",
                "StandardErrorContent": "",
            }
        return {
            **original,
            "Status": invocation.status,
            "StatusDetails": invocation.status,
            "ResponseCode": 0 if invocation.status == "Success" else 1,
            "StandardOutputContent": invocation.stdout[-24000:],
            "StandardErrorContent": invocation.stderr[-8000:],
        }

    @contextlib.contextmanager
    def installed(self) -> Iterator[EmulatedAppHosts]:
        from moto.ssm import models as ssm_models
        from moto.ssm.exceptions import SSMException as RESTError

        world = self
        backend_class = ssm_models.SimpleSystemManagerBackend
        original_send = backend_class.send_command
        original_get = backend_class.get_command_invocation
        ours = {f"{self.name_prefix}-set-db-host", f"{self.name_prefix}-app-control"}

        def send_command(backend: Any, *args: Any, **kwargs: Any) -> Any:
            names = [
                "comment",
                "document_name",
                "timeout_seconds",
                "instance_ids",
                "max_concurrency",
                "max_errors",
                "notification_config",
                "output_s3_bucket_name",
                "output_s3_key_prefix",
                "output_s3_region",
                "parameters",
                "service_role_arn",
                "targets",
            ]
            call = {**dict(zip(names, args, strict=False)), **kwargs}
            document_name = call.get("document_name")
            if document_name in ours:
                content = json.loads(backend.get_document(document_name, None, None, "JSON")["Content"])
                try:
                    check_and_render(content, call.get("parameters") or {})
                except ParameterRefused as exc:
                    raise RESTError("InvalidParameters", str(exc)) from exc
                sent_to = list(call.get("instance_ids") or [])  # copied: moto extends the given list in place
                gone = world.not_running(sent_to)
                if gone:
                    # SSM refuses the whole command when any listed instance is not a running, managed one.
                    raise RESTError("InvalidInstanceId", f"instances not in a valid state for account: {', '.join(gone)}")
                command = original_send(backend, *args, **kwargs)
                if sent_to and not call.get("targets"):
                    # moto adds every instance in the account when no Targets are given; SSM keeps InstanceIds as sent.
                    command.instance_ids = list(dict.fromkeys(sent_to))
                world.send_command(command, content, call.get("parameters") or {})
                return command
            if document_name == "AWS-RunShellScript":
                raise RESTError(
                    "AccessDeniedException", "the rehearsal, like the stack's IAM policy, allows only the project's own documents"
                )
            return original_send(backend, *args, **kwargs)

        def get_command_invocation(backend: Any, command_id: str, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
            return world.answer(command_id, instance_id, original_get(backend, command_id, instance_id, plugin_name))

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.object(backend_class, "send_command", send_command))
            stack.enter_context(mock.patch.object(backend_class, "get_command_invocation", get_command_invocation))
            yield self

    # ------------------------------------------------------------------ tear-down and reporting

    def teardown(self) -> None:
        for host in self.hosts:
            pid_file = host.dir / "server.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        if self.sandbox is not None:
            shutil.rmtree(self.sandbox, ignore_errors=True)
        self.hosts.clear()

    def db_host_of(self, host: EmulatedHost) -> str | None:
        from restorectl.app_health_server import read_env

        env_path = host.path(self.env_file)
        return read_env(env_path).get("DB_HOST") if env_path.exists() else None

    def health_of(self, host: EmulatedHost) -> str:
        self._write_map()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host.port}/health", timeout=5) as response:
                return str(json.loads(response.read()).get("database"))
        except urllib.error.HTTPError as exc:
            return str(json.loads(exc.read() or b"{}").get("database", f"HTTP {exc.code}"))
        except OSError:
            return "down"

    def describe_world(self) -> dict[str, Any]:
        return {
            "app_hosts": [
                {"id": h.instance_id, "name": h.name, "db_host": self.db_host_of(h), "health": self.health_of(h)} for h in self.hosts
            ]
        }
