"""Cold start cost of each Lambda handler, as a ratio to `import boto3` alone.

Each import runs in a fresh interpreter, alternating handler and baseline so both see the same
machine load; the ratio of medians is what is reported (target: at most 1.5).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 7


def import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {
        "PYTHONPATH": str(ROOT / "lambdas"),
        "PATH": "/usr/bin:/bin",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    manifest = json.loads((ROOT / "statemachines" / "functions.json").read_text())
    modules = sorted({path.rpartition(".")[0] for path in manifest.values()})
    for module in ["boto3", *modules]:
        import_seconds(module)  # warm the file system cache and write bytecode first
    print(f"cold import, median of {REPEATS} fresh interpreters, ratio to `import boto3`")
    print(f"{'handler module':<52} {'seconds':>8} {'ratio':>6}")
    for module in modules:
        ours, base = [], []
        for _ in range(REPEATS):
            ours.append(import_seconds(module))
            base.append(import_seconds("boto3"))
        ratio = statistics.median(ours) / statistics.median(base)
        print(f"{module:<52} {statistics.median(ours):>8.3f} {ratio:>6.2f}")
    # Attribution: the X-Ray SDK behind Powertools Tracer builds botocore clients when imported.
    xray, base = [], []
    for _ in range(REPEATS):
        xray.append(import_seconds("boto3, aws_xray_sdk.core"))
        base.append(import_seconds("boto3"))
    print(
        f"{'boto3 + aws_xray_sdk.core (what Tracer adds)':<52} {statistics.median(xray):>8.3f} "
        f"{statistics.median(xray) / statistics.median(base):>6.2f}"
    )
    print(f"{'boto3 (baseline)':<52} {statistics.median(base):>8.3f} {1.0:>6.2f}")


if __name__ == "__main__":
    main()
