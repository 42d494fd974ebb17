"""The names both sides agree on live in the Lambda code's contract; the infrastructure imports it, never the reverse."""

from __future__ import annotations

import ast
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
    from restore_runbook.common import rds
    from restore_runbook.rollback import procedure
    from restore_runbook.snapshot import snapshots
    from stacks import ssm_documents

    assert ssm_documents.DB_HOST_PATTERN is contract.DB_HOST_PATTERN
    assert procedure.HOST_NAME.pattern == contract.DB_HOST_PATTERN
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
