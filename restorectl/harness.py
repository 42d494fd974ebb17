"""Run a workflow's real ASL with the real handlers against emulated AWS and a real PostgreSQL.

    with Rehearsal(pg, options) as rehearsal:
        result = rehearsal.run("restore", {"mode": "point-in-time"})

Nothing in the control flow is fake: moto's Step Functions interpreter executes the same
`statemachines/*.asl.json` that CDK deploys, every Task invokes the handler that Lambda would,
and every Retry, Catch, Wait and Choice is the definition's own. Only the surroundings are
emulated: AWS (moto), the clock (simulated) and the database servers (a local cluster).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, TextIO
from unittest import mock

from restorectl import emulated_monitoring, emulated_sfn, interpreter_caches, shared_service_models
from restorectl.emulated_journal import EmulatedJournal
from restorectl.emulated_map_children import MapChildren
from restorectl.emulated_rds import EmulatedRds
from restorectl.emulated_redrive import REDRIVABLE_STATUSES, NotRedrivable, Redrive, Redrives, entered_with, unsuccessful_state
from restorectl.emulated_renames import EmulatedRenames
from restorectl.lambda_bridge import Injection, Interruption, LambdaBridge, function_name_for, load_manifest
from restorectl.localpg import LocalPostgres
from restorectl.paths import CDK_JSON, LAMBDAS, STATEMACHINES
from restorectl.simclock import SimulatedClock

ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET_NAME = "irisx/prod/rds-postgres"  # noqa: S105 - a name, not a secret
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# A failed execution must never hang a test run; real seconds, not simulated ones.
EXECUTION_REAL_TIMEOUT_SECONDS = 300
FOLLOW_POLL_SECONDS = 0.005
STATE_MACHINE_PREFIX = "irisx-restore-"
RECORDINGS_WORK_BUCKET = f"irisx-restore-recordings-work-{ACCOUNT}"
ABANDONED_FUNCTION = "irisx-restore-RecordAbandonedExecution"
# When set, every finished execution's history is appended to this file as one JSON line (the
# test suite's workflow coverage report reads it; subprocesses inherit it, so CLI runs count too).
HISTORY_LOG_ENV = "REHEARSAL_HISTORY_LOG"


class UnknownWorkflow(ValueError):
    pass


def available_workflows() -> list[str]:
    return sorted(p.name.removesuffix(".asl.json") for p in STATEMACHINES.glob("*.asl.json"))


def asl_path(workflow: str):  # type: ignore[no-untyped-def]
    path = STATEMACHINES / f"{workflow}.asl.json"
    if not path.exists():
        known = ", ".join(available_workflows()) or "none"
        raise UnknownWorkflow(f"unknown workflow {workflow!r}; known workflows: {known}")
    return path


def placeholders(definition: str) -> list[str]:
    return sorted(set(PLACEHOLDER.findall(definition)))


@dataclass
class RehearsalOptions:
    calls_rows: int = 2000
    restore_minutes: float = 20.0
    restore_outcome: str = "available"
    snapshot_minutes: float = 8.0
    snapshot_outcome: str = "available"
    rename_minutes: float = 10.0  # an RDS rename: renaming, then a reboot, until the new DNS name answers
    delete_minutes: float = 0.0  # a deleted instance stays listed `deleting` this long (RDS: minutes; moto: none)
    start: datetime = field(default_factory=lambda: datetime(2025, 11, 2, 12, 0, tzinfo=timezone.utc))
    injections: list[Injection] = field(default_factory=list)
    # End the execution ABORTED or TIMED_OUT while a Task runs; the abandoned-execution function then runs as EventBridge would call it.
    interruptions: list[Interruption] = field(default_factory=list)
    source_instance: str = "irisx-prod-rds-postgres"
    settings_overrides: dict[str, str] = field(default_factory=dict)
    progress: TextIO | None = None
    # Emulated API hosts (restorectl/app_hosts.py): how many, and which misbehave (by name, irisx-api-N, or instance id).
    app_hosts: int = 2
    failing_hosts: tuple[str, ...] = ()  # the first pm2 restart fails (the cutover's); later ones work
    broken_hosts: tuple[str, ...] = ()  # every pm2 restart fails, so the rollback cannot fix them either
    app_blocked_from_restored: bool = False  # the app cannot connect to restored instances (health fails after a good swap)
    past_drills: int = 0  # monthly drills already in the journal (restorectl/emulated_drills.py), for the drills report's trend
    recordings: int = 50  # per recording bucket, with 30 days of overwrites and deletes (restorectl/emulated_recordings.py)
    # EventBridge delivers each execution's end to the status-change function; False: the event is lost.
    deliver_status_changes: bool = True
    # An SSM command reads InProgress for its first N polls, as a real one does for seconds.
    command_polls: int = 0


@dataclass
class MapChildRun:
    """One Distributed Map child (an execution of its own in AWS): the item it ran and its own path."""

    map_state: str
    index: int
    path: list[dict[str, Any]]
    history: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def states(self) -> list[str]:
        return [step["state"] for step in self.path]


@dataclass
class RehearsalResult:
    workflow: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    path: list[dict[str, Any]]
    world: dict[str, Any]
    invocations: list[dict[str, Any]]
    simulated_seconds: float
    history: list[dict[str, Any]] = field(repr=False, default_factory=list)
    # What the abandoned-execution function did for an execution that ended ABORTED or TIMED_OUT.
    abandoned: dict[str, Any] | None = None
    # What the same function did for a SUCCEEDED or FAILED one whose record still read RUNNING.
    reconciled: dict[str, Any] | None = None
    # Each Distributed Map child's own run (restorectl/emulated_map_children.py); moto's history has none of it.
    map_children: list[MapChildRun] = field(repr=False, default_factory=list)
    # The execution's ARN (a redriven one keeps its first attempt's, as in AWS).
    execution_arn: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "path": self.path,
            "world": self.world,
            **({"abandoned": self.abandoned} if self.abandoned is not None else {}),
            **({"reconciled": self.reconciled} if self.reconciled is not None else {}),
        }

    def states(self) -> list[str]:
        return [step["state"] for step in self.path]

    def child_paths(self, map_state: str) -> list[list[str]]:
        """The states each child of the Distributed Map `map_state` entered, in item order."""
        return [child.states() for child in self.map_children if child.map_state == map_state]


def lambda_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The Lambda environment the stack would set, from the same cdk.json settings."""
    from stacks.settings import StackSettings

    context = json.loads(CDK_JSON.read_text())["context"]["runbook"]
    env = StackSettings.from_context(context).lambda_environment()
    env.update(
        POWERTOOLS_SERVICE_NAME="irisx-restore",
        # The stack sets the name prefix as the namespace; the abandoned-execution function reads the workflow from it.
        POWERTOOLS_METRICS_NAMESPACE=STATE_MACHINE_PREFIX.removesuffix("-"),
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL=os.environ.get("REHEARSAL_LOG_LEVEL", "ERROR"),
    )
    env.update(overrides)
    return env


_open_rehearsal: str | None = None


def _closed() -> None:
    global _open_rehearsal
    _open_rehearsal = None


class Rehearsal:
    def __init__(self, pg: LocalPostgres, options: RehearsalOptions | None = None) -> None:
        self.pg = pg
        self.options = options or RehearsalOptions()
        self.clock = SimulatedClock(self.options.start)
        self.run_id = "r" + uuid.uuid4().hex[:8]
        self.rds = EmulatedRds(
            pg,
            self.clock,
            run_id=self.run_id,
            restore_minutes=self.options.restore_minutes,
            restore_outcome=self.options.restore_outcome,
            snapshot_minutes=self.options.snapshot_minutes,
            snapshot_outcome=self.options.snapshot_outcome,
            delete_minutes=self.options.delete_minutes,
        )
        self.renames = EmulatedRenames(self.rds, self.clock, rename_minutes=self.options.rename_minutes)
        self.bridge = LambdaBridge(
            handlers={},
            injections=list(self.options.injections),
            interruptions=list(self.options.interruptions),
            interrupt=self.interrupt,
        )
        self._stack = contextlib.ExitStack()
        self.state_machines: dict[str, str] = {}
        self.extra_reporters: list[Callable[[], dict[str, Any]]] = []
        self.journal = EmulatedJournal(REGION, ACCOUNT)
        self.map_children = MapChildren()
        self.redrives = Redrives()

    # ------------------------------------------------------------------ set-up and tear-down

    def __enter__(self) -> Rehearsal:
        global _open_rehearsal
        if _open_rehearsal is not None:
            # moto's emulated AWS is one per process and a nested mock does not reset it: two open
            # rehearsals would share one world, each seeing what the other made.
            raise RuntimeError(f"rehearsal {_open_rehearsal} is still open in this process; close it before opening another")
        _open_rehearsal = self.run_id
        self._stack.callback(_closed)
        try:
            self._enter()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _enter(self) -> None:
        from moto import mock_aws

        if str(LAMBDAS) not in sys.path:
            sys.path.insert(0, str(LAMBDAS))
        enter = self._stack.enter_context
        enter(
            mock.patch.dict(
                os.environ,
                {
                    "AWS_ACCESS_KEY_ID": "rehearsal",
                    "AWS_SECRET_ACCESS_KEY": "rehearsal",
                    "AWS_SESSION_TOKEN": "rehearsal",
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_REGION": REGION,
                    "MOTO_ACCOUNT_ID": ACCOUNT,
                    # moto builds its EC2 image catalogue (thousands of AMIs) for every fresh backend; no
                    # step reads an image, and moto does not check a launch's image unless told to.
                    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
                    **lambda_environment(self._settings_overrides()),
                },
            )
        )
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            enter(mock.patch.dict(os.environ, {name: ""}))
            os.environ.pop(name, None)
        # moto logs every caught state error as an exception; the path and the result say it better.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
        enter(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        enter(mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}))
        enter(shared_service_models.installed())
        self._reset_cached_settings()
        enter(self.clock.installed())
        enter(self.rds.installed())
        enter(self.renames.installed())
        enter(emulated_monitoring.installed())
        enter(self.bridge.installed())
        enter(self.redrives.installed())  # before the history's paging, which cuts its pages
        enter(emulated_sfn.installed())
        enter(interpreter_caches.installed())
        enter(self.map_children.installed())
        enter(self._database_routing())
        self._stack.callback(self.rds.teardown)
        self._seed()
        self.journal.install()
        if self.options.past_drills:
            from restorectl import emulated_drills

            emulated_drills.seed(self.journal.table_name, self.options.source_instance, self.clock.now(), self.options.past_drills)
        self.extra_reporters.append(self.journal.report)
        self.extra_reporters.append(emulated_monitoring.describe_world)
        self._enter_app_hosts()
        self._enter_recordings()

    def _enter_app_hosts(self) -> None:
        from restorectl.app_hosts import EmulatedAppHosts

        env = os.environ
        self.app_hosts = EmulatedAppHosts(
            clock=self.clock,
            rds=self.rds,
            pg=self.pg,
            name_prefix=env["SET_DB_HOST_DOCUMENT"].removesuffix("-set-db-host"),
            tag_key=env["APP_HOST_TAG_KEY"],
            tag_value=env["APP_HOST_TAG_VALUE"],
            env_file=env["APP_ENV_FILE"],
            health_url=env["APP_HEALTH_URL"],
            count=self.options.app_hosts,
            failing_hosts=tuple(self.options.failing_hosts),
            broken_hosts=tuple(self.options.broken_hosts),
            app_blocked_from_restored=self.options.app_blocked_from_restored,
            command_polls=self.options.command_polls,
        )
        self._stack.callback(self.app_hosts.teardown)
        self._stack.enter_context(self.app_hosts.installed())
        self.app_hosts.seed(self.options.source_instance)
        self.extra_reporters.append(self.app_hosts.describe_world)

    def _enter_recordings(self) -> None:
        from restorectl.emulated_recordings import EmulatedRecordings, calls_with_recordings

        self.recordings = EmulatedRecordings(
            self.clock.now,
            recordings=self.options.recordings,
            buckets=tuple(json.loads(os.environ["RECORDINGS_BUCKETS"])),
            work_bucket=os.environ["RECORDINGS_WORK_BUCKET"],
        )
        self._stack.enter_context(self.recordings.installed())
        source_db = self.rds.instance_db.get(self.options.source_instance)
        self.recordings.seed(calls_with_recordings(self.pg, source_db, self.options.recordings))
        self.extra_reporters.append(self.recordings.report)

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._reset_cached_settings()

    def _settings_overrides(self) -> dict[str, str]:
        return {
            "SOURCE_INSTANCE": self.options.source_instance,
            "DB_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_NAME}",
            # The stack creates the recordings work bucket and tells its functions its name.
            "RECORDINGS_WORK_BUCKET": RECORDINGS_WORK_BUCKET,
            **self.options.settings_overrides,
        }

    @staticmethod
    def _reset_cached_settings() -> None:
        # Each rehearsal is a fresh deployment with its own settings: drop per-container caches.
        with contextlib.suppress(ImportError):
            from restore_runbook import settings
            from restore_runbook.common import aws

            settings.settings.cache_clear()
            aws.client.cache_clear()
            aws.resource.cache_clear()

    def _database_routing(self) -> contextlib.AbstractContextManager[Any]:
        """Connections to an emulated RDS endpoint reach that instance's local database."""
        from restore_runbook.validation import database

        original = database.connect
        rds = self.rds
        pg = self.pg

        def connect(target: Any, **kwargs: Any) -> Any:
            dbname = rds.resolve(target.host)
            return original(replace(target, host=pg.host, port=pg.port, dbname=dbname), **kwargs)

        return mock.patch.object(database, "connect", connect)

    def _seed(self) -> None:
        import boto3

        self.rds.seed(self.options.source_instance, calls_rows=self.options.calls_rows)
        boto3.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"username": self.pg.user, "password": self.pg.password})
        )
        boto3.client("iam").create_role(
            RoleName="rehearsal", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )

    # ------------------------------------------------------------------ deploying and running

    def deploy(self, workflow: str) -> str:
        """Create the workflow's functions and state machine in moto, as the stack does in AWS."""
        if workflow in self.state_machines:
            return self.state_machines[workflow]
        import boto3

        definition = asl_path(workflow).read_text()
        manifest = load_manifest()
        lam = boto3.client("lambda")
        role = f"arn:aws:iam::{ACCOUNT}:role/rehearsal"
        substitutions: dict[str, str] = {}
        for placeholder in placeholders(definition):
            if placeholder not in manifest:
                raise KeyError(f"{workflow}.asl.json uses ${{{placeholder}}}, which statemachines/functions.json does not define")
            name = function_name_for(placeholder)
            if name not in self.bridge.handlers:
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role,
                    Handler=manifest[placeholder],
                    Code={"ZipFile": b"rehearsal: handled in process"},
                )
                self.bridge.handlers[name] = manifest[placeholder]
            substitutions[placeholder] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        for placeholder, value in substitutions.items():
            definition = definition.replace("${" + placeholder + "}", value)
        arn: str = boto3.client("stepfunctions").create_state_machine(
            name=f"{STATE_MACHINE_PREFIX}{workflow}", definition=definition, roleArn=role
        )["stateMachineArn"]
        self.state_machines[workflow] = arn
        return arn

    def run(self, workflow: str, execution_input: Any) -> RehearsalResult:
        clock_before = self.clock.waited_seconds
        invocations_before = len(self.bridge.invocations)
        execution_arn = self.start(workflow, execution_input)
        return self.follow(workflow, execution_arn, clock_before=clock_before, invocations_before=invocations_before)

    def start(self, workflow: str, execution_input: Any) -> str:
        """Start an execution and return its ARN without waiting (several may run at once)."""
        import boto3

        arn = self.deploy(workflow)
        execution_arn: str = boto3.client("stepfunctions").start_execution(
            stateMachineArn=arn,
            name=f"rehearsal-{uuid.uuid4().hex[:12]}",
            input=json.dumps(execution_input),
        )["executionArn"]
        return execution_arn

    def redrive(self, execution_arn: str, *, resume_at: str | None = None) -> RehearsalResult:
        """Redrive an ended execution, as the console's Redrive button does (restorectl/emulated_redrive.py).

        `resume_at` is no option of AWS's: it resumes at that top-level state, with the input the
        execution last entered it with, instead of where the execution stopped. A test's stand-in
        for an execution stopped there, so that one run can be resumed at each of its Tasks."""
        import boto3

        sfn = boto3.client("stepfunctions")
        ended = sfn.describe_execution(executionArn=execution_arn)
        if ended["status"] == "RUNNING" or (ended["status"] not in REDRIVABLE_STATUSES and resume_at is None):
            raise NotRedrivable(f"execution {ended['name']} is {ended['status']}: only a FAILED, ABORTED or TIMED_OUT one can be redriven")
        workflow = next(w for w, arn in self.state_machines.items() if arn == ended["stateMachineArn"])
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=ended["stateMachineArn"])["definition"])
        history = self.history(execution_arn)  # every attempt's: a redrive resumes where the latest one stopped
        state, state_input = unsuccessful_state(definition, history) if resume_at is None else entered_with(history, resume_at)
        redrive = Redrive(execution_arn=execution_arn, count=self.redrives.count(execution_arn) + 1, state=state)
        name = f"{ended['name']}-redrive-{redrive.count}"
        run_arn = ended["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{name}"
        self.redrives.register(run_arn, redrive)
        clock_before = self.clock.waited_seconds
        invocations_before = len(self.bridge.invocations)
        children_before = self.map_children.recorded(execution_arn)
        sfn.start_execution(stateMachineArn=ended["stateMachineArn"], name=name, input=json.dumps(state_input))
        return self.follow(
            workflow, run_arn, clock_before=clock_before, invocations_before=invocations_before, children_before=children_before
        )

    def follow(
        self, workflow: str, execution_arn: str, *, clock_before: float = 0.0, invocations_before: int = 0, children_before: int = 0
    ) -> RehearsalResult:
        """Wait (in real time, bounded) for an execution to end and describe how it went."""
        import boto3

        sfn = boto3.client("stepfunctions")
        history = self._follow(sfn, execution_arn)
        # A redriven execution keeps its ARN in AWS: EventBridge and the journal see it, described as AWS does.
        identity = self.redrives.original(execution_arn)
        description = sfn.describe_execution(executionArn=identity)
        status = description["status"]
        output = json.loads(description["output"]) if description.get("output") else None
        invocations = self.bridge.invocations[invocations_before:]
        # EventBridge calls the status-change function on every end: it journals an abandoned
        # execution and reconciles the record of an ended one that still reads RUNNING.
        status_change = self._report_status_change(dict(description)) if self.options.deliver_status_changes else None
        abandoned = status_change if status in ("ABORTED", "TIMED_OUT") else None
        reconciled = status_change if status in ("SUCCEEDED", "FAILED") and (status_change or {}).get("reconciled") else None
        children = [
            MapChildRun(map_state=c["map"], index=c["index"], path=path_from_history(c["events"]), history=c["events"])
            for c in self.map_children.of(identity, since=children_before)
        ]
        _log_history(workflow, history, children)
        return RehearsalResult(
            workflow=workflow,
            status=status,
            output=output,
            error=description.get("error"),
            cause=description.get("cause"),
            path=path_from_history(history),
            world=self.describe_world(),
            invocations=invocations,
            simulated_seconds=self.clock.waited_seconds - clock_before,
            history=history,
            abandoned=abandoned,
            reconciled=reconciled,
            map_children=children,
            execution_arn=identity,
        )

    def interrupt(self, execution_arn: str, status: str) -> None:
        """End a running execution ABORTED (StopExecution) or TIMED_OUT (its TimeoutSeconds ran out).

        moto times an execution out in real seconds only, so the harness ends it the way moto's own
        timeout does: the interpreter stops before the next state and records ExecutionTimedOut.
        """
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT][REGION]
        execution = next((e for e in backend._get_executions() if e.execution_arn == execution_arn), None)
        if execution is None or execution.exec_worker is None:
            raise KeyError(f"no running execution {execution_arn} to interrupt")
        if status == "TIMED_OUT":
            execution.exec_worker.env.set_timed_out()
        else:
            execution.exec_worker.stop(stop_date=datetime.now(timezone.utc), error="Rehearsal.Stopped", cause="stopped by the rehearsal")

    def _report_status_change(self, description: dict[str, Any]) -> dict[str, Any]:
        """Call the abandoned-execution function with the event EventBridge delivers for this status change."""
        from stacks.abandoned import HANDLER

        self.bridge.handlers.setdefault(ABANDONED_FUNCTION, HANDLER)

        def epoch_ms(moment: Any) -> int | None:
            return int(moment.timestamp() * 1000) if isinstance(moment, datetime) else None

        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "region": REGION,
            "resources": [description["executionArn"]],
            "detail": {
                "executionArn": description["executionArn"],
                "stateMachineArn": description["stateMachineArn"],
                "name": description["name"],
                "status": description["status"],
                "startDate": epoch_ms(description.get("startDate")),
                "stopDate": epoch_ms(description.get("stopDate")),
                "input": description.get("input"),
                "output": None,
                "error": description.get("error"),
                "cause": description.get("cause"),
            },
        }
        headers: dict[str, str] = {}
        answer = json.loads(self.bridge.answer(ABANDONED_FUNCTION, json.dumps(event), headers))
        if headers.get("x-amz-function-error"):
            return {"error": answer.get("errorType"), "cause": answer.get("errorMessage")}
        result: dict[str, Any] = answer
        return result

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's whole history, as GetExecutionHistory pages give it, read in process when moto allows."""
        import boto3

        if emulated_sfn.execution_in_process(execution_arn) is None:
            return _all_events(boto3.client("stepfunctions"), execution_arn)
        return self.redrives.history(execution_arn, lambda arn: emulated_sfn.history_in_process(arn) or [])

    def _follow(self, sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + EXECUTION_REAL_TIMEOUT_SECONDS
        printed = 0
        while True:
            # In process, a look at moto's execution costs microseconds; DescribeExecution every few
            # milliseconds would take the interpreter lock from the execution it waits for.
            status = emulated_sfn.status_in_process(execution_arn) or sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                events = self.history(execution_arn)  # the whole history once, for the result
                self._print_progress(events[printed:])
                return events
            if self.options.progress is not None:
                printed += self._print_progress(_events_since(sfn, execution_arn, printed))
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn, error="RehearsalTimedOut", cause="ran for too long in real time")
                raise TimeoutError(f"execution {execution_arn} still running after {EXECUTION_REAL_TIMEOUT_SECONDS} s of real time")
            time.sleep(FOLLOW_POLL_SECONDS)

    def _print_progress(self, events: list[dict[str, Any]]) -> int:
        """Print the states entered and errors among `events` (the ones not printed yet); return how many."""
        out = self.options.progress
        if out is None:
            return len(events)
        for event in events:
            kind = event["type"]
            if kind.endswith("StateEntered"):
                details: Any = event["stateEnteredEventDetails"]
                out.write(f"  {details['name']}\n")
            elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                out.write(f"    ! {details.get('error')}: {_short(details.get('cause'))}\n")
        out.flush()
        return len(events)

    def describe_world(self) -> dict[str, Any]:
        world = self.rds.describe_world()
        for reporter in self.extra_reporters:
            world.update(reporter())
        return world


def _log_history(workflow: str, events: list[dict[str, Any]], children: list[MapChildRun]) -> None:
    path = os.environ.get(HISTORY_LOG_ENV)
    if not path:
        return
    # pytest names the running test in PYTEST_CURRENT_TEST ("<node id> (call)"); outside pytest it is absent.
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] or None
    record: dict[str, Any] = {"workflow": workflow, "test": test, "events": _coverage_events(events)}
    if children:
        # Each child is a flow of its own inside its Map's ItemProcessor: the report reads it apart from the parent's.
        record["map_children_histories"] = [
            {"map": child.map_state, "index": child.index, "events": _coverage_events(child.history)} for child in children
        ]
    # One write(2) on an O_APPEND descriptor: parallel test workers appending to the same log never
    # interleave their lines (a buffered file may split a long line into several writes).
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (json.dumps(record) + "\n").encode())
    finally:
        os.close(descriptor)


def _coverage_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History events reduced to what the coverage report reads: type, state name, error, a Choice's input."""
    kept = []
    for event in events:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), None) or {}
        line = {"type": event["type"], **{key: details[key] for key in ("name", "error") if key in details}}
        if event["type"] == "ChoiceStateEntered":
            line["input"] = details.get("input")  # which Choice rule matched, when two branches share a target
        kept.append(line)
    return kept


def _short(cause: Any, limit: int = 300) -> str:
    text = str(cause or "")
    with contextlib.suppress(ValueError, TypeError):
        text = json.loads(text).get("errorMessage", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _events_since(sfn: Any, execution_arn: str, seen: int) -> list[dict[str, Any]]:
    """The execution's history events after the first `seen`, without copying the ones before.

    Following a long execution through GetExecutionHistory every few milliseconds would copy and
    serialize the whole history each time; in process, the interpreter's own event list is read
    from `seen` on instead. Should moto's internals move, the API is the fallback.
    """
    execution = emulated_sfn.execution_in_process(execution_arn)
    if execution is None:
        return _all_events(sfn, execution_arn)[seen:]
    env = execution.exec_worker.env if execution.exec_worker is not None else None
    if env is None:
        return []  # not started yet
    manager = env.event_manager
    with manager._mutex:
        return list(manager._history_event_list[seen:])


def _all_events(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def path_from_history(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state entered, in order, with the error it ended in (if any)."""
    path: list[dict[str, Any]] = []
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            path.append({"state": event["stateEnteredEventDetails"]["name"], "type": kind.removesuffix("StateEntered"), "error": None})
        elif path and kind in ("TaskFailed", "LambdaFunctionFailed", "LambdaFunctionTimedOut", "ExecutionFailed", "FailStateEntered"):
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {}) or {}
            if details.get("error") and path[-1]["error"] is None:
                path[-1]["error"] = details["error"]
    return path
