"""The warm-up before cutover reads the critical tables and indexes within its budget, against the real local PostgreSQL."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from restore_runbook import settings as runbook_settings
from restore_runbook.common import aws
from restore_runbook.common.errors import ValidationFailed
from restore_runbook.validation import warm
from restore_runbook.validation.handlers import warm_restored_copy as warm_handler
from restorectl import sample_data
from restorectl.lambda_bridge import LambdaContext

from .conftest import execute

pytestmark = pytest.mark.validation

TABLES = sample_data.TABLES


def warm_copy(target, dbname: str, budget_seconds: float = 60) -> dict:
    return warm.warm_restored_copy(target(dbname), TABLES, budget_seconds=budget_seconds, statement_timeout_ms=5_000)


def test_with_pg_prewarm_every_index_and_table_is_read_and_measured(make_copy, target):
    # Given a copy that inherited pg_prewarm from its source
    copy = make_copy()

    # When it is warmed with a generous budget
    report = warm_copy(target, copy)

    # Then every table and index of every critical table is read to its last block, with a rate
    assert report["method"] == "pg_prewarm" and report["stopped_at_budget"] is False and report["not_warmed"] == []
    relations = {e["relation"]: e for e in report["relations"]}
    assert {"calls", "calls_pkey", "calls_created_at_idx", "tenants", "api_keys_tenant_id_idx"} <= set(relations)
    assert len(relations) == 4 + 12
    assert all(e["status"] == "warmed" and e["blocks_read"] == e["blocks"] > 0 for e in relations.values())
    assert [e["kind"] for e in report["relations"] if e["table"] == "calls"][-1] == "table"  # its indexes first
    assert report["mb_read"] == pytest.approx(sum(e["mb"] for e in relations.values()), abs=0.01) and report["mb_per_s"] > 0
    assert report["summary"].startswith("warmed 16 of 16 relations: ")
    assert json.loads(json.dumps(report)) == report


def test_the_warm_up_stops_cleanly_at_its_budget_and_says_what_it_did_not_reach(large_copy, target):
    # Given 200,000 calls (tens of MB) and a budget of 1 ms
    began = time.perf_counter()

    # When the copy is warmed
    report = warm_copy(target, large_copy["copy"], budget_seconds=0.001)

    # Then it stops at once, says it stopped at its budget, and lists what is still cold
    assert time.perf_counter() - began < 2
    assert report["stopped_at_budget"] is True
    assert report["not_warmed"] and report["not_warmed_mb"] > 10
    stopped = [e for e in report["relations"] if e.get("stopped_at_budget")]
    assert stopped and "the warm-up budget ran out" in stopped[0]["detail"]
    assert all(e["status"] == "not warmed" for e in report["relations"][report["relations"].index(stopped[0]) + 1 :])
    assert "not warmed within the 0.001 s budget" in report["summary"]


def test_reads_go_in_chunks_that_add_up_to_the_whole_relation(large_copy, target, local_pg):
    conn = local_pg.connect(large_copy["copy"], autocommit=True)
    try:
        report = warm.warm_relations(conn, ["calls"], budget_seconds=60, chunk_bytes=16 * 8192)
    finally:
        conn.close()

    heap = next(e for e in report["relations"] if e["kind"] == "table")
    assert heap["blocks"] > 16 * 10 and heap["blocks_read"] == heap["blocks"] and heap["status"] == "warmed"


def test_without_pg_prewarm_the_heaps_are_read_by_tid_range_and_indexes_reported_cold(local_pg, make_copy, target):
    # Given a copy without pg_prewarm
    copy = make_copy()
    execute(local_pg, copy, "DROP EXTENSION pg_prewarm")

    # When it is warmed
    report = warm_copy(target, copy)

    # Then each heap is read block by block, and each index is reported not warmed, saying why
    assert report["method"].startswith("sequential read")
    heaps = [e for e in report["relations"] if e["kind"] == "table"]
    indexes = [e for e in report["relations"] if e["kind"] == "index"]
    assert len(heaps) == 4 and all(e["status"] == "warmed" and e["blocks_read"] == e["blocks"] for e in heaps)
    assert len(indexes) == 12 and all(e["status"] == "not warmed" and "pg_prewarm is not installed" in e["detail"] for e in indexes)
    assert report["stopped_at_budget"] is False


def test_a_copy_that_cannot_be_reached_is_a_named_error(make_copy, target):
    copy = make_copy()
    with pytest.raises(ValidationFailed, match=r"could not connect to the restored database .* to warm it before cutover"):
        warm.warm_restored_copy(target(copy, password="wrong"), TABLES, budget_seconds=5, statement_timeout_ms=5_000)


def test_the_handler_warms_the_copy_named_by_the_restore_step(monkeypatch, local_pg, make_copy):
    # Given the Lambda's environment, its secret, and the restore step's output naming the copy's endpoint
    copy = make_copy()
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="irisx/prod/rds-postgres", SecretString=json.dumps({"username": local_pg.user, "password": local_pg.password})
        )["ARN"]
        for name, value in {
            "SOURCE_INSTANCE": "irisx-prod-rds-postgres",
            "DB_SECRET_ARN": arn,
            "DATABASE_NAME": copy,
            "WARM_TABLES": '["calls"]',
            "WARM_BUDGET_SECONDS": "30",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        runbook_settings.settings.cache_clear()
        aws.client.cache_clear()
        event = {
            "context": {"execution_id": "arn:aws:states:us-east-1:123456789012:execution:restore:x"},
            "restore": {"endpoint": {"address": local_pg.host, "port": local_pg.port}},
        }

        # When the handler runs
        try:
            report = warm_handler.handler(event, LambdaContext("irisx-restore-warm", "arn:aws:lambda:us-east-1:123456789012:function:w"))
        finally:
            runbook_settings.settings.cache_clear()
            aws.client.cache_clear()

    # Then it warmed the configured table and its indexes, within the configured budget
    assert report["budget_seconds"] == 30
    assert {e["table"] for e in report["relations"]} == {"calls"} and report["not_warmed"] == []
