#!/usr/bin/env python3
"""CDK entry point: read the runbook settings from context, build the stack, check it with cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.restore_runbook_stack import RestoreRunbookStack
from stacks.settings import StackSettings

CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def runbook_context(app: cdk.App) -> Any:
    """The `runbook` settings: from the CDK CLI's context, or from cdk.json when run as `python app.py`."""
    context = app.node.try_get_context("runbook")
    if context is None:
        context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {}).get("runbook")
    return context


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    settings = StackSettings.from_context(runbook_context(app))
    stack = RestoreRunbookStack(
        app,
        f"{settings.name_prefix}-runbook",
        settings=settings,
        env=cdk.Environment(account=settings.account, region=settings.region),
        description="Automated restore runbook for the IRISX PostgreSQL database (Step Functions + Lambda)",
    )
    for key in settings.placeholders():
        cdk.Annotations.of(stack).add_warning_v2(
            f"runbook:placeholder:{key}",
            f"runbook setting {key!r} still holds the runbook's example value; set the real one before deploying",
        )
    # cdk-nag 3 runs as a CDK validation plugin: synth fails on any unacknowledged finding.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
