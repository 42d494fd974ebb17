"""Cold start cost of each Lambda handler, as a ratio to `import boto3` alone, imported as Lambda imports it.

Lambda imports a function's code (/var/task) and its layer (/opt/python) from a read-only file
system: an import finds only the bytecode the asset shipped, and a module shipped without it is
compiled from source at every cold start, never cached. So every handler is imported from a copy
of what synth deploys, the handlers' package plus the layer's packages (requirements.txt and what
they need, less what the runtime provides), with bytecode writing off, in two forms:

  - as shipped: every module with its bytecode, in the unchecked-hash mode synth compiles it in
    (stacks/bytecode.py; compiled here by the interpreter running the benchmark, as synth compiles
    with the runtime's CPython 3.12);
  - source only: the same files without bytecode, what the assets carried before synth compiled them.

The X-Ray SDK behind Powertools' Tracer behaves differently in and out of Lambda (outside, its
default sampler builds a botocore X-Ray client when imported; inside, it samples locally), so the
shipped form is also imported with a bare environment. Inside means the environment Lambda gives the
deployed function (the runtime's variables, active tracing's X-Ray variables, and the stack's own
settings and Powertools names, from cdk.json).

The baseline is `import boto3` from the runtime's own packages (this virtualenv's, with their
bytecode, as the runtime image carries them), taken just before each handler import in the same
environment; the median of the pairs' ratios is reported, of wall time and of CPU time (which a busy
shared machine disturbs far less). Target: at most 1.5 as shipped, in Lambda's environment.

Handlers: every entry of statemachines/functions.json and the abandoned-execution handler
(stacks/abandoned.py HANDLER, read from the source so this does not import the CDK).
"""

from __future__ import annotations

import argparse
import ast
import compileall
import importlib.metadata
import json
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stacks.settings import StackSettings  # noqa: E402 - pure Python, no CDK import

REGION = "us-east-1"


def constant_of(module: Path, name: str) -> object:
    """A module-level constant, read from the source (importing stacks/ would start the CDK)."""
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{module} has no {name} constant")


def handlers() -> list[str]:
    manifest = json.loads((ROOT / "statemachines" / "functions.json").read_text())
    return sorted({*manifest.values(), str(constant_of(ROOT / "stacks" / "abandoned.py", "HANDLER"))})


def layer_distributions() -> list[importlib.metadata.Distribution]:
    """What stacks/layer.py installs: requirements.txt and what it requires, less what the runtime provides."""
    provided = {str(name) for name in constant_of(ROOT / "stacks" / "layer.py", "PROVIDED_BY_RUNTIME")}  # type: ignore[attr-defined]
    wanted = [line.split("==")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines() if line.split("#")[0].strip()]
    found: dict[str, importlib.metadata.Distribution] = {}
    while wanted:
        name = re.sub(r"[-_.]+", "-", wanted.pop()).lower()
        if name in found or name in provided:
            continue
        found[name] = importlib.metadata.distribution(name)
        for requirement in found[name].requires or []:
            if "extra ==" not in requirement:
                wanted.append(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))  # type: ignore[union-attr]
    return list(found.values())


def build_trees(root: Path) -> dict[str, Path]:
    """The deployed code and layer, twice: `source` (no bytecode) and `shipped` (compiled as synth does)."""
    source = root / "source"
    shutil.copytree(LAMBDAS, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*_cache"))
    for distribution in layer_distributions():
        for file in distribution.files or []:
            if file.parts[0] == ".." or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            target = source / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(distribution.locate_file(file))), target)
    shipped = shutil.copytree(source, root / "shipped")
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    if not compileall.compile_dir(shipped, quiet=1, workers=0, invalidation_mode=mode):
        raise SystemExit(f"compiling {shipped} failed")
    return {"source": source, "shipped": shipped}


def bare_environment() -> dict[str, str]:
    return {
        # Lambda's file system is read-only: nothing compiled during an import is kept for the next one.
        "PYTHONDONTWRITEBYTECODE": "1",
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
        "LAMBDA_TASK_ROOT": "/var/task",
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


FORMS = (("inside", "shipped"), ("inside", "source"), ("outside", "shipped"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="rounds in Lambda's environment as shipped, the target's form (default 9)")
    parser.add_argument("--other-repeats", type=int, default=3, help="rounds of the two forms shown for comparison (default 3)")
    args = parser.parse_args()
    rounds = {FORMS[0]: args.repeats, **{form: args.other_repeats for form in FORMS[1:]}}

    paths = handlers()
    modules = {path: path.rpartition(".")[0] for path in paths}
    modules["xray"] = "boto3, aws_xray_sdk.core"
    with tempfile.TemporaryDirectory(prefix="cold-import-") as scratch:
        trees = build_trees(Path(scratch))

        def environment(path: str, where: str, tree: str | None) -> dict[str, str]:
            env = lambda_environment(paths[0] if path == "xray" else path) if where == "inside" else bare_environment()
            return {**env, "PYTHONPATH": str(trees[tree])} if tree else env

        # Each handler import is paired with a baseline import taken just before it, in the same
        # environment, and the ratio is taken per pair: on a shared machine the load drifts over a
        # round, and a baseline measured once per round would charge that drift to the handlers
        # measured last. The baseline imports the runtime's boto3 alone (no code, no layer on the path).
        timings: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        ratios: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        # The target is judged on the worst of many handlers' medians, so its form gets the most rounds:
        # the worst of 58 medians of five was up to 0.4 above that handler's ratio in another run.
        for round_number in range(max(rounds.values())):
            for path, module in modules.items():
                for where, tree in FORMS:
                    if round_number >= rounds[(where, tree)]:
                        continue
                    base = import_seconds("boto3", environment(path, where, None))
                    took = import_seconds(module, environment(path, where, tree))
                    timings.setdefault(("boto3", where, tree), []).append(base)
                    timings.setdefault((path, where, tree), []).append(took)
                    ratios.setdefault((path, where, tree), []).append((took[0] / base[0], took[1] / base[1]))

    cpu = {key: statistics.median(v[1] for v in values) for key, values in timings.items()}
    ratio_wall = {key: statistics.median(r[0] for r in values) for key, values in ratios.items()}
    ratio_cpu = {key: statistics.median(r[1] for r in values) for key, values in ratios.items()}
    print(
        f"cold import, {args.repeats} fresh interpreters each in Lambda's environment as shipped, {args.other_repeats} in the other forms; "
        "ratio: median over pairs with a prior `import boto3` (runtime's, alone)"
    )
    print(f"{'':<58} {'Lambda env, as shipped':>24} {'Lambda env, source only':>24} {'outside, as shipped':>20}")
    print(f"{'handler module':<58} {'cpu s':>6} {'wall':>5} {'cpu':>5}       {'cpu s':>6} {'ratio':>5}       {'cpu s':>6} {'ratio':>5}")

    def row(label: str, key: str) -> None:
        shipped, source, outside = ((key, *form) for form in FORMS)
        print(
            f"{label:<58} {cpu[shipped]:>6.3f} {ratio_wall[shipped]:>5.2f} {ratio_cpu[shipped]:>5.2f}       "
            f"{cpu[source]:>6.3f} {ratio_cpu[source]:>5.2f}       {cpu[outside]:>6.3f} {ratio_cpu[outside]:>5.2f}"
        )

    for path in paths:
        row(modules[path], path)
    row("boto3 + aws_xray_sdk.core (what an enabled Tracer adds)", "xray")
    print(f"{'boto3 alone (baseline), cpu s':<58} {cpu[('boto3', 'inside', 'shipped')]:>6.3f}")
    for label, table in (("wall", ratio_wall), ("CPU", ratio_cpu)):
        for where, tree in FORMS:
            values = [table[(path, where, tree)] for path in paths]
            verdict = f" (target <= 1.5: {'met' if max(values) <= 1.5 else 'MISSED'})" if (where, tree) == FORMS[0] else ""
            summary = f"median {statistics.median(values):.2f}, worst {max(values):.2f}{verdict}"
            print(f"{label:>4} ratio, {where} Lambda's environment, {tree:>7}: {summary}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
