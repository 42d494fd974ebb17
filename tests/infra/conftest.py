"""One synthesis of the stack per test session: synth with jsii costs ~10 s, so every infra test shares it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks.restore_runbook_stack import RestoreRunbookStack  # noqa: E402
from stacks.settings import StackSettings  # noqa: E402

STACK_NAME = "irisx-restore-runbook"
# Well-formed stand-ins for the runbook's `vpc-xxxxxx` examples, so cfn-lint judges the template
# a deployment would get, not the placeholders.
NETWORK = {
    "vpc_id": "vpc-0123456789abcdef0",
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "security_group_ids": ["sg-0123456789abcdef0"],
}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]["runbook"]


@dataclass
class Synthesized:
    settings: StackSettings
    stack: RestoreRunbookStack
    app: cdk.App
    outdir: Path
    template: Template
    template_path: Path
    synth_error: Exception | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}


@pytest.fixture(scope="session")
def runbook_context() -> dict[str, Any]:
    return {**cdk_json_context(), **NETWORK}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, runbook_context: dict[str, Any]) -> Iterator[Synthesized]:
    # Given an empty stand-in for the dependency layer (the real one needs PyPI) and the real ASL files
    layer = tmp_path_factory.mktemp("layer")
    (layer / "python").mkdir()
    outdir = tmp_path_factory.mktemp("cdk.out")
    settings = StackSettings.from_context(runbook_context)
    app = cdk.App(outdir=str(outdir))
    stack = RestoreRunbookStack(
        app,
        STACK_NAME,
        settings=settings,
        layer_asset_path=layer,
        env=cdk.Environment(account=settings.account, region=settings.region),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # When synthesized with cdk-nag attached (the template is written before validation runs)
    synth_error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail synth; the nag test reports them
        synth_error = exc
    template_path = outdir / f"{STACK_NAME}.template.json"
    template = Template.from_json(json.loads(template_path.read_text(encoding="utf-8")))
    yield Synthesized(settings, stack, app, outdir, template, template_path, synth_error)
