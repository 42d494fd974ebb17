"""Cold start cost of each Lambda handler, as a ratio to `import boto3` alone, outside and inside Lambda's environment.

The X-Ray SDK behind Powertools' Tracer behaves differently in and out of Lambda (outside, its
default sampler builds a botocore X-Ray client when imported; inside, it samples locally), so a
figure taken on a laptop is not what Lambda pays. So every handler is imported twice in fresh
interpreters: with a bare environment, and with the environment Lambda gives the deployed
function (the runtime's variables, active tracing's X-Ray variables, and the stack's own settings
and Powertools names, from cdk.json). Each import is paired with an `import boto3` taken just
before it, so both see the same machine load; the median of the pairs' ratios is reported, of
wall time and of CPU time (which a busy shared machine disturbs far less). Target: at most 1.5 in Lambda's environment.

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


def import_seconds(module: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to import `module` in a fresh interpreter.

    CPU time is what a shared machine's load disturbs least (a busy neighbour delays the import,
    but does not make it use more CPU), so both are reported.
    """
    code = (
        "import time; w, c = time.perf_counter(), time.process_time(); "
        f"import {module}; print(time.perf_counter() - w, time.process_time() - c)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"importing {module} failed:\n{out.stderr.strip()}")
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


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
    # Each handler import is paired with a baseline import taken just before it, in the same
    # environment, and the ratio is taken per pair: on a shared machine the load drifts over a
    # round, and a baseline measured once per round would charge that drift to the handlers
    # measured last.
    timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
    ratios: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for where in ("outside", "inside"):
            for path, module in [*modules.items(), ("xray", "boto3, aws_xray_sdk.core")]:
                env = envs[path][where] if path in envs else baseline_env[where]
                base = import_seconds("boto3", env)
                took = import_seconds(module, env)
                timings.setdefault(("boto3", where), []).append(base)
                timings.setdefault((path, where), []).append(took)
                ratios.setdefault((path, where), []).append((took[0] / base[0], took[1] / base[1]))

    wall = {key: statistics.median(v[0] for v in values) for key, values in timings.items()}
    cpu = {key: statistics.median(v[1] for v in values) for key, values in timings.items()}
    ratio_wall = {key: statistics.median(r[0] for r in values) for key, values in ratios.items()}
    ratio_cpu = {key: statistics.median(r[1] for r in values) for key, values in ratios.items()}
    ratio_wall[("boto3", "outside")] = ratio_wall[("boto3", "inside")] = 1.0
    ratio_cpu[("boto3", "outside")] = ratio_cpu[("boto3", "inside")] = 1.0
    print(f"cold import, median of {args.repeats} fresh interpreters each; ratio: median over pairs with a prior `import boto3`")
    print(f"{'':<58} {'outside Lambda env':>25} {'inside Lambda env':>25}")
    print(
        f"{'handler module':<58} {'wall s':>7} {'ratio':>5} {'cpu s':>6} {'ratio':>5} {'wall s':>7} {'ratio':>5} {'cpu s':>6} {'ratio':>5}"
    )

    def row(label: str, key: str) -> tuple[float, float]:
        cells = []
        measured = []
        for where in ("outside", "inside"):
            w, c = wall[(key, where)], cpu[(key, where)]
            rw, rc = ratio_wall[(key, where)], ratio_cpu[(key, where)]
            cells.append(f"{w:>7.3f} {rw:>5.2f} {c:>6.3f} {rc:>5.2f}")
            measured.append((rw, rc))
        print(f"{label:<58} {cells[0]} {cells[1]}")
        return measured[1]

    worst_wall = worst_cpu = 0.0
    for path in paths:
        inside_wall, inside_cpu = row(modules[path], path)
        worst_wall, worst_cpu = max(worst_wall, inside_wall), max(worst_cpu, inside_cpu)
    row("boto3 (baseline)", "boto3")
    row("boto3 + aws_xray_sdk.core (what an enabled Tracer adds)", "xray")
    for label, worst in (("wall", worst_wall), ("CPU", worst_cpu)):
        print(f"worst {label} ratio in Lambda's environment: {worst:.2f} (target <= 1.5: {'met' if worst <= 1.5 else 'MISSED'})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
