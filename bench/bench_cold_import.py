"""Cold start cost of each Lambda handler, as a ratio to `import boto3` alone, outside and inside Lambda's environment.

Outside Lambda, Powertools switches parts of itself off (Tracer is disabled when
AWS_LAMBDA_FUNCTION_NAME is absent, so the X-Ray SDK is never imported), which flatters a cold
import measured on a laptop. So every handler is imported twice in fresh interpreters: with a
bare environment, and with the environment Lambda gives the deployed function (the runtime's
variables, active tracing's X-Ray variables, and the stack's own settings and Powertools names,
from cdk.json). Rounds alternate baseline and handlers so all see the same machine load; the
ratio of medians is reported (target: at most 1.5 in Lambda's environment).

Handlers: every entry of statemachines/functions.json and the abandoned-execution handler
(stacks/abandoned.py HANDLER, read from the source so this does not import the CDK).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stacks.settings import StackSettings  # noqa: E402 - pure Python, no CDK import

REGION = "us-east-1"


def abandoned_handler() -> str:
    tree = ast.parse((ROOT / "stacks" / "abandoned.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HANDLER" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise SystemExit("stacks/abandoned.py has no HANDLER constant")


def handlers() -> list[str]:
    manifest = json.loads((ROOT / "statemachines" / "functions.json").read_text())
    return sorted({*manifest.values(), abandoned_handler()})


def bare_environment() -> dict[str, str]:
    return {
        "PYTHONPATH": str(LAMBDAS),
        "PATH": "/usr/bin:/bin",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "AWS_DEFAULT_REGION": REGION,
    }


def lambda_environment(handler: str) -> dict[str, str]:
    """What the Lambda service sets for a deployed function of this stack (python3.12, active tracing)."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]["runbook"]
    settings = StackSettings.from_context(context)
    name = f"{settings.name_prefix}-{handler.split('.')[-2].replace('_', '-')}"
    return {
        **bare_environment(),
        # the runtime's own variables
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "LAMBDA_TASK_ROOT": str(LAMBDAS),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        # active tracing
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        # the stack's environment (stacks/workflow.py)
        **settings.lambda_environment(),
        "POWERTOOLS_SERVICE_NAME": f"{settings.name_prefix}-restore",
        "POWERTOOLS_METRICS_NAMESPACE": settings.name_prefix,
    }


def import_seconds(module: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{out.stderr.strip()}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()

    paths = handlers()
    modules = {path: path.rpartition(".")[0] for path in paths}
    envs = {path: {"outside": bare_environment(), "inside": lambda_environment(path)} for path in paths}
    baseline_env = {"outside": bare_environment(), "inside": lambda_environment(paths[0])}
    for path in paths:  # warm the file system cache and write bytecode first
        import_seconds(modules[path], envs[path]["inside"])
    timings: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for where in ("outside", "inside"):
            timings.setdefault(("boto3", where), []).append(import_seconds("boto3", baseline_env[where]))
            for path in paths:
                timings.setdefault((path, where), []).append(import_seconds(modules[path], envs[path][where]))
        timings.setdefault(("xray", "inside"), []).append(import_seconds("boto3, aws_xray_sdk.core", baseline_env["inside"]))

    median = {key: statistics.median(values) for key, values in timings.items()}
    base_out, base_in = median[("boto3", "outside")], median[("boto3", "inside")]
    print(f"cold import, median of {args.repeats} fresh interpreters each; ratio to `import boto3` in the same environment")
    print(f"{'handler module':<58} {'outside s':>9} {'ratio':>6} {'Lambda env s':>12} {'ratio':>6}")
    worst = 0.0
    for path in paths:
        outside, inside = median[(path, "outside")], median[(path, "inside")]
        worst = max(worst, inside / base_in)
        print(f"{modules[path]:<58} {outside:>9.3f} {outside / base_out:>6.2f} {inside:>12.3f} {inside / base_in:>6.2f}")
    print(f"{'boto3 (baseline)':<58} {base_out:>9.3f} {1.0:>6.2f} {base_in:>12.3f} {1.0:>6.2f}")
    xray = median[("xray", "inside")]
    print(f"{'boto3 + aws_xray_sdk.core (what an enabled Tracer adds)':<58} {'':>9} {'':>6} {xray:>12.3f} {xray / base_in:>6.2f}")
    verdict = "met" if worst <= 1.5 else "MISSED"
    print(f"worst ratio in Lambda's environment: {worst:.2f} (target <= 1.5: {verdict})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
