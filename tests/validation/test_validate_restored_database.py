"""The validate step's checks, run for real against copies of a seeded database in a local PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg2
import pytest
from psycopg2 import sql

from restore_runbook.common.errors import InvalidInput, ValidationFailed
from restore_runbook.validation import database
from restore_runbook.validation.checks import validate_restored_database
from restorectl import sample_data

from .conftest import NOW, RESTORE_POINT, by_name, execute

pytestmark = pytest.mark.validation

TABLES = sample_data.TABLES
TIMEOUT_MS = 5_000


def validate(copy, source, *, tables=TABLES, restore_point=RESTORE_POINT, timeout_ms=TIMEOUT_MS, **kwargs):
    return validate_restored_database(
        copy, source, tables=tables, recency_column="created_at", restore_point=restore_point, statement_timeout_ms=timeout_ms, **kwargs
    )


def failure(copy, source, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate(copy, source, **kwargs)
    return caught.value


def source_truth(local_pg, source_db, restore_point):
    """Counts and newest created_at of the source as of the restore point, read directly."""
    truth = {}
    for table in TABLES:
        rows, newest = execute(
            local_pg,
            source_db["dbname"],
            sql.SQL("SELECT count(*), max(created_at) FROM {} WHERE created_at <= %s").format(sql.Identifier(table)),
            (restore_point,),
        )[0]
        truth[table] = (rows, newest)
    return truth


def test_a_point_in_time_copy_passes_with_exact_counts_and_matching_recency(local_pg, source_db, make_copy, target):
    # Given a copy of the source as it was at the restore point
    copy = make_copy(restore_point=RESTORE_POINT)

    # When it is validated against the source
    report = validate(target(copy), target(source_db["dbname"]))

    # Then every check passes, with the source's exact counts and newest rows at the restore point
    truth = source_truth(local_pg, source_db, RESTORE_POINT)
    checks = by_name(report)
    assert report["passed"] is True
    assert [c["name"] for c in report["checks"]] == [
        "connect",
        "schema",
        *(f"recency:{t}" for t in TABLES),
        "index_integrity",
        "row_counts",
    ]
    assert checks["connect"]["values"]["server_version"].startswith("15")
    assert checks["row_counts"]["values"]["counts"] == {t: truth[t][0] for t in TABLES}
    assert checks["row_counts"]["values"]["source_counts_at_restore_point"] == {t: truth[t][0] for t in TABLES}
    assert all(e["against_source"] == "matches" for e in checks["row_counts"]["values"]["tables"].values())
    assert checks["row_counts"]["status"] == "passed" and checks["row_counts"]["gating"] is False
    assert checks["index_integrity"]["status"] == "passed" and len(checks["index_integrity"]["values"]["indexes"]) == 12
    assert checks["row_counts"]["values"]["counts"]["calls"] < source_db["tables"]["calls"]["rows"]
    calls = checks["recency:calls"]["values"]
    assert calls["copy_newest"] == calls["source_newest_at_restore_point"]
    assert calls["source_newest"] > calls["restore_point"]  # the source has moved on since
    newest_call = truth["calls"][1]
    assert calls["data_gap_seconds"] == pytest.approx((RESTORE_POINT - newest_call).total_seconds())
    assert 0 < calls["data_gap_seconds"] < 3600
    assert report["summary"] == "all 7 gating checks passed"  # row_counts informs, it does not gate
    assert report["restore_point"] == "2025-11-02T11:00:00Z"
    assert all(c["duration_ms"] >= 0 for c in report["checks"]) and report["duration_ms"] > 0
    assert json.loads(json.dumps(report)) == report  # a Step Functions state can carry it as is


def test_a_missing_table_fails_naming_it_and_skips_its_recency(local_pg, source_db, make_copy, target):
    # Given a point-in-time copy that lost a table
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "DROP TABLE api_keys")

    # When it is validated
    error = failure(target(copy), target(source_db["dbname"]))

    # Then the message names the table, and only the checks that could run are judged
    assert str(error).startswith("1 of 8 checks failed (1 skipped): schema: table api_keys does not exist in the restored database")
    checks = by_name(error.report)
    assert checks["schema"]["values"]["missing_tables"] == ["api_keys"]
    assert checks["row_counts"]["values"]["counts"]["calls"] > 0
    assert checks["recency:api_keys"]["status"] == "skipped"
    assert checks["recency:calls"]["passed"] is True


def test_an_empty_copy_fails_when_the_source_had_rows_by_the_restore_point(local_pg, source_db, make_copy, target):
    # Given a copy whose tables came back empty
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "TRUNCATE calls, api_keys, users, tenants")

    # When it is validated against the source
    error = failure(target(copy), target(source_db["dbname"]))

    # Then every table's recency fails, saying what the source had
    assert str(error).startswith("4 of 8 checks failed: ")
    assert "recency(calls): table calls is empty in the restored database, but the source had rows by the restore point" in str(error)
    assert by_name(error.report)["row_counts"]["values"]["counts"] == {t: 0 for t in TABLES}
    assert by_name(error.report)["row_counts"]["values"]["fewer_than_source"] == list(TABLES)


def test_a_copy_older_than_the_restore_point_fails_with_the_missing_span(local_pg, source_db, make_copy, target):
    # Given a copy that stops 45 minutes before the restore point (a restore to the wrong time)
    copy = make_copy(restore_point=RESTORE_POINT - timedelta(minutes=45))

    # When it is validated for the restore point
    error = failure(target(copy), target(source_db["dbname"]))

    # Then recency(calls) fails with both timestamps and how much data is missing
    truth_then = source_truth(local_pg, source_db, RESTORE_POINT - timedelta(minutes=45))["calls"][1]
    truth_now = source_truth(local_pg, source_db, RESTORE_POINT)["calls"][1]
    check = by_name(error.report)["recency:calls"]
    assert check["passed"] is False
    assert check["values"]["missing_seconds"] == pytest.approx((truth_now - truth_then).total_seconds())
    minutes = round((truth_now - truth_then).total_seconds() / 60)
    assert 35 <= minutes <= 55
    assert (
        f"recency(calls): newest created_at {check['values']['copy_newest']} is older than the source's newest row at or before "
        f"the restore point ({check['values']['source_newest_at_restore_point']}), {minutes} minutes of data missing"
    ) in str(error)


def test_a_gap_within_the_tolerance_passes(source_db, make_copy, target):
    # Given a copy missing a few minutes before the restore point, and a generous tolerance
    copy = make_copy(restore_point=RESTORE_POINT - timedelta(minutes=45))

    # When it is validated with a tolerance larger than the gap
    report = validate(target(copy), target(source_db["dbname"]), tolerance_seconds=3 * 3600)

    # Then it passes, and the gap is still reported
    calls = by_name(report)["recency:calls"]
    assert calls["passed"] and "tolerance" in calls["detail"] and calls["values"]["missing_seconds"] > 0


def test_a_copy_holding_rows_after_the_restore_point_fails(local_pg, source_db, make_copy, target):
    # Given a full copy of the source (nothing cut back), judged as if restored an hour ago
    copy = make_copy()

    # When it is validated for the restore point
    error = failure(target(copy), target(source_db["dbname"]))

    # Then the tables with newer rows fail, counting them
    after = execute(local_pg, copy, "SELECT count(*) FROM calls WHERE created_at > %s", (RESTORE_POINT,))[0][0]
    check = by_name(error.report)["recency:calls"]
    assert after > 0 and check["values"]["copy_rows_after_restore_point"] == after
    assert f"{after} rows were created after it, so this is not a copy as of the restore point" in check["detail"]
    assert "is after the restore point 2025-11-02T11:00:00Z" in check["detail"]


def test_without_a_source_only_the_restore_point_bounds_the_copy(source_db, make_copy, target):
    # Given a point-in-time copy and no source to compare with (the source is gone)
    copy = make_copy(restore_point=RESTORE_POINT)

    # When it is validated alone
    report = validate(target(copy), None)

    # Then it passes on the restore-point bound, saying so
    calls = by_name(report)["recency:calls"]
    assert report["passed"] and "no source to compare with" in calls["detail"]
    assert "source_newest_at_restore_point" not in calls["values"]


def test_rows_deleted_from_the_source_since_do_not_fail_the_copy(local_pg, source_db, make_copy, target):
    # Given a source that lost its last hour of calls before the restore point (the incident),
    # standing in as a copy of the source, and a point-in-time copy that still has them
    damaged_source = make_copy()
    execute(local_pg, damaged_source, "DELETE FROM calls WHERE created_at > %s", (RESTORE_POINT - timedelta(hours=1),))
    copy = make_copy(restore_point=RESTORE_POINT)

    # When the copy is validated against the damaged source
    report = validate(target(copy), target(damaged_source))

    # Then it passes: the copy holding more than the source is what the restore was for
    calls = by_name(report)["recency:calls"]
    assert calls["passed"] and "rows were deleted from the source since" in calls["detail"]
    counts = by_name(report)["row_counts"]
    assert counts["values"]["tables"]["calls"]["against_source"] == "more"
    assert "rows deleted from the source since (or their timestamp changed), so the counts cannot be compared" in counts["detail"]


def test_the_source_count_at_the_restore_point_leaves_out_rows_after_it_and_rows_without_a_time(local_pg, source_db, make_copy, target):
    # Given a table whose recency column may be NULL: the source holds rows before the restore
    # point, rows after it and rows with no time at all; the copy holds the rows before the point
    source = make_copy()
    copy = make_copy(restore_point=RESTORE_POINT)
    for dbname in (source, copy):
        execute(local_pg, dbname, "CREATE TABLE notes (id bigserial PRIMARY KEY, created_at timestamptz)")
        execute(local_pg, dbname, "CREATE INDEX notes_created_at_idx ON notes (created_at)")
        execute(
            local_pg,
            dbname,
            "INSERT INTO notes (created_at) SELECT %s - make_interval(mins => n) FROM generate_series(1, 40) AS n",
            (RESTORE_POINT,),
        )
    execute(
        local_pg,
        source,
        "INSERT INTO notes (created_at) SELECT %s + make_interval(mins => n) FROM generate_series(1, 7) AS n",
        (RESTORE_POINT,),
    )
    execute(local_pg, source, "INSERT INTO notes (created_at) SELECT NULL FROM generate_series(1, 5)")

    # When the copy is validated against that source
    report = validate(target(copy), target(source), tables=["notes"])

    # Then the source's count at the restore point is the 40 rows at or before it, as
    # `created_at <= point` counts them, and the copy's count matches it
    direct = execute(local_pg, source, "SELECT count(*) FROM notes WHERE created_at <= %s", (RESTORE_POINT,))[0][0]
    counts = by_name(report)["row_counts"]["values"]
    assert direct == 40
    assert counts["source_counts_at_restore_point"] == {"notes": 40}
    assert counts["counts"] == {"notes": 40} and counts["tables"]["notes"]["against_source"] == "matches"


def test_hostile_table_names_are_quoted_never_executed(local_pg, source_db, make_copy, target):
    # Given a table literally named like an injection, next to the real tables
    copy = make_copy(restore_point=RESTORE_POINT)
    hostile = "calls; drop table tenants"
    execute(
        local_pg,
        copy,
        sql.SQL("CREATE TABLE {} AS SELECT * FROM calls WHERE created_at <= %s").format(sql.Identifier(hostile)),
        (RESTORE_POINT,),
    )

    # When validation is configured with that name and another hostile name that does not exist
    error = failure(target(copy), None, tables=[hostile, 'x" OR 1=1 --'])

    # Then the existing one is counted, the other reported missing, and tenants still exists
    checks = by_name(error.report)
    assert checks["row_counts"]["values"]["counts"][hostile] > 0
    assert 'table x" OR 1=1 -- does not exist in the restored database' in str(error)
    assert checks[f"recency:{hostile}"]["passed"] is True
    assert execute(local_pg, copy, "SELECT count(*) FROM tenants")[0][0] > 0


def test_a_query_over_the_statement_timeout_is_a_failed_check_not_a_crash(local_pg, source_db, make_copy, target):
    # Given a "table" that takes a second to read (a view over pg_sleep)
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "CREATE VIEW slow AS SELECT now() AS created_at FROM pg_sleep(1)")

    # When validation runs with a 100 ms statement timeout
    error = failure(target(copy), None, tables=["calls", "slow"], timeout_ms=100)

    # Then the slow table's (gating) read fails with the database's message and the timeout, its
    # count is reported as not measured within its box, and the rest still ran
    checks = by_name(error.report)
    assert (
        "recency(slow): reading table slow failed: canceling statement due to statement timeout (the statement timeout is 100 ms)"
        in str(error)
    )
    assert checks["recency:slow"]["status"] == "failed"
    assert checks["recency:calls"]["passed"] is True
    assert checks["row_counts"]["values"]["not_measured"] == ["slow"]
    assert checks["row_counts"]["duration_ms"] < 900


def test_a_missing_recency_column_fails_naming_table_and_column(local_pg, source_db, make_copy, target):
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "ALTER TABLE users RENAME COLUMN created_at TO inserted_at")

    error = failure(target(copy), target(source_db["dbname"]))

    assert "schema: table users has no column created_at" in str(error)
    assert by_name(error.report)["schema"]["values"]["missing_columns"] == {"users": ["created_at"]}
    assert by_name(error.report)["recency:users"]["detail"] == "skipped because table users has no column created_at"
    assert by_name(error.report)["recency:calls"]["passed"] is True


def test_an_unreachable_copy_fails_connect_and_skips_the_rest_without_leaking_the_password(source_db, make_copy, target):
    # Given the right host with the wrong password
    copy = make_copy(restore_point=RESTORE_POINT)
    wrong = target(copy, password="not-the-password")

    # When it is validated
    error = failure(wrong, target(source_db["dbname"]))

    # Then connect fails with the server's reason, every other check is skipped, and no password shows
    assert str(error).startswith("1 of 8 checks failed (7 skipped): connect: could not connect to the restored database")
    assert "password authentication failed" in str(error)
    assert [c["status"] for c in error.report["checks"]] == ["failed"] + ["skipped"] * 7
    assert "not-the-password" not in json.dumps(error.report) + str(error)


def test_an_unreachable_source_fails_the_recency_checks(source_db, make_copy, target):
    copy = make_copy(restore_point=RESTORE_POINT)

    error = failure(target(copy), target(source_db["dbname"], port=1))

    checks = by_name(error.report)
    assert checks["row_counts"]["passed"] is True
    assert all(checks[f"recency:{t}"]["detail"].startswith("could not connect to the source database") for t in TABLES)


def test_every_connection_goes_through_database_connect_at_call_time(monkeypatch, source_db, make_copy, target):
    # Given the rehearsal's routing: an emulated RDS endpoint mapped onto the local cluster
    copy = make_copy(restore_point=RESTORE_POINT)
    original = database.connect
    routes = {"restored.emulated.rds": target(copy), "source.emulated.rds": target(source_db["dbname"])}
    seen = []

    def routed(emulated, **kwargs):
        seen.append((emulated.host, kwargs["statement_timeout_ms"]))
        return original(routes[emulated.host], **kwargs)

    monkeypatch.setattr(database, "connect", routed)

    # When validation is given the emulated endpoints
    report = validate(target(copy, host="restored.emulated.rds"), target(source_db["dbname"], host="source.emulated.rds"))

    # Then it reached both databases through the wrapper, with the timeout: the copy twice, since
    # the index check runs in a session of its own while the first one counts
    assert report["passed"]
    assert seen == [("restored.emulated.rds", TIMEOUT_MS), ("source.emulated.rds", TIMEOUT_MS), ("restored.emulated.rds", TIMEOUT_MS)]
    assert by_name(report)["index_integrity"]["values"]["session"] == "own"


def test_the_index_check_shares_the_first_session_when_the_copy_refuses_a_second(monkeypatch, source_db, make_copy, target):
    # Given a copy that accepts one session from validation and refuses the next (max_connections)
    copy = make_copy(restore_point=RESTORE_POINT)
    original = database.connect
    opened = []

    def one_session_to_the_copy(where, **kwargs):
        if where.dbname == copy:
            opened.append(where.dbname)
            if len(opened) > 1:
                raise psycopg2.OperationalError("FATAL:  sorry, too many clients already")
        return original(where, **kwargs)

    monkeypatch.setattr(database, "connect", one_session_to_the_copy)

    # When it is validated
    report = validate(target(copy), target(source_db["dbname"]))

    # Then the indexes are still verified, in the first session, and the report says why
    assert report["passed"], report["summary"]
    integrity = by_name(report)["index_integrity"]
    assert integrity["status"] == "passed"
    assert integrity["values"]["indexes"] and all(e["status"] == "ok" for e in integrity["values"]["indexes"].values())
    assert integrity["values"]["session"].startswith("shared (a second session could not be opened: ")
    assert "too many clients" in integrity["values"]["session"]


def test_connections_are_closed_after_validation(local_pg, source_db, make_copy, target):
    copy = make_copy(restore_point=RESTORE_POINT)
    with pytest.raises(ValidationFailed):
        validate(target(copy), target(source_db["dbname"]), tables=[*TABLES, "nope"])

    left = execute(local_pg, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (database.APPLICATION_NAME,))
    assert left[0][0] == 0
    local_pg.drop_database(copy)  # would also fail on a lingering session without FORCE; proves nothing is held


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"restore_point": NOW.replace(tzinfo=None)}, "has no UTC offset"),
        ({"tables": ()}, "no tables to validate"),
        ({"timeout_ms": 0}, "statement_timeout_ms must be a positive"),
    ],
)
def test_unusable_arguments_are_invalid_input(target, source_db, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        validate(target(source_db["dbname"]), None, **kwargs)


def test_psycopg2_is_real_here():
    # These tests exist to run the SQL for real; make sure nobody swapped the driver for a fake.
    assert psycopg2.__file__ and "mock" not in type(psycopg2.connect).__module__
