"""Answer moto's Lambda invokes with the project's own handlers, in process.

With Docker-less Lambda, moto's simple backend would echo the payload back. Here each invoke is
routed to the handler named in `statemachines/functions.json`, so the handler's boto3 calls reach
the same emulated AWS. A raised exception is answered the way AWS Lambda answers it (the
`x-amz-function-error: Unhandled` header and an errorType/errorMessage payload), so the state's
error is the exception's class name and the ASL's Retry and Catch run for real.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from restorectl.paths import FUNCTIONS_MANIFEST

TASK_TIMEOUT = "States.Timeout"
# What Lambda itself reports for a function that runs past its configured timeout.
FUNCTION_TIMEOUT = "Sandbox.Timedout"
# A Distributed Map's children invoke from several threads at once: `STATE=ERROR:1` must fire once, not once per thread.
_COUNTING = threading.Lock()


@dataclass
class Injection:
    """Make a Task state fail with `error` on its first `times` invocations (None: always).

    `after=True` (`STATE=ERROR[:N]@after`): the handler runs first, with all its effects, and only
    then is the error reported, as when a Lambda times out or its answer is lost after it acted.
    """

    state: str
    error: str
    times: int | None = None
    used: int = 0
    after: bool = False

    def fires(self) -> bool:
        with _COUNTING:
            if self.times is None or self.used < self.times:
                self.used += 1
                return True
            return False

    @classmethod
    def parse(cls, text: str) -> Injection:
        state, sep, rest = text.partition("=")
        if not sep or not state or not rest:
            raise ValueError(f"--inject {text!r}: write STATE=ERROR or STATE=ERROR:N, optionally followed by @after")
        rest, at, mode = rest.partition("@")
        if at and mode != "after":
            raise ValueError(f"--inject {text!r}: the only mode is @after (the handler runs, then the error is reported)")
        error, _, count = rest.partition(":")
        if not error:
            raise ValueError(f"--inject {text!r}: write STATE=ERROR or STATE=ERROR:N, optionally followed by @after")
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"--inject {text!r}: N must be a positive whole number")
        return cls(state=state, error=error, times=int(count) if count else None, after=bool(at))


INTERRUPTIONS = ("ABORTED", "TIMED_OUT")


@dataclass
class Interruption:
    """End the whole execution while Task `state` runs, as a person pressing Stop (ABORTED) or the
    execution's own TimeoutSeconds running out (TIMED_OUT) would: the step's handler still runs with
    all its effects (a Lambda already invoked finishes), and Step Functions never sees its answer.
    """

    state: str
    status: str
    fired: bool = False

    @classmethod
    def parse(cls, text: str, status: str) -> Interruption:
        if status not in INTERRUPTIONS:
            raise ValueError(f"an execution can be interrupted as {' or '.join(INTERRUPTIONS)}, not {status!r}")
        if not text or not text.replace("_", "").isalnum():
            raise ValueError(f"{text!r} is not a state name (write the Task's name as the console shows it)")
        return cls(state=text, status=status)


@dataclass
class LambdaContext:
    """What a handler's Powertools decorators read from the real Lambda context."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/rehearsal"
    log_stream_name: str = "rehearsal"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def load_manifest() -> dict[str, str]:
    manifest: dict[str, str] = json.loads(FUNCTIONS_MANIFEST.read_text())
    return manifest


def function_name_for(placeholder: str) -> str:
    """The emulated function's name for a `${...FunctionArn}` placeholder."""
    return "irisx-restore-" + placeholder.removesuffix("FunctionArn")


def _clear_metrics() -> None:
    """What each real invocation's flush does: the rehearsal disables publishing, so nothing else empties
    Powertools' shared metric set, and at 100 values of one metric it would try to publish them."""
    import sys

    observability = sys.modules.get("restore_runbook.common.observability")
    if observability is not None:
        observability.metrics.clear_metrics()


def _resolve(handler_path: str) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, attribute = handler_path.rpartition(".")
    handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), attribute)
    return handler


@dataclass
class LambdaBridge:
    handlers: dict[str, str]  # function name -> handler path
    injections: list[Injection] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)
    # Called with (execution_arn, status) to end the execution: the harness knows moto's executions.
    interrupt: Callable[[str, str], None] | None = None

    def answer(self, function_name: str, body: str | bytes | None, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        event = json.loads(body or "{}")
        state = (event.get("context") or {}).get("state") if isinstance(event, dict) else None
        record: dict[str, Any] = {"function": name, "state": state, "error": None}
        self.invocations.append(record)
        after: Injection | None = None
        for injection in self.injections:
            if injection.state == state and injection.fires():
                if injection.after:
                    after = after or injection
                    continue
                return self._injected(injection, state, record, response_headers)
        if name not in self.handlers:
            raise KeyError(f"no handler registered for emulated function {name!r}")
        handler = _resolve(self.handlers[name])
        context = LambdaContext(function_name=name, invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        try:
            result = handler(event, context)
        except Exception as exc:  # noqa: BLE001 - reported to Step Functions exactly as AWS Lambda reports it
            record["error"] = type(exc).__name__
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
            ).encode()
        finally:
            _clear_metrics()
            self._interrupt_if_asked(state, event)
        if after is not None:
            return self._injected(after, state, record, response_headers, ran=True)
        return json.dumps(result, default=str).encode()

    def _interrupt_if_asked(self, state: str | None, event: Any) -> None:
        execution_arn = ((event.get("context") or {}) if isinstance(event, dict) else {}).get("execution_id")
        for interruption in self.interruptions:
            if interruption.state == state and not interruption.fired and execution_arn and self.interrupt:
                interruption.fired = True
                self.interrupt(str(execution_arn), interruption.status)

    @staticmethod
    def _injected(
        injection: Injection, state: str | None, record: dict[str, Any], response_headers: dict[str, str], ran: bool = False
    ) -> bytes:
        record["error"] = injection.error
        if injection.error == TASK_TIMEOUT:
            # moto refuses a Lambda error named States.*; a Task that outlives its TimeoutSeconds is what
            # raises it in AWS, and moto's interpreter turns a TimeoutError from the invoke into exactly that.
            when = " after the handler ran" if ran else ""
            raise TimeoutError(f"{state} ran past its TimeoutSeconds (injected by the rehearsal{when})")
        response_headers["x-amz-function-error"] = "Unhandled"
        when = " after the handler ran" if ran else ""
        message = f"{injection.error} injected by the rehearsal into {state}{when}"
        if injection.error == FUNCTION_TIMEOUT:
            message = f"RequestId: {uuid.uuid4()} Error: Task timed out after 30.00 seconds ({message})"
        return json.dumps({"errorType": injection.error, "errorMessage": message}).encode()

    @contextlib.contextmanager
    def installed(self) -> Iterator[LambdaBridge]:
        from moto.awslambda_simple.models import LambdaSimpleBackend

        bridge = self

        def invoke(_backend: object, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
            return bridge.answer(function_name, body, response_headers)

        with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
            yield self
