"""Validation that holds on a large, cold copy: gating checks that stay cheap, counts as a time-boxed report.

Run against the real local PostgreSQL (tests/conftest.py); every "slow" statement here is a real
one (an exact count of 200,000 rows under a 1 ms box), never a pg_sleep.
"""

from __future__ import annotations

import pytest

from restore_runbook.common.errors import ValidationFailed
from restorectl import sample_data

from .conftest import LARGE_CALLS, RESTORE_POINT, by_name, corrupt_index, execute, validate

pytestmark = pytest.mark.validation

TABLES = sample_data.TABLES


def test_a_count_that_outruns_its_time_box_is_reported_and_the_restore_passes(large_copy, target):
    # Given a copy with 200,000 calls and a count budget of 1 ms (far less than counting them takes)
    copy, source = target(large_copy["copy"]), target(large_copy["source"])

    # When it is validated
    report = validate(copy, source, count_budget_ms=1)

    # Then every gating check passed, and the calls count is reported as not measured in its budget
    checks = by_name(report)
    counts = checks["row_counts"]
    assert report["passed"] is True
    assert all(c["status"] == "passed" for c in report["checks"] if c["name"] != "row_counts")
    assert counts["status"] == "reported" and counts["gating"] is False
    assert "calls" in counts["values"]["not_measured"] and counts["values"]["counts"]["calls"] is None
    assert "calls not measured (0.001 s budget: ran out of time)" in counts["detail"]
    assert "reported: row_counts: " in report["summary"]
    assert checks["recency:calls"]["values"]["copy_newest"] == checks["recency:calls"]["values"]["source_newest_at_restore_point"]


def test_a_count_that_fits_its_box_is_compared_with_the_source_at_the_restore_point(large_copy, target):
    report = validate(target(large_copy["copy"]), target(large_copy["source"]), count_budget_ms=5_000)

    calls = by_name(report)["row_counts"]["values"]["tables"]["calls"]
    assert 0 < calls["rows"] < LARGE_CALLS
    assert calls["rows"] == calls["source_rows_at_restore_point"] and calls["against_source"] == "matches"


def test_a_required_count_that_outruns_its_box_fails_the_restore(large_copy, target):
    # Given counts made required by the settings, and the same 1 ms box
    copy, source = target(large_copy["copy"]), target(large_copy["source"])

    # When it is validated
    with pytest.raises(ValidationFailed) as caught:
        validate(copy, source, count_budget_ms=1, counts_required=True)

    # Then the restore fails on row_counts alone, saying which count ran out of time
    failed = [c["name"] for c in caught.value.report["checks"] if c["status"] == "failed"]
    assert failed == ["row_counts"]
    assert str(caught.value).startswith("1 of 8 checks failed: row_counts: row counts are required: ")
    assert "calls not measured (0.001 s budget: ran out of time)" in str(caught.value)


def test_a_corrupted_index_fails_the_restore_naming_it(local_pg, source_db, make_copy, target):
    """bt_index_check finds an index whose order no longer matches its operator class (conftest's
    `corrupt_index`, PostgreSQL's own method), made so in a throwaway copy."""
    # Given a copy whose calls table has an index that no longer matches its comparison function
    copy = make_copy(restore_point=RESTORE_POINT)
    corrupt_index(local_pg, copy, "calls_fickle_idx", "calls", "duration_seconds")

    # When it is validated
    with pytest.raises(ValidationFailed) as caught:
        validate(target(copy), target(source_db["dbname"]))

    # Then index_integrity fails naming the index and amcheck's finding; every other index was fine
    check = by_name(caught.value.report)["index_integrity"]
    assert check["status"] == "failed"
    assert 'index_integrity: index calls_fickle_idx on calls is corrupted: item order invariant violated for index "calls_fickle_idx"' in (
        str(caught.value)
    )
    statuses = {name: entry["status"] for name, entry in check["values"]["indexes"].items()}
    assert statuses.pop("calls_fickle_idx") == "corrupted" and set(statuses.values()) == {"ok"}

    # And the setting scopes the check: with only tenants' indexes checked, the same copy passes
    report = validate(target(copy), target(source_db["dbname"]), integrity_check_tables=["tenants"])
    assert set(by_name(report)["index_integrity"]["values"]["indexes"]) == {"tenants_pkey", "tenants_created_at_idx"}


def test_named_indexes_are_checked_first_and_alone_when_no_table_is_listed(local_pg, source_db, make_copy, target):
    # Given a copy whose calls table has a corrupted index beside its primary key
    copy = make_copy(restore_point=RESTORE_POINT)
    corrupt_index(local_pg, copy, "calls_fickle_idx", "calls", "duration_seconds")

    # When only calls' primary key is named, and no table's indexes are listed
    report = validate(target(copy), target(source_db["dbname"]), integrity_check_tables=[], integrity_check_indexes=["calls_pkey"])

    # Then that one index is verified, and the restore passes
    check = by_name(report)["index_integrity"]
    assert check["status"] == "passed"
    assert {name: entry["status"] for name, entry in check["values"]["indexes"].items()} == {"calls_pkey": "ok"}
    assert check["detail"].startswith("1 btree indexes named calls_pkey verified with bt_index_check")

    # And named alongside tenants' indexes, the corrupted one is checked first and fails the restore
    with pytest.raises(ValidationFailed, match="index calls_fickle_idx on calls is corrupted") as caught:
        validate(
            target(copy), target(source_db["dbname"]), integrity_check_tables=["tenants"], integrity_check_indexes=["calls_fickle_idx"]
        )
    checked = list(by_name(caught.value.report)["index_integrity"]["values"]["indexes"])
    assert checked == ["calls_fickle_idx", "tenants_pkey", "tenants_created_at_idx"]

    # And an index both named and of a listed table is checked once, first
    report = validate(
        target(copy), target(source_db["dbname"]), integrity_check_tables=["tenants"], integrity_check_indexes=["tenants_created_at_idx"]
    )
    check = by_name(report)["index_integrity"]
    assert list(check["values"]["indexes"]) == ["tenants_created_at_idx", "tenants_pkey"]
    assert check["detail"].startswith("2 btree indexes named tenants_created_at_idx and of tenants verified with bt_index_check")


def test_a_named_index_the_copy_lacks_or_cannot_check_is_reported_and_fails_only_when_required(local_pg, source_db, make_copy, target):
    # Given a copy with a hash index, and settings naming it, an index the copy lacks and a good one
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "CREATE INDEX calls_status_hash_idx ON calls USING hash (status)")
    named = ["calls_staus_idx", "calls_status_hash_idx", "users", "users_pkey"]

    # When it is validated, both are reported by name and why, the good one verified, and the restore passes
    report = validate(target(copy), target(source_db["dbname"]), integrity_check_tables=[], integrity_check_indexes=named)
    check = by_name(report)["index_integrity"]
    assert report["passed"] and check["status"] == "reported"
    assert check["detail"] == (
        "1 of 4 indexes verified; index calls_staus_idx named in integrity_check_indexes could not be checked: the restored "
        "database has no such index (names are case-sensitive); index calls_status_hash_idx named in integrity_check_indexes "
        "could not be checked: it is a hash index, and bt_index_check checks btree indexes only; index users named in "
        "integrity_check_indexes could not be checked: it is a table, not an index: list it in integrity_check_tables"
    )
    assert check["values"]["indexes"]["users_pkey"]["status"] == "ok"

    # And when integrity is required, the same copy fails, saying so
    with pytest.raises(ValidationFailed, match="index integrity is required, but only 1 of 4 indexes verified; index calls_staus_idx"):
        validate(
            target(copy), target(source_db["dbname"]), integrity_check_tables=[], integrity_check_indexes=named, integrity_required=True
        )


def test_without_amcheck_the_integrity_check_is_not_available_unless_required(local_pg, source_db, make_copy, target):
    # Given a copy whose source never had amcheck
    copy = make_copy(restore_point=RESTORE_POINT)
    execute(local_pg, copy, "DROP EXTENSION amcheck")

    # When it is validated, the check says it is not available and the restore passes
    report = validate(target(copy), target(source_db["dbname"]))
    check = by_name(report)["index_integrity"]
    assert report["passed"] and check["status"] == "reported"
    assert check["detail"].startswith("not available: the amcheck extension is not installed in the restored database")

    # And when integrity is required, the same copy fails
    with pytest.raises(ValidationFailed, match="index_integrity: index integrity is required, but the amcheck extension is not installed"):
        validate(target(copy), target(source_db["dbname"]), integrity_required=True)


def test_the_seeded_source_carries_the_extensions_every_copy_inherits(source_db):
    assert set(source_db["extensions"]) == {"amcheck", "pg_prewarm"}
