"""The names both sides agree on live in the Lambda code's contract; the infrastructure imports it, never the reverse."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO_ROOT

pytestmark = pytest.mark.infra

LAMBDAS = REPO_ROOT / "lambdas"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_contract_imports_nothing_but_the_standard_library() -> None:
    assert imported_modules(LAMBDAS / "restore_runbook" / "contract.py") <= {"__future__", "re"}


def test_nothing_in_lambdas_imports_the_stack_or_the_cli() -> None:
    for path in LAMBDAS.rglob("*.py"):
        for module in imported_modules(path):
            assert module.split(".")[0] not in {"stacks", "restorectl", "aws_cdk", "constructs"}, (path, module)


def test_the_stack_and_the_code_share_one_definition_of_each_name() -> None:
    from restore_runbook import contract
    from restore_runbook.common import fields, rds
    from restore_runbook.snapshot import snapshots
    from stacks import ssm_documents

    assert ssm_documents.DB_HOST_PATTERN is contract.DB_HOST_PATTERN
    # The input check's host names are a stricter subset of what the set-db-host document accepts.
    assert fields.DB_HOST_PATTERN is contract.DB_HOST_PATTERN and fields.RDS_IDENTIFIER is contract.RDS_IDENTIFIER
    for host in ("irisx-prod.abc.us-east-1.rds.amazonaws.com", "10.0.0.12", "a", "a-b.c"):
        assert fields.host_name(host, "h") == host and re.fullmatch(contract.DB_HOST_PATTERN, host)
    assert {d.key for d in ssm_documents.DOCUMENTS} == {contract.SET_DB_HOST_DOCUMENT, contract.APP_CONTROL_DOCUMENT}
    assert ssm_documents.SET_DB_HOST.name("irisx-restore") == contract.document_name("irisx-restore", "set-db-host")
    assert snapshots.REASONS is contract.SNAPSHOT_REASONS
    assert rds.TAG_WORKFLOW is contract.TAG_WORKFLOW


def test_no_name_of_the_contract_is_spelled_out_again_in_the_stack() -> None:
    from restore_runbook import contract

    spelled = [
        value
        for name, value in vars(contract).items()
        if name.startswith(("TAG_", "ENV_")) or name.endswith("_PATTERN") or name == "DEFAULT_MANAGEMENT_TAG_KEY"
    ]
    for path in (REPO_ROOT / "stacks").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for value in spelled:
            assert f'"{value}"' not in text and f'r"{value}"' not in text, (path, value)
