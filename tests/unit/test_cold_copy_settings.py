"""The cold-copy validation settings block: declared in cdk.json, checked at synth, read back by the Lambdas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from restore_runbook.common.errors import InvalidInput
from restore_runbook.settings import RunbookSettings
from stacks.settings import StackSettings

pytestmark = pytest.mark.unit

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]["runbook"]
NAMES = (
    "count_budget_seconds",
    "counts_required",
    "integrity_check_tables",
    "integrity_check_indexes",
    "integrity_required",
    "integrity_budget_seconds",
    "warm_budget_seconds",
    "warm_tables",
)


def test_cdk_json_defaults_reach_the_lambdas_with_every_validation_table_checked_and_warmed():
    stack = StackSettings.from_context(CONTEXT)
    read = RunbookSettings.from_env(stack.lambda_environment())
    for name in NAMES:
        assert getattr(read, name) == getattr(stack, name), name
    assert read.integrity_tables == read.warm_up_tables == read.validation_tables
    assert (read.count_budget_seconds, read.counts_required, read.integrity_required) == (20, False, False)
    assert read.integrity_budget_seconds == 180


def test_named_indexes_reach_the_lambdas_and_a_bad_name_is_refused_at_synth():
    stack = StackSettings.from_context({**CONTEXT, "integrity_check_tables": [], "integrity_check_indexes": ["calls_pkey", "users_pkey"]})
    read = RunbookSettings.from_env(stack.lambda_environment())
    assert (read.integrity_tables, read.integrity_check_indexes) == ((), ("calls_pkey", "users_pkey"))
    assert RunbookSettings.from_env(StackSettings.from_context(CONTEXT).lambda_environment()).integrity_check_indexes is None
    with pytest.raises(ValueError, match=r"integrity_check_indexes.*plain SQL identifiers"):
        StackSettings.from_context({**CONTEXT, "integrity_check_indexes": ["calls_pkey; drop"]})


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


def test_a_list_naming_an_entry_twice_is_refused_at_synth_and_at_cold_start():
    with pytest.raises(ValueError, match="lists an entry twice"):
        StackSettings.from_context({**CONTEXT, "integrity_check_indexes": ["calls_pkey", "calls_pkey"]})
    named_twice = '["users_pkey", "calls_pkey", "users_pkey"]'
    env = {**StackSettings.from_context(CONTEXT).lambda_environment(), "INTEGRITY_CHECK_INDEXES": named_twice}
    with pytest.raises(InvalidInput, match="setting INTEGRITY_CHECK_INDEXES names 'users_pkey' more than once; name each once"):
        RunbookSettings.from_env(env)


def test_left_out_of_cdk_json_the_index_budget_is_three_minutes():
    stack = StackSettings.from_context({key: value for key, value in CONTEXT.items() if key != "integrity_budget_seconds"})
    assert stack.integrity_budget_seconds == 180
    assert RunbookSettings.from_env(stack.lambda_environment()).integrity_budget_seconds == 180


# The validate step has a 10-minute function; its index check and its counts each get at most 420 s.
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"integrity_budget_seconds": 421}, "runbook setting 'integrity_budget_seconds'=421 is above 420: the validate step runs"),
        ({"count_budget_seconds": 106}, "'count_budget_seconds'=106 for each of the 4 'validation_tables' is 424 s of counting, above 420"),
        (
            {"count_budget_seconds": 90, "validation_tables": ["tenants", "users", "calls", "api_keys", "recordings"]},
            "'count_budget_seconds'=90 for each of the 5 'validation_tables' is 450 s of counting, above 420",
        ),
    ],
)
def test_validation_budgets_that_outlast_the_validate_function_are_refused_at_synth(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        StackSettings.from_context({**CONTEXT, **changes})


def test_validation_budgets_that_fill_the_limit_exactly_are_accepted():
    stack = StackSettings.from_context({**CONTEXT, "integrity_budget_seconds": 420, "count_budget_seconds": 105})
    read = RunbookSettings.from_env(stack.lambda_environment())
    assert (read.integrity_budget_seconds, read.count_budget_seconds * len(read.validation_tables)) == (420, 420)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"INTEGRITY_BUDGET_SECONDS": "421"}, "setting INTEGRITY_BUDGET_SECONDS=421 is above 420: the validate step runs"),
        ({"COUNT_BUDGET_SECONDS": "106"}, "setting COUNT_BUDGET_SECONDS=106 for each of the 4 VALIDATION_TABLES is 424 s of counting"),
        (
            {"COUNT_BUDGET_SECONDS": "90", "VALIDATION_TABLES": '["tenants", "users", "calls", "api_keys", "recordings"]'},
            "setting COUNT_BUDGET_SECONDS=90 for each of the 5 VALIDATION_TABLES is 450 s of counting, above 420",
        ),
        ({"INTEGRITY_BUDGET_SECONDS": "0"}, "INTEGRITY_BUDGET_SECONDS='0' is not a positive whole number"),
    ],
)
def test_validation_budgets_that_outlast_the_validate_function_are_refused_at_cold_start(changes, message):
    env = {**StackSettings.from_context(CONTEXT).lambda_environment(), **changes}
    with pytest.raises(InvalidInput, match=re.escape(message)):
        RunbookSettings.from_env(env)
