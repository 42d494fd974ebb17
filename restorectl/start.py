"""`restorectl start`: start a deployed workflow, print its console link, optionally follow it.

    python -m restorectl start snapshot --input '{"reason": "pre-migration"}' --wait

The state machine is found by the stack's output (`SnapshotStateMachineArn`, ...) or, when the
stack cannot be read, by its name `<name_prefix>-<workflow>`. API calls use botocore's standard
retries; the wait itself is a bounded loop whose sleep grows from 2 s to 30 s, up to --timeout.
Exit codes: 0 the execution succeeded (or was started, without --wait), 1 it failed or is still
running at the timeout, 2 the command line or the deployment was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from restorectl.argtypes import positive_number
from restorectl.paths import CDK_JSON

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Replaced in tests: nothing here ever sleeps for real in the test suite.
SLEEP: Callable[[float], None] = time.sleep
MONOTONIC: Callable[[], float] = time.monotonic
FIRST_WAIT_SECONDS, WAIT_FACTOR, MAX_WAIT_SECONDS = 2.0, 1.5, 30.0


class UsageError(Exception):
    """The command cannot run as given: say why, exit 2."""


@dataclass(frozen=True)
class Deployment:
    stack_name: str
    name_prefix: str
    source_instance: str = ""  # the configured source: a lock field an input left out defaults to it

    @classmethod
    def from_cdk_json(cls, stack_name: str | None = None) -> Deployment:
        context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]["runbook"]
        prefix = str(context["name_prefix"])
        return cls(
            stack_name=stack_name or f"{prefix}-runbook", name_prefix=prefix, source_instance=str(context.get("source_instance", ""))
        )


def client(service: str, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=60)
    return boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]


def output_key(workflow: str) -> str:
    """`in-place-restore` -> `InPlaceRestoreStateMachineArn`, the stack's output names."""
    return "".join(part.title() for part in workflow.split("-")) + "StateMachineArn"


def stack_outputs(deployment: Deployment, region: str | None) -> dict[str, str]:
    from botocore.exceptions import ClientError

    try:
        stacks = client("cloudformation", region).describe_stacks(StackName=deployment.stack_name)["Stacks"]
    except ClientError:
        return {}  # no such stack (or not allowed to read it): fall back to names
    return {o["OutputKey"]: o["OutputValue"] for s in stacks for o in s.get("Outputs", [])}


def find_state_machine(workflow: str, deployment: Deployment, region: str | None) -> str:
    arn = stack_outputs(deployment, region).get(output_key(workflow))
    if arn:
        return arn
    name = f"{deployment.name_prefix}-{workflow}"
    for page in client("stepfunctions", region).get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    raise UsageError(
        f"no deployed state machine for workflow {workflow!r}: stack {deployment.stack_name!r} has no output "
        f"{output_key(workflow)} and no state machine is named {name!r} in this account and region; "
        "deploy the stack, or check AWS_REGION / AWS_PROFILE"
    )


def console_link(execution_arn: str) -> str:
    region = execution_arn.split(":")[3]
    return f"https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def follow(sfn: Any, execution_arn: str, *, timeout_seconds: float, progress: Any = None) -> dict[str, Any]:
    """Describe the execution until it ends, sleeping longer each time; bounded by timeout_seconds."""
    deadline = MONOTONIC() + timeout_seconds
    interval = FIRST_WAIT_SECONDS
    while True:
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        if MONOTONIC() + interval > deadline:
            return description  # still RUNNING at the timeout: the caller says so
        if progress is not None:
            progress.write(f"  still running; next look in {interval:.0f} s\n")
        SLEEP(interval)
        interval = min(MAX_WAIT_SECONDS, interval * WAIT_FACTOR)


def result_object(workflow: str, sfn: Any, execution_arn: str, description: dict[str, Any]) -> dict[str, Any]:
    """The same object `rehearse --json` prints, minus `world`."""
    from restorectl.harness import _all_events, path_from_history

    return {
        "workflow": workflow,
        "status": description["status"],
        "output": json.loads(description["output"]) if description.get("output") else None,
        "error": description.get("error"),
        "cause": description.get("cause"),
        "path": path_from_history(_all_events(sfn, execution_arn)),
    }


def aws_errors_as_exit_codes(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """No region or credentials is a usage error (2); an AWS API refusal is a failure (1); never a traceback."""

    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return command(args)
        except UsageError as exc:
            print(f"restorectl: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except BotoCoreError as exc:
            print(f"restorectl: error: AWS is not reachable or not configured here: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ClientError as exc:
            print(f"restorectl: error: AWS refused the call: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


@aws_errors_as_exit_codes
def start(args: argparse.Namespace) -> int:
    from restorectl.harness import UnknownWorkflow, asl_path

    try:
        asl_path(args.workflow)
    except UnknownWorkflow as exc:
        raise UsageError(str(exc)) from exc
    deployment = Deployment.from_cdk_json(args.stack)
    arn = find_state_machine(args.workflow, deployment, args.region)
    sfn = client("stepfunctions", args.region)
    execution_arn = sfn.start_execution(stateMachineArn=arn, input=json.dumps(args.input))["executionArn"]
    print(f"started {args.workflow}: {execution_arn}\nconsole: {console_link(execution_arn)}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print(json.dumps(result_object(args.workflow, sfn, execution_arn, {"status": "RUNNING"}), indent=2))
        else:
            print(execution_arn)
        return EXIT_SUCCEEDED
    description = follow(sfn, execution_arn, timeout_seconds=args.timeout, progress=None if args.json else sys.stderr)
    result = result_object(args.workflow, sfn, execution_arn, description)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    status = result["status"]
    if status == "SUCCEEDED":
        if not args.json:
            print(json.dumps(result["output"], indent=2, default=str))
        print(f"{args.workflow}: SUCCEEDED", file=sys.stderr)
        return EXIT_SUCCEEDED
    if status == "RUNNING":
        print(
            f"{args.workflow}: still RUNNING after {args.timeout:g} s; it goes on without this command: {console_link(execution_arn)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"{args.workflow}: {status}\nerror: {result['error']}\ncause: {result['cause']}", file=sys.stderr)
    return EXIT_FAILED


def add_parser(commands: Any, json_input: Callable[[str], Any]) -> None:
    parser = commands.add_parser(
        "start",
        help="start a deployed workflow (found by the stack's outputs or by name) and optionally wait for it",
        description="Start WORKFLOW on AWS. Exit 0 on success, 1 on failure, 2 on usage errors.",
    )
    parser.add_argument("workflow", help="a workflow in statemachines/, e.g. snapshot")
    parser.add_argument(
        "--input",
        type=json_input,
        default={},
        help=(
            "the execution input, as JSON; rolling back a copy production was cut over to needs its name typed as confirm: "
            '\'{"restored_instance": "NAME", "confirm": "NAME"}\', and in-place-restore production\'s name'
        ),
    )
    parser.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    parser.add_argument(
        "--timeout", type=positive_number("seconds"), default=4 * 3600.0, help="seconds --wait follows it at most (default 4 h)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON (as rehearse --json, without world)")
    parser.add_argument("--stack", help="the stack's name (default: <name_prefix>-runbook from cdk.json)")
    parser.add_argument("--region", help="AWS region (default: the environment's)")
