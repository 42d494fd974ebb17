"""The index check's budget: on a cold copy it stops in time, says what it did not verify, and still fails corruption.

A large cold copy makes each `bt_index_check` slow because every page it compares comes from S3.
Here an index is made slow the same way, in its comparisons: it is built with an operator class
whose comparison function is then replaced by one that gives the same order but sleeps 5 ms per
call, so checking its ~4,000 comparisons really takes about 20 s, against the real local
PostgreSQL. The index stays consistent (a check given the time would pass it); only the budget
stops it. Everything is done in throwaway copies.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import boto3
import psycopg2
import pytest
from moto import mock_aws

from restore_runbook.common import aws
from restore_runbook.common.errors import ValidationFailed
from restore_runbook.restore.request import RestorePlan
from restore_runbook.settings import RunbookSettings
from restore_runbook.validation import counts, database, integrity, step
from restorectl import sample_data

from .conftest import RESTORE_POINT, by_name, corrupt_index, execute, validate

pytestmark = pytest.mark.validation

TABLES = sample_data.TABLES
BUDGET_MS = 2_000
# Well short of the ~20 s the slow index takes to check, so only a cut can explain a check this short.
CUT_WELL_SHORT_MS = 10_000
API_KEYS_INDEXES = {"api_keys_pkey", "api_keys_created_at_idx", "api_keys_tenant_id_idx"}

SLOW_CALLS_INDEX = """
CREATE FUNCTION int4_slow_cmp(a int4, b int4) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT btint4cmp($1, $2) $$;
CREATE OPERATOR CLASS int4_slow_ops FOR TYPE int4 USING btree AS
    OPERATOR 1 < (int4, int4), OPERATOR 2 <= (int4, int4), OPERATOR 3 = (int4, int4),
    OPERATOR 4 >= (int4, int4), OPERATOR 5 > (int4, int4), FUNCTION 1 int4_slow_cmp(int4, int4);
CREATE INDEX calls_slow_idx ON calls (duration_seconds int4_slow_ops);
CREATE OR REPLACE FUNCTION int4_slow_cmp(a int4, b int4) RETURNS int LANGUAGE sql IMMUTABLE
    AS $$ SELECT pg_sleep(0.005); SELECT btint4cmp($1, $2) $$;
"""


@pytest.fixture
def slow_copy(local_pg, make_copy) -> str:
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, SLOW_CALLS_INDEX)
    return copy


def split_at_the_slow_index(indexes: dict[str, dict]) -> tuple[list[str], list[str]]:
    """The indexes checked before the slow one and those after it, in the order the check took them."""
    order = list(indexes)
    cut = order.index("calls_slow_idx")
    return order[:cut], order[cut + 1 :]


def test_an_index_check_that_outruns_its_budget_lists_what_it_did_not_verify_and_the_restore_passes(slow_copy, source_db, target):
    # Given a copy with a calls index that takes about 20 s to check, and a 2 s budget for all indexes
    # When it is validated
    report = validate(target(slow_copy), target(source_db["dbname"]), integrity_budget_ms=BUDGET_MS)

    # Then the restore passes, and the index check is reported, not failed
    check = by_name(report)["index_integrity"]
    assert report["passed"] is True
    assert check["status"] == "reported"
    assert all(c["status"] == "passed" for c in report["checks"] if c["name"] != "index_integrity")

    # And every index before the slow one was verified: all of tenants' and users' at least
    indexes = check["values"]["indexes"]
    before, after = split_at_the_slow_index(indexes)
    assert all(indexes[name]["status"] == "ok" for name in before)
    assert {"tenants", "users"} <= {indexes[name]["table"] for name in before}

    # And the slow one was started and cut off when the budget ran out, not at the 5 s statement timeout
    slow = indexes["calls_slow_idx"]
    assert (slow["status"], slow["why"]) == ("not checked", "2 s budget spent")
    assert slow["ms"] < 5_000 and check["duration_ms"] < CUT_WELL_SHORT_MS
    assert check["duration_ms"] >= BUDGET_MS - 1

    # And the ones after it were never started: api_keys' indexes, all of them
    assert set(after) == API_KEYS_INDEXES
    assert all(
        indexes[name] == {"table": "api_keys", "bytes": indexes[name]["bytes"], "status": "not checked", "why": "2 s budget spent"}
        for name in after
    )
    assert check["values"]["budget_spent"] == ["calls_slow_idx", *after]
    assert check["values"]["budget_ms"] == BUDGET_MS

    # And the detail says how many were verified and names every one that was not
    not_reached = ", ".join(f"{name} on api_keys" for name in after)
    assert re.fullmatch(
        rf"{len(before)} of {len(indexes)} indexes verified; not checked \(2 s budget spent\): "
        rf"calls_slow_idx on calls \(cut off after [\d,]+ ms\), {re.escape(not_reached)}",
        check["detail"],
    ), check["detail"]
    assert "reported: index_integrity: " in report["summary"]


def test_when_integrity_is_required_an_index_the_budget_did_not_cover_fails_the_restore_naming_it(slow_copy, source_db, target):
    # Given the same copy and budget, with integrity required by the settings
    # When it is validated
    with pytest.raises(ValidationFailed) as caught:
        validate(target(slow_copy), target(source_db["dbname"]), integrity_budget_ms=BUDGET_MS, integrity_required=True)

    # Then the restore fails on index_integrity alone, naming each index it could not verify
    failed = [c["name"] for c in caught.value.report["checks"] if c["status"] == "failed"]
    assert failed == ["index_integrity"]
    indexes = by_name(caught.value.report)["index_integrity"]["values"]["indexes"]
    before, after = split_at_the_slow_index(indexes)
    message = str(caught.value)
    assert message.startswith(
        f"1 of 8 checks failed: index_integrity: index integrity is required, but only {len(before)} of {len(indexes)} indexes "
        "verified; not checked (2 s budget spent): calls_slow_idx on calls (cut off after "
    )
    assert all(f"{name} on api_keys" in message for name in after) and len(after) == 3


def test_a_corrupted_index_still_fails_the_restore_when_the_budget_runs_out_before_the_rest(local_pg, slow_copy, source_db, target):
    # Given a copy with a corrupted tenants index (checked first) and the slow calls index later
    corrupt_index(local_pg, slow_copy, "tenants_fickle_idx", "tenants", "(id::int4)")

    # When it is validated with a budget too short for every index, integrity not required
    with pytest.raises(ValidationFailed) as caught:
        validate(target(slow_copy), target(source_db["dbname"]), integrity_budget_ms=BUDGET_MS)

    # Then index_integrity fails for the corruption, and also says what the budget left unchecked
    check = by_name(caught.value.report)["index_integrity"]
    statuses = {name: entry["status"] for name, entry in check["values"]["indexes"].items()}
    assert check["status"] == "failed"
    assert statuses["tenants_fickle_idx"] == "corrupted" and statuses["calls_slow_idx"] == "not checked"
    assert check["values"]["budget_spent"][0] == "calls_slow_idx"
    assert check["detail"].startswith(
        'index tenants_fickle_idx on tenants is corrupted: item order invariant violated for index "tenants_fickle_idx"'
    )
    assert "; not checked (2 s budget spent): calls_slow_idx on calls (cut off after " in check["detail"]


def test_sharing_the_first_session_the_index_check_follows_the_counts_and_its_budget_includes_their_time(monkeypatch, large_copy, target):
    # Given a copy that refuses validation a second session, and spies on when the counts and the check run
    original_connect, original_count, original_check = database.connect, counts.count_rows, integrity.check_integrity
    opened: list[str] = []
    spans: dict[str, tuple[float, float]] = {}
    spent: list[float] = []

    def one_session_to_the_copy(where, **kwargs):
        if where.dbname == large_copy["copy"]:
            opened.append(where.dbname)
            if len(opened) > 1:
                raise psycopg2.OperationalError("FATAL:  sorry, too many clients already")
        return original_connect(where, **kwargs)

    def timed(name, function):
        def run(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spans[name] = (began, time.perf_counter())

        return run

    def checking(*args, **kwargs):
        spent.append(kwargs["spent_ms"])
        return timed("integrity", original_check)(*args, **kwargs)

    monkeypatch.setattr(database, "connect", one_session_to_the_copy)
    monkeypatch.setattr(counts, "count_rows", timed("counts", original_count))
    monkeypatch.setattr(integrity, "check_integrity", checking)

    # When it is validated with an index budget shorter than counting 200,000 calls takes
    report = validate(target(large_copy["copy"]), target(large_copy["source"]), count_budget_ms=5_000, integrity_budget_ms=1)

    # Then the check started only once the counts had finished, with their time taken from its budget
    assert spans["integrity"][0] >= spans["counts"][1]
    assert spent[0] >= (spans["counts"][1] - spans["counts"][0]) * 1000 > 1

    # So it started no index, listed all of them as not checked, and the restore passed with the counts measured
    check = by_name(report)["index_integrity"]
    assert report["passed"] and check["status"] == "reported"
    assert check["values"]["session"].startswith("shared (a second session could not be opened: ")
    assert check["values"]["indexes"] and all(
        entry["status"] == "not checked" and "ms" not in entry for entry in check["values"]["indexes"].values()
    )
    assert check["values"]["budget_spent"] == list(check["values"]["indexes"])
    assert by_name(report)["row_counts"]["status"] == "passed"


def test_the_validate_step_gives_the_check_the_configured_budget_and_named_indexes(monkeypatch, local_pg, slow_copy):
    # Given the validate step's settings with a 1 s index budget, and an emulated source and copy
    # that route to the local cluster (the copy is its own source: the same rows at the same point)
    routes = {"restored.emulated.rds", "source.emulated.rds"}
    original_connect = database.connect

    def routed(where, **kwargs):
        assert where.host in routes, where.host
        return original_connect(replace(where, host=local_pg.host, port=local_pg.port), **kwargs)

    monkeypatch.setattr(database, "connect", routed)
    monkeypatch.setattr(step.rds, "describe_source", lambda _: {"Endpoint": {"Address": "source.emulated.rds", "Port": 5432}})
    aws.client.cache_clear()
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="irisx/prod/rds-postgres", SecretString=json.dumps({"username": local_pg.user, "password": local_pg.password})
        )["ARN"]
        settings = RunbookSettings(
            source_instance="irisx-prod-rds-postgres",
            db_secret_arn=arn,
            database_name=slow_copy,
            db_sslmode="disable",
            statement_timeout_ms=5_000,
            integrity_budget_seconds=1,
        )
        plan = RestorePlan(
            mode="point-in-time",
            source_instance="irisx-prod-rds-postgres",
            target_instance="irisx-restore-test",
            restore_time="2025-11-02T11:00:00Z",
            use_latest_restorable_time=False,
            snapshot_id=None,
            restore_point="2025-11-02T11:00:00Z",
            keep_on_failure=False,
            requested_by="test",
            checked_at="2025-11-02T11:30:00Z",
        )
        progress = {
            "endpoint": {"address": "restored.emulated.rds", "port": 5432},
            "restore_point": "2025-11-02T11:00:00Z",
            "started_at": "2025-11-02T11:31:00Z",
        }

        # When the step validates the copy, then again with only an index named and no table listed
        try:
            report = step.validate_restore(plan, progress, settings)
            narrowed = step.validate_restore(
                plan, progress, replace(settings, integrity_check_tables=(), integrity_check_indexes=("tenants_pkey",))
            )
        finally:
            aws.client.cache_clear()

    # Then the check ran under the configured 1 s and stopped at it
    check = by_name(report)["index_integrity"]
    assert report["passed"] and check["status"] == "reported"
    assert check["values"]["budget_ms"] == 1_000
    assert check["values"]["indexes"]["calls_slow_idx"]["why"] == "1 s budget spent"
    assert check["duration_ms"] < CUT_WELL_SHORT_MS
    # And the named index was all the step had checked the second time
    named = by_name(narrowed)["index_integrity"]
    assert named["status"] == "passed" and list(named["values"]["indexes"]) == ["tenants_pkey"]
