"""The functions' code ships the runtime Python's bytecode, which Lambda's read-only file system cannot write."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stacks import bytecode
from stacks.restore_runbook_stack import LAMBDA_SOURCE

pytestmark = pytest.mark.infra

needs_runtime_python = pytest.mark.skipif(
    bytecode.runtime_python() is None,
    reason=f"no CPython {bytecode.RUNTIME_VERSION} on this machine: synth ships source only (the stack warns)",
)


def function_code_asset(outdir: Path) -> Path:
    return next(path for path in outdir.glob("asset.*") if (path / "restore_runbook" / "contract.py").is_file())


@needs_runtime_python
def test_every_module_of_the_function_code_ships_with_the_runtimes_bytecode(synthesized) -> None:  # type: ignore[no-untyped-def]
    asset = function_code_asset(synthesized.outdir)
    modules = sorted(asset.rglob("*.py"))
    assert len(modules) > 100
    missing = [m for m in modules if not (m.parent / "__pycache__" / f"{m.stem}.{bytecode.CACHE_TAG}.pyc").is_file()]
    assert missing == []
    # and nothing of the host's own interpreter or tools came along
    tool_caches = bytecode.SKIPPED_DIRECTORIES - {"__pycache__"}
    assert not [p for p in asset.rglob("*") if p.name in tool_caches or (p.suffix == ".pyc" and bytecode.CACHE_TAG not in p.name)]


@needs_runtime_python
def test_the_runtime_imports_the_shipped_bytecode_without_reading_or_compiling_the_source(synthesized, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Given the synthesized function code, with one module's source replaced by text that is not Python
    code = shutil.copytree(function_code_asset(synthesized.outdir), tmp_path / "task")
    (code / "restore_runbook" / "contract.py").write_text("this is not Python\n")
    # When the runtime's Python imports it from a directory it may not write to (as /var/task is)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    python = str(bytecode.runtime_python())
    program = "import restore_runbook.contract as c; print(c.TAG_ROLE, c.__spec__.cached.endswith('.cpython-312.pyc'))"
    imported = subprocess.run([python, "-c", program], env=env, capture_output=True, text=True, check=False)
    # Then the module is the shipped bytecode's: the source was never compiled
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split()[-1] == "True"


def test_the_function_code_is_named_by_its_sources_and_how_it_was_compiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = shutil.copytree(LAMBDA_SOURCE, tmp_path / "lambdas", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    first = bytecode.function_code_hash(source)
    # A cache written next to the sources (by tests, by the rehearsal) does not rename the asset
    (source / "restore_runbook" / "__pycache__").mkdir(exist_ok=True)
    (source / "restore_runbook" / "__pycache__" / "contract.cpython-311.pyc").write_bytes(b"host bytecode")
    assert bytecode.function_code_hash(source) == first
    # A changed module does
    contract = source / "restore_runbook" / "contract.py"
    contract.write_text(contract.read_text() + "\n# changed\n")
    changed = bytecode.function_code_hash(source)
    assert changed != first
    # And so does building without the runtime's bytecode: never the same name for different contents
    monkeypatch.setattr(bytecode, "runtime_python", lambda: None)
    assert bytecode.function_code_hash(source) != changed


def test_without_the_runtime_python_the_code_ships_as_source_and_synth_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "runtime_python", lambda: None)
    out = tmp_path / "asset"
    out.mkdir()
    assert bytecode.CompiledFunctionCode(LAMBDA_SOURCE).try_bundle(str(out), None)  # type: ignore[arg-type]
    shipped = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert shipped == {p.relative_to(LAMBDA_SOURCE) for p in bytecode.source_files(LAMBDA_SOURCE)}
    assert not [p for p in shipped if p.suffix == ".pyc"]
    warning = bytecode.missing_warning()
    assert warning is not None and f"No CPython {bytecode.RUNTIME_VERSION} found" in warning and bytecode.INTERPRETER_VARIABLE in warning


def test_an_interpreter_of_another_version_is_not_taken_for_the_runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    bytecode.runtime_python.cache_clear()
    try:
        # Given only this machine's test interpreter, named explicitly
        monkeypatch.setenv(bytecode.INTERPRETER_VARIABLE, shutil.which("python3") or "python3")
        ask = ["python3", "-c", "import sys; print(sys.implementation.cache_tag)"]
        tag = subprocess.run(ask, capture_output=True, text=True, check=False).stdout.strip()
        # Then it is used only if it is the runtime's version
        assert (bytecode.runtime_python() is not None) == (tag == bytecode.CACHE_TAG)
        monkeypatch.setenv(bytecode.INTERPRETER_VARIABLE, "/nonexistent/python3.12")
        bytecode.runtime_python.cache_clear()
        assert bytecode.runtime_python() is None
    finally:
        bytecode.runtime_python.cache_clear()
