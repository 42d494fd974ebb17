"""The dependency layer is built by synth itself, for the Lambda platform, and rebuilt only when it would differ."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks import bytecode, layer

pytestmark = pytest.mark.infra


def test_pip_installs_wheels_for_the_lambda_platform_not_the_hosts(tmp_path: Path) -> None:
    command = layer.pip_command(tmp_path / "python")
    assert command[1:4] == ["-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    assert "--python-version=3.12" in command and "--implementation=cp" in command
    assert {"--platform=manylinux2014_aarch64", "--platform=manylinux_2_28_aarch64"} <= set(command)
    assert f"--target={tmp_path / 'python'}" in command
    assert f"--requirement={layer.REQUIREMENTS}" in command


def test_the_layer_is_named_by_its_requirements_so_cdk_reuses_it_until_they_change(tmp_path: Path) -> None:
    # Given two identical requirement files and a third with one pin changed
    same_a, same_b, changed = (tmp_path / name for name in ("a.txt", "b.txt", "c.txt"))
    same_a.write_text("psycopg2-binary==2.9.13\n")
    same_b.write_text("psycopg2-binary==2.9.13\n")
    changed.write_text("psycopg2-binary==2.9.14\n")
    # Then the same requirements give the same asset hash, and a changed pin another
    assert layer.asset_hash(same_a) == layer.asset_hash(same_b)
    assert layer.asset_hash(same_a) != layer.asset_hash(changed)


def test_the_build_leaves_out_what_the_runtime_provides_and_compiles_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a pip that installs boto3 and botocore as dependencies next to the layer's own packages
    run = subprocess.run

    def fake_pip(command: list[str], **options: Any) -> subprocess.CompletedProcess[Any]:
        if command[1:3] != ["-m", "pip"]:
            return run(command, **options)  # the bytecode compiler runs for real
        target = Path(next(arg for arg in command if arg.startswith("--target=")).removeprefix("--target="))
        for name in ("aws_lambda_powertools", "boto3", "boto3-1.44.8.dist-info", "botocore", "s3transfer", "bin"):
            (target / name).mkdir(parents=True)
        (target / "aws_lambda_powertools" / "__init__.py").write_text("VERSION = 1\n")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(layer.subprocess, "run", fake_pip)
    # When the layer is built
    layer.build(tmp_path)
    # Then only the layer's own packages remain, under python/
    packages = tmp_path / "python"
    assert sorted(p.name for p in packages.iterdir()) == ["aws_lambda_powertools"]
    # And they carry the runtime Python's bytecode wherever this machine has that Python
    compiled = packages / "aws_lambda_powertools" / "__pycache__" / f"__init__.{bytecode.CACHE_TAG}.pyc"
    assert compiled.exists() == (bytecode.runtime_python() is not None)


def test_a_failed_pip_stops_synth_with_what_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layer.subprocess, "run", lambda command, **options: subprocess.CompletedProcess(command, 1))
    with pytest.raises(RuntimeError, match=r"pip could not build the Lambda dependency layer .* \(exit 1\)"):
        layer.PipBundling(layer.REQUIREMENTS).try_bundle(str(tmp_path), None)  # type: ignore[arg-type]
