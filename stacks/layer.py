"""The Lambda dependency layer: requirements.txt installed by pip for the Lambda platform, at synth time.

No Docker: pip downloads the wheels built for the Lambda platform (CPython 3.12, manylinux, arm64,
matching `RUNTIME` and `ARCHITECTURE` in stacks/functions.py) instead of the
host's, and the packages are compiled for the runtime's Python (stacks/bytecode.py: a read-only
layer would otherwise be compiled again at every cold start). CDK runs this as the asset's local
bundling and names the result by a hash of requirements.txt, that platform and whether it carries
bytecode, so `cdk synth` reuses `cdk.out/asset.<hash>` until the requirements change, and a fresh
clone needs no separate build step.

`python -m stacks.layer DIR` builds the same layer into DIR, to inspect what is deployed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from stacks import bytecode

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "requirements.txt"
PYTHON_VERSION = bytecode.RUNTIME_VERSION
IMPLEMENTATION = "cp"
# The python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34), so manylinux_2_28 wheels load too;
# psycopg2-binary publishes its arm64 wheel only for manylinux_2_28.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# The Lambda runtime provides these; pip pulls them in as dependencies of aws-xray-sdk.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    platforms = [f"--platform={platform}" for platform in PLATFORMS]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        f"--requirement={requirements}",
        *platforms,
        f"--implementation={IMPLEMENTATION}",
        f"--python-version={PYTHON_VERSION}",
        "--only-binary=:all:",
        f"--target={target}",
    ]


def build(layer_dir: Path, requirements: Path = REQUIREMENTS) -> None:
    """Install the requirements into `layer_dir/python`, where the Lambda runtime looks for a layer's packages."""
    packages = layer_dir / "python"
    result = subprocess.run(pip_command(packages, requirements), check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"pip could not build the Lambda dependency layer from {requirements} (exit {result.returncode}); "
            "it needs PyPI (or the configured index) and wheels for "
            f"CPython {PYTHON_VERSION} on {' or '.join(PLATFORMS)}; pip's own message is above"
        )
    for name in PROVIDED_BY_RUNTIME:
        for path in [*packages.glob(name), *packages.glob(f"{name}-*.dist-info")]:
            shutil.rmtree(path)
    shutil.rmtree(packages / "bin", ignore_errors=True)
    bytecode.compile_tree(packages)


def asset_hash(requirements: Path = REQUIREMENTS) -> str:
    """Changes exactly when the layer would: other requirements, another target platform or Python."""
    recipe = "\n".join((PYTHON_VERSION, IMPLEMENTATION, *PLATFORMS, *PROVIDED_BY_RUNTIME, bytecode.recipe()))
    return hashlib.sha256(requirements.read_bytes() + recipe.encode()).hexdigest()


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    """CDK's local bundling hook: build the layer on this machine instead of in a container."""

    def __init__(self, requirements: Path) -> None:
        self._requirements = requirements

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        build(Path(output_dir), self._requirements)
        return True


def bundled_code(requirements: Path = REQUIREMENTS) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(requirements.parent),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(requirements),
        bundling=bytecode.local_bundling(PipBundling(requirements)),
    )


def prebuilt_code(layer_dir: Path) -> lambda_.Code:
    """A layer directory built beforehand (or an empty stand-in in the infra tests, which never run pip)."""
    if not (layer_dir / "python").is_dir():
        raise ValueError(
            f"the dependency layer {layer_dir}/python does not exist; build it with `make layer` "
            "(into build/layer), or leave layer_asset_path unset so synth bundles it from requirements.txt"
        )
    # Only the runtime's bytecode (what `make layer` compiles); another Python's is dead weight.
    return lambda_.Code.from_asset(str(layer_dir), exclude=["**/*.pyc", f"!**/*.{bytecode.CACHE_TAG}.pyc"])


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else REPO_ROOT / "build" / "layer")
    shutil.rmtree(target, ignore_errors=True)
    build(target)
    print(f"layer built: {target}")
