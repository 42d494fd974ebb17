"""Bytecode for the Lambda runtime's Python, compiled at synth, so that no cold start compiles a module.

A function's code (/var/task) and its layers (/opt) are read-only. An import there finds no
`__pycache__`, compiles the module from source and cannot keep the result, so every cold start of
every function compiles every module of ours and of the layer that it imports: the handlers import
about twice as slowly as `import boto3` instead of about 1.3 times (bench/bench_cold_import.py).
So synth ships the `.pyc` files CPython 3.12, the runtime's Python, would have written:

- compiled by a CPython whose cache tag is the runtime's (`cpython-312`): bytecode is specific to
  a minor version, and a file of another version's tag is never even looked at;
- in the `unchecked-hash` mode: the runtime uses the file without comparing it with the source
  (neither its time, which a zipped asset need not keep, nor its content, which cannot change
  inside a deployed asset). Tracebacks still name the real path: the import system sets each code
  object's file name to where the module was found.

Finding that interpreter: $LAMBDA_BYTECODE_PYTHON when set, else the one running synth, `python3.12`
on PATH, or a pyenv-installed 3.12; each is asked for its cache tag. When none answers, synth still
works: the assets carry the source alone and the stack says so in a warning.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

RUNTIME_VERSION = "3.12"
CACHE_TAG = "cpython-" + RUNTIME_VERSION.replace(".", "")
INTERPRETER_VARIABLE = "LAMBDA_BYTECODE_PYTHON"
# Never part of a function's code: caches of the host's own interpreter and tools.
SKIPPED_DIRECTORIES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})


def _cache_tag_of(python: str) -> str | None:
    try:
        answer = subprocess.run(
            [python, "-c", "import sys; print(sys.implementation.cache_tag)"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # A pyenv shim for a version that is installed but not selected exits non-zero.
    return answer.stdout.strip() if answer.returncode == 0 else None


def _candidates() -> list[str]:
    named = os.environ.get(INTERPRETER_VARIABLE)
    if named:
        return [named]
    found = [sys.executable]
    on_path = shutil.which(f"python{RUNTIME_VERSION}")
    if on_path:
        found.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    installed = os.path.join(pyenv_root, "versions", f"{RUNTIME_VERSION}.*", "bin", f"python{RUNTIME_VERSION}")
    found += sorted(glob.glob(installed), reverse=True)
    return found


@lru_cache(maxsize=1)
def runtime_python() -> str | None:
    """A CPython of the Lambda runtime's minor version, or None when this machine has none."""
    for python in _candidates():
        if _cache_tag_of(python) == CACHE_TAG:
            return python
    return None


def recipe() -> str:
    """What the bytecode in an asset depends on besides the sources: part of each asset's hash, so an
    asset built with bytecode and one built without never share a name."""
    return f"bytecode={CACHE_TAG},unchecked-hash" if runtime_python() else "bytecode=none"


def compile_tree(root: Path) -> None:
    """Write `__pycache__/*.cpython-312.pyc` beside every module under `root`; nothing without a runtime Python."""
    python = runtime_python()
    if python is None:
        return
    command = [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    command.append(str(root))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # compileall names each file it could not compile; such a module would fail its import in Lambda too.
        raise RuntimeError(f"compiling {root} for the Lambda runtime with {python} failed:\n{(result.stdout + result.stderr).strip()}")


def source_files(source: Path) -> list[Path]:
    """The function code's files, in a stable order, without any tool's caches or compiled files."""
    found = []
    for directory, subdirectories, files in os.walk(source):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRECTORIES)
        found += [Path(directory, name) for name in sorted(files) if not name.endswith(".pyc")]
    return found


def function_code_hash(source: Path) -> str:
    digest = hashlib.sha256(recipe().encode())
    for path in source_files(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@jsii.implements(cdk.ILocalBundling)
class CompiledFunctionCode:
    """CDK's local bundling hook for the functions' code: the source tree, plus its bytecode."""

    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        output = Path(output_dir)
        for path in source_files(self._source):
            target = output / path.relative_to(self._source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        compile_tree(output)
        return True


def function_code(source: Path) -> lambda_.Code:
    """The functions' code: `source` and its bytecode, named by the sources and how they were compiled,
    so an unchanged tree reuses its asset. Bundled by this module only (tool caches are left out by
    `source_files`), so no exclude list is needed beside it."""
    return lambda_.Code.from_asset(
        str(source),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=function_code_hash(source),
        bundling=local_bundling(CompiledFunctionCode(source)),
    )


def local_bundling(local: cdk.ILocalBundling) -> cdk.BundlingOptions:
    """Bundling that always runs `local` on this machine: its `try_bundle` never returns False, since CDK
    would then try Docker, with an image that exists only because the API requires one."""
    return cdk.BundlingOptions(image=cdk.DockerImage.from_registry("local-bundling-only"), local=local)


def missing_warning() -> str | None:
    if runtime_python() is not None:
        return None
    return (
        f"No CPython {RUNTIME_VERSION} found (set {INTERPRETER_VARIABLE}, or install python{RUNTIME_VERSION}): the functions "
        "and the layer ship as source only, so every cold start compiles each module it imports (about two thirds of "
        "an `import boto3` more; bench/bench_cold_import.py)"
    )
