"""The cold-copy validation settings block: declared in cdk.json, checked at synth, read back by the Lambdas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restore_runbook.common.errors import InvalidInput
from restore_runbook.settings import RunbookSettings
from stacks.settings import StackSettings

pytestmark = pytest.mark.unit

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]["runbook"]
NAMES = ("count_budget_seconds", "counts_required", "integrity_check_tables", "integrity_required", "warm_budget_seconds", "warm_tables")


def test_cdk_json_defaults_reach_the_lambdas_with_every_validation_table_checked_and_warmed():
    stack = StackSettings.from_context(CONTEXT)
    read = RunbookSettings.from_env(stack.lambda_environment())
    for name in NAMES:
        assert getattr(read, name) == getattr(stack, name), name
    assert read.integrity_tables == read.warm_up_tables == read.validation_tables
    assert (read.count_budget_seconds, read.counts_required, read.integrity_required) == (20, False, False)


def test_an_explicit_empty_list_means_none_and_flags_are_true_or_false():
    stack = StackSettings.from_context({**CONTEXT, "integrity_check_tables": [], "counts_required": True})
    read = RunbookSettings.from_env(stack.lambda_environment())
    assert read.integrity_tables == () and read.counts_required is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("counts_required", "yes", "expected true or false"), ("warm_tables", ["calls; drop"], "plain SQL identifiers")],
)
def test_a_bad_value_is_named_at_synth(key, value, message):
    with pytest.raises(ValueError, match=message):
        StackSettings.from_context({**CONTEXT, key: value})


def test_a_bad_environment_value_is_named_at_cold_start():
    env = {**StackSettings.from_context(CONTEXT).lambda_environment(), "COUNTS_REQUIRED": "maybe"}
    with pytest.raises(InvalidInput, match="COUNTS_REQUIRED='maybe' is not true or false"):
        RunbookSettings.from_env(env)
