"""The project's own SSM Command documents, built from the scripts in `ssm/`.

Pure Python (no CDK import), so the stack, the rehearsal and the tests build the SAME document
content from the SAME script files. Parameters reach a script only as environment variables:
each `{{ Param }}` substitution sits inside single quotes in an `export NAME='...'` line, and the
parameter's `allowedPattern` (or `allowedValues`) forbids quotes and every shell metacharacter, so
a value can never leave its quotes. The script body then runs under bash from a quoted here-doc,
which SSM does not touch and the shell does not expand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The parameters' allowedPatterns and the documents' names are the Lambda code's contract too.
from restore_runbook.contract import (
    APP_CONTROL_DOCUMENT,
    APP_NAME_PATTERN,
    DB_HOST_PATTERN,
    ENV_FILE_PATTERN,
    HEALTH_URL_PATTERN,
    SET_DB_HOST_DOCUMENT,
    document_name,
)

SCRIPTS = Path(__file__).resolve().parent.parent / "ssm"
HEREDOC_END = "IRISX_RESTORE_SCRIPT_END"

ACTIONS = ("stop", "restart", "health")


@dataclass(frozen=True)
class Parameter:
    name: str
    env: str
    description: str
    pattern: str | None = None
    values: tuple[str, ...] = ()

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "String", "description": self.description}
        if self.pattern:
            spec["allowedPattern"] = self.pattern
        if self.values:
            spec["allowedValues"] = list(self.values)
        return spec

    def check(self, value: Any) -> str | None:
        """What SSM says when it refuses the value, or None when it is accepted."""
        if not isinstance(value, str):
            return f"Parameter {self.name} must be a string"
        if self.values and value not in self.values:
            return f"Parameter {self.name} value {value!r} is not one of the allowed values {list(self.values)}"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"Parameter {self.name} value {value!r} does not match the allowed pattern {self.pattern}"
        return None


@dataclass(frozen=True)
class CommandDocument:
    key: str  # short name; the deployed name is f"{name_prefix}-{key}"
    description: str
    script: str  # file name in ssm/
    parameters: tuple[Parameter, ...]

    def name(self, name_prefix: str) -> str:
        return document_name(name_prefix, self.key)

    def script_path(self) -> Path:
        return SCRIPTS / self.script

    def run_command(self) -> list[str]:
        body = self.script_path().read_text(encoding="utf-8")
        if "{{" in body or HEREDOC_END in body:
            raise ValueError(f"{self.script} must not contain '{{{{' or {HEREDOC_END}: SSM or the shell would rewrite it")
        exports = [f"export {p.env}='{{{{ {p.name} }}}}'" for p in self.parameters]
        # The whole body is read before bash starts (command substitution), so a child that reads
        # stdin (pm2, sudo) can never swallow the rest of the script.
        return [
            *exports,
            f"exec /bin/bash -c \"$(cat <<'{HEREDOC_END}'",
            *body.rstrip("\n").split("\n"),
            HEREDOC_END,
            f')" {self.script}',
        ]

    def content(self) -> dict[str, Any]:
        return {
            "schemaVersion": "2.2",
            "description": self.description,
            "parameters": {p.name: p.spec() for p in self.parameters},
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": self.key.replace("-", ""),
                    "inputs": {"timeoutSeconds": "120", "runCommand": self.run_command()},
                }
            ],
        }

    def check_parameters(self, parameters: dict[str, list[str]]) -> list[str]:
        """The refusals SSM would answer SendCommand with (unknown, missing or disallowed values)."""
        known = {p.name: p for p in self.parameters}
        problems = [f"Parameter {name} is not defined in the document" for name in sorted(set(parameters) - set(known))]
        for name, parameter in known.items():
            values = parameters.get(name)
            if not values or len(values) != 1:
                problems.append(f"Parameter {name} needs exactly one value")
                continue
            problem = parameter.check(values[0])
            if problem:
                problems.append(problem)
        return problems

    def render(self, parameters: dict[str, list[str]]) -> str:
        """The shell text the SSM agent runs, after SSM substituted the (checked) parameters."""
        problems = self.check_parameters(parameters)
        if problems:
            raise ValueError("; ".join(problems))
        text = "\n".join(self.run_command()) + "\n"
        for parameter in self.parameters:
            text = text.replace(f"{{{{ {parameter.name} }}}}", parameters[parameter.name][0])
        return text


ENV_FILE = Parameter("EnvFile", "ENV_FILE", "Absolute path of the app's .env file", pattern=ENV_FILE_PATTERN)
APP_NAME = Parameter("AppName", "APP_NAME", "pm2 process name of the app", pattern=APP_NAME_PATTERN)

SET_DB_HOST = CommandDocument(
    key=SET_DB_HOST_DOCUMENT,
    description="IRISX restore runbook: point the API at a database host (rewrite DB_HOST in .env, keep a backup, pm2 restart)",
    script="set_db_host.sh",
    parameters=(
        Parameter("DbHost", "DB_HOST", "Database host name to write as DB_HOST", pattern=DB_HOST_PATTERN),
        ENV_FILE,
        APP_NAME,
    ),
)

APP_CONTROL = CommandDocument(
    key=APP_CONTROL_DOCUMENT,
    description="IRISX restore runbook: stop, restart or health-check the API (pm2 and GET /health)",
    script="app_control.sh",
    parameters=(
        Parameter("Action", "ACTION", "What to do: stop, restart or health", values=ACTIONS),
        APP_NAME,
        Parameter("HealthUrl", "HEALTH_URL", "The app's health URL, read on the host itself", pattern=HEALTH_URL_PATTERN),
        ENV_FILE,
    ),
)

DOCUMENTS = (SET_DB_HOST, APP_CONTROL)


def by_name(name: str, name_prefix: str) -> CommandDocument | None:
    return next((d for d in DOCUMENTS if d.name(name_prefix) == name), None)


def content_json(document: CommandDocument) -> str:
    return json.dumps(document.content(), indent=2)
