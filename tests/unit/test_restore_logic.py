"""Pure logic of the restore steps: input shape, poll schedule, status classification, failures."""

from __future__ import annotations

import json

import pytest

from restore_runbook.common import failure, rds
from restore_runbook.common.errors import InvalidInput, RestoreFailed
from restore_runbook.restore.instance import next_wait_seconds
from restore_runbook.restore.request import check_shape, default_target_name
from restore_runbook.settings import RunbookSettings

pytestmark = pytest.mark.unit

ENV = {"SOURCE_INSTANCE": "irisx-prod-rds-postgres"}


def settings(**overrides: str) -> RunbookSettings:
    return RunbookSettings.from_env({**ENV, **overrides})


class TestInputShape:
    def test_defaults_fill_in_latest(self):
        assert check_shape({"mode": "point-in-time"})["restore_time"] == "latest"
        assert check_shape({"mode": "snapshot"})["snapshot_id"] == "latest"

    def test_a_timestamp_with_an_offset_is_normalised_to_utc(self):
        checked = check_shape({"mode": "point-in-time", "restore_time": "2025-11-02T13:00:00+01:00"})
        assert checked["restore_time_parsed"].isoformat() == "2025-11-02T12:00:00+00:00"

    @pytest.mark.parametrize(
        ("request_", "message"),
        [
            (None, "must be a JSON object"),
            ([], "must be a JSON object"),
            ({"mode": "snapshot", "extra": 1, "another": 2}, "unknown input field(s) another, extra"),
            ({"mode": None}, "mode must be"),
            ({"mode": "snapshot", "snapshot_id": ""}, "snapshot_id must be a non-empty string"),
            ({"mode": "snapshot", "requested_by": "x" * 300}, "requested_by is longer than 256"),
            ({"mode": "snapshot", "keep_on_failure": 1}, "keep_on_failure must be true or false"),
            ({"mode": "point-in-time", "restore_time": "31/10/2025"}, "not an ISO-8601 UTC timestamp"),
            ({"mode": "snapshot", "source_instance": "1irisx"}, "not a valid RDS identifier"),
            ({"mode": "snapshot", "target_instance": "irisx-"}, "not a valid RDS identifier"),
        ],
    )
    def test_bad_shapes_are_invalid_input(self, request_, message):
        with pytest.raises(InvalidInput, match=None) as caught:
            check_shape(request_)
        assert message in str(caught.value)

    def test_a_derived_target_name_is_a_valid_identifier_even_for_a_long_source(self):
        from restore_runbook.settings import RDS_IDENTIFIER

        name = default_target_name("a" * 63)
        assert len(name) <= 63 and RDS_IDENTIFIER.match(name)
        assert "-restored-" in name


class TestPollSchedule:
    def test_waits_are_sparse_early_and_dense_near_the_expected_end(self):
        config = settings(EXPECTED_RESTORE_MINUTES="20", RESTORE_POLL_INITIAL_SECONDS="15", RESTORE_POLL_MAX_SECONDS="120")
        assert next_wait_seconds(0, config) == 120
        assert next_wait_seconds(20 * 60 - 60, config) == 30
        assert next_wait_seconds(20 * 60 - 10, config) == 15
        assert next_wait_seconds(20 * 60, config) == 15

    def test_a_restore_past_its_expected_end_is_polled_less_and_less_often_up_to_the_cap(self):
        config = settings(EXPECTED_RESTORE_MINUTES="20")
        waits = [next_wait_seconds(20 * 60 + overrun, config) for overrun in (0, 600, 1800, 7200)]
        assert waits == sorted(waits)
        assert waits[-1] == config.restore_poll_max_seconds

    def test_a_simulated_schedule_notices_a_20_minute_restore_within_the_floor(self):
        config = settings()
        elapsed, polls = 0, 0
        while elapsed < 20 * 60:
            elapsed += next_wait_seconds(elapsed, config)
            polls += 1
        assert elapsed - 20 * 60 <= config.restore_poll_initial_seconds
        assert polls <= 20


class TestStatus:
    def test_available_and_in_progress(self):
        assert rds.classify_status("x", {"DBInstanceStatus": "available"}) == "available"
        for status in ("creating", "backing-up", "modifying", "configuring-enhanced-monitoring", "rebooting"):
            assert rds.classify_status("x", {"DBInstanceStatus": status}) == "pending"

    @pytest.mark.parametrize("status", sorted(rds.TERMINAL_FAILURE_STATUSES))
    def test_terminal_statuses_are_restore_failed(self, status):
        with pytest.raises(RestoreFailed, match=status):
            rds.classify_status("irisx-copy", {"DBInstanceStatus": status})

    def test_a_vanished_instance_is_restore_failed(self):
        with pytest.raises(RestoreFailed, match="no longer exists"):
            rds.classify_status("irisx-copy", None)


class TestSettings:
    def test_defaults(self):
        config = settings()
        assert config.validation_tables == ("tenants", "users", "calls", "api_keys")
        assert config.recency_column == "created_at"

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"SOURCE_INSTANCE": ""}, "SOURCE_INSTANCE is not set"),
            ({"VALIDATION_TABLES": "calls"}, "not a JSON list"),
            ({"VALIDATION_TABLES": '["calls; drop table tenants"]'}, "not a plain SQL identifier"),
            ({"VALIDATION_TABLES": "[]"}, "VALIDATION_TABLES is empty"),
            ({"STATEMENT_TIMEOUT_MS": "soon"}, "not a whole number"),
            ({"RESTORE_POLL_INITIAL_SECONDS": "300", "RESTORE_POLL_MAX_SECONDS": "60"}, "RESTORE_POLL_INITIAL_SECONDS <="),
        ],
    )
    def test_bad_settings_are_named(self, env, message):
        with pytest.raises(InvalidInput) as caught:
            RunbookSettings.from_env({**ENV, **env})
        assert message in str(caught.value)


class TestFailureExplanation:
    def test_a_lambda_errors_cause_is_reduced_to_its_message(self):
        cause = json.dumps({"errorType": "ValidationFailed", "errorMessage": "1 of 6 checks failed", "stackTrace": ["..."]})
        assert failure.explain({"Error": "ValidationFailed", "Cause": cause}) == ("ValidationFailed", "1 of 6 checks failed")

    def test_a_plain_cause_is_kept_and_a_missing_failure_is_a_runtime_error(self):
        assert failure.explain({"Error": "States.Timeout", "Cause": "took too long"}) == ("States.Timeout", "took too long")
        assert failure.explain(None) == ("States.Runtime", "")


class TestRestorePointPrecision:
    def test_fractions_of_a_second_are_kept_and_whole_seconds_stay_short(self):
        from datetime import datetime, timezone

        from restore_runbook.common import clock

        with_fraction = datetime(2025, 11, 1, 3, 7, 0, 600000, tzinfo=timezone.utc)
        assert clock.precise(with_fraction) == "2025-11-01T03:07:00.600000Z"
        assert clock.parse_utc(clock.precise(with_fraction)) == with_fraction
        assert clock.precise(with_fraction.replace(microsecond=0)) == "2025-11-01T03:07:00Z"


class TestRestoreWindow:
    def test_only_the_sources_own_backups_define_the_window(self, monkeypatch):
        from datetime import datetime, timezone

        from restore_runbook.common import aws

        def at(day: int) -> datetime:
            return datetime(2025, 10, day, tzinfo=timezone.utc)

        class Rds:
            def describe_db_instance_automated_backups(self, **_: object) -> dict:
                return {
                    "DBInstanceAutomatedBackups": [
                        # retained backups of an earlier, deleted instance with the same name
                        {"DbiResourceId": "db-OLD", "RestoreWindow": {"EarliestTime": at(1), "LatestTime": at(9)}},
                        {"DbiResourceId": "db-NOW", "RestoreWindow": {"EarliestTime": at(20), "LatestTime": at(27)}},
                    ]
                }

        monkeypatch.setattr(aws, "client", lambda service: Rds())
        source = {
            "DBInstanceIdentifier": "irisx-prod-rds-postgres",
            "DbiResourceId": "db-NOW",
            "BackupRetentionPeriod": 7,
            "LatestRestorableTime": at(27),
        }

        window = rds.restore_window(source)

        assert (window.earliest, window.latest) == (at(20), at(27))


class TestOutcomeOfAFailure:
    def test_a_step_functions_error_name_becomes_the_projects_and_stays_in_the_cause(self):
        # A Fail state may not carry a States.* name (moto refuses it): the outcome keeps it at the head of the cause.
        error, cause = failure.outcome_of({"Error": "States.Timeout", "Cause": ""})
        assert error == "StepTimedOut"
        assert cause.startswith("States.Timeout: a step ran past its TimeoutSeconds and was cut off; it may have acted before that")
        assert failure.outcome_of({"Error": "States.Permissions", "Cause": "not allowed"}) == (
            "StepFailed",
            "States.Permissions: not allowed",
        )
        assert failure.outcome_of(None) == ("StepFailed", "States.Runtime: Step Functions reported no cause")

    def test_the_projects_own_errors_pass_through_unchanged(self):
        cause = json.dumps({"errorType": "ValidationFailed", "errorMessage": "1 of 6 checks failed"})
        assert failure.outcome_of({"Error": "ValidationFailed", "Cause": cause}) == ("ValidationFailed", "1 of 6 checks failed")
