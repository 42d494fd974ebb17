"""Connections the validate step makes, the throwaway cluster, and the sample data behind the rehearsal."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import psycopg2
import pytest

from restore_runbook.validation import database
from restore_runbook.validation.database import DbTarget
from restorectl import sample_data
from restorectl.localpg import LocalPostgres

from .conftest import NOW, RESTORE_POINT, SOURCE_CALLS

pytestmark = pytest.mark.validation


def test_the_password_never_appears_in_a_targets_repr():
    target = DbTarget(host="db.example", port=5432, dbname="irisx", user="postgres", password="s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(target) and "s3cr3t-pw" not in str(target)
    assert "db.example" in repr(target) and target.describe() == "db.example:5432/irisx"


def test_a_validation_connection_is_read_only_time_limited_utc_and_named(source_db, target):
    conn = database.connect(target(source_db["dbname"]), statement_timeout_ms=250)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "250ms"
            cur.execute(
                "SELECT current_setting('default_transaction_read_only'), current_setting('TimeZone'), current_setting('application_name')"
            )
            assert cur.fetchone() == ("on", "UTC", "irisx-restore-validate")
            with pytest.raises(psycopg2.errors.QueryCanceled):
                cur.execute("SELECT pg_sleep(2)")
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute("DELETE FROM calls")
            cur.execute("SELECT count(*) FROM calls")  # autocommit: the session is usable after errors
            assert cur.fetchone()[0] == SOURCE_CALLS
    finally:
        conn.close()


def test_the_local_cluster_checks_passwords_on_tcp(local_pg):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=local_pg.host, port=local_pg.port, user=local_pg.user, password="wrong", dbname="postgres")
    assert local_pg.password not in repr(local_pg)


def test_copy_rename_and_drop_databases_even_while_the_template_is_in_use(local_pg, source_db):
    # Given a session holding the source open (an app, a validation in flight)
    holder = local_pg.connect(source_db["dbname"])
    try:
        # When it is copied (a snapshot restore), renamed and dropped
        local_pg.create_database("cluster_copy", template=source_db["dbname"])
        local_pg.rename_database("cluster_copy", "cluster_copy_renamed")

        # Then each step took effect
        assert not local_pg.database_exists("cluster_copy") and local_pg.database_exists("cluster_copy_renamed")
        conn = local_pg.connect("cluster_copy_renamed")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM calls")
            assert cur.fetchone()[0] == SOURCE_CALLS
        conn.close()
    finally:
        holder.close()
        local_pg.drop_database("cluster_copy_renamed")
    assert not local_pg.database_exists("cluster_copy_renamed")


def test_a_point_in_time_cut_removes_exactly_the_rows_created_after_the_moment(local_pg, source_db, make_copy):
    copy = make_copy()
    deleted = local_pg.delete_rows_after(copy, sample_data.TABLES, "created_at", RESTORE_POINT)

    conn = local_pg.connect(copy)
    try:
        summary = sample_data.summarize(conn)
    finally:
        conn.close()
    for table in sample_data.TABLES:
        assert summary["tables"][table]["rows"] + deleted[table] == source_db["tables"][table]["rows"]
        assert summary["tables"][table]["newest"] <= RESTORE_POINT
    assert deleted["calls"] > 0


def test_sample_data_has_the_planned_counts_spread_over_the_retention_window(local_pg, source_db):
    tables = source_db["tables"]
    assert {t: tables[t]["rows"] for t in sample_data.TABLES} == sample_data.plan_counts(SOURCE_CALLS)
    assert sample_data.plan_counts(1_000_000) == {"tenants": 1000, "users": 20000, "calls": 1_000_000, "api_keys": 2000}
    for table in sample_data.TABLES:
        assert NOW - timedelta(days=7) <= tables[table]["oldest"] <= tables[table]["newest"] <= NOW
    # the newest call is within one average interval of "now", so restore-point checks bite
    assert NOW - tables["calls"]["newest"] <= timedelta(days=7) / SOURCE_CALLS
    assert tables["calls"]["oldest"] - (NOW - timedelta(days=7)) <= timedelta(days=7) / SOURCE_CALLS

    conn = local_pg.connect(source_db["dbname"])
    try:
        with conn.cursor() as cur:
            # every row's parents are older than it, so a point-in-time cut never breaks a foreign key
            cur.execute("""
                SELECT (SELECT count(*) FROM calls c JOIN users u ON u.id = c.user_id
                         WHERE u.created_at > c.created_at OR u.tenant_id <> c.tenant_id),
                       (SELECT count(*) FROM calls c JOIN tenants t ON t.id = c.tenant_id WHERE t.created_at > c.created_at),
                       (SELECT count(*) FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.created_at > u.created_at),
                       (SELECT count(*) FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE t.created_at > k.created_at)
            """)
            assert cur.fetchone() == (0, 0, 0, 0)
            cur.execute(
                "SELECT count(DISTINCT direction), count(DISTINCT status), count(recording_key), count(*) - count(user_id) FROM calls"
            )
            directions, statuses, recordings, without_user = cur.fetchone()
            assert directions == 2 and statuses == 4 and 0 < recordings < SOURCE_CALLS and 0 < without_user < SOURCE_CALLS
            cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'calls' AND indexdef LIKE '%(created_at)%'")
            assert cur.fetchone() is not None
            cur.execute("SELECT nextval('calls_id_seq')")
            assert cur.fetchone()[0] == SOURCE_CALLS + 1
        conn.rollback()
    finally:
        conn.close()


def test_sample_data_is_deterministic(local_pg):
    fingerprints = []
    for name in ("determinism_a", "determinism_b"):
        local_pg.drop_database(name)
        local_pg.create_database(name)
        conn = local_pg.connect(name)
        try:
            sample_data.seed(conn, 500, NOW, seed=7)
            with conn.cursor() as cur:
                cur.execute("SELECT md5(string_agg(c::text, '|' ORDER BY id)) FROM calls c")
                fingerprints.append(cur.fetchone()[0])
        finally:
            conn.close()
            local_pg.drop_database(name)
    assert fingerprints[0] == fingerprints[1]


def test_a_cluster_starts_in_seconds_and_leaves_nothing_behind():
    began = time.monotonic()
    with LocalPostgres() as pg:
        assert pg.running and pg.startup_seconds < 10
        base_dir = pg.base_dir
        conn = pg.connect()
        conn.close()
    assert time.monotonic() - began < 15
    assert not pg.running and base_dir is not None
    assert not os.path.exists(base_dir)
