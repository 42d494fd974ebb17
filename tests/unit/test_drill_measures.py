"""RTO, RPO, the copy's time alive and the teardown, each against its objective; the failure record; the overdue metric."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from restore_runbook.common import clock
from restore_runbook.drill import measure, overdue

pytestmark = pytest.mark.unit

SOURCE = "irisx-prod-rds-postgres"


def drill(mode: str = "point-in-time", keep_minutes: int = 0, **objectives: int | None) -> dict:
    return {
        "plan": {"target_instance": "irisx-prod-rds-postgres-drill-20251202-100000", "snapshot_id": None, "restore_point": "x"},
        "source_instance": SOURCE,
        "mode": mode,
        "restore_point_requested": "latest",
        "scheduled_time": "2025-12-02T10:00:00Z",
        "requested_at": "2025-12-02T10:00:00Z",
        "latest_restorable_at_start": "2025-12-02T09:55:30Z",
        "newest_snapshot_at_start": "2025-12-02T03:07:00Z",
        "keep_minutes": keep_minutes,
        "objectives": {
            "rto_seconds": 1800,
            "rpo_seconds": 300 if mode == "point-in-time" else None,
            "alive_beyond_restore_seconds": 300 + 60 * keep_minutes,
            "teardown_seconds": 1800,
            **objectives,
        },
    }


RESTORE = {"started_at": "2025-12-02T10:00:04Z", "available_at": "2025-12-02T10:20:34Z", "restore_point": "2025-12-02T09:55:34Z"}
VALIDATION = {
    "passed": True,
    "summary": "all 6 checks passed",
    "checks": [
        {"name": "connect", "passed": True, "duration_ms": 812.0, "values": {}},
        {"name": "recency:calls", "passed": True, "duration_ms": 3.0, "values": {"data_gap_seconds": 12.5}},
        {"name": "recency:tenants", "passed": True, "duration_ms": 3.0, "values": {"data_gap_seconds": 50000.0}},
    ],
    "timings": {"validated_at": "2025-12-02T10:21:10Z", "validation_seconds": 35.2},
}
TEARDOWN = {
    "state": "done",
    "started_at": "2025-12-02T10:21:11Z",
    "delete_requested_at": "2025-12-02T10:21:11Z",
    "finished_at": "2025-12-02T10:24:11Z",
    "detail": "x deleted",
}


def test_a_drill_inside_every_objective_is_met_with_its_phases():
    result = measure.drill_result(drill(), RESTORE, VALIDATION, TEARDOWN)

    rto, rpo = result["measures"]["rto"], result["measures"]["rpo"]
    assert (rto["seconds"], rto["objective_seconds"], rto["verdict"]) == (21 * 60 + 10, 1800, "met")
    assert rto["phases"] == {
        "restore_start_seconds": 4,
        "restore_seconds": 20 * 60 + 30,
        "first_connect_seconds": 0.812,
        "validation_seconds": 35.2,
    }
    # RPO: what a restore started at the drill's start would lose (requested - latest restorable time then).
    assert (rpo["seconds"], rpo["verdict"]) == (4 * 60 + 30, "met")
    assert rpo["restore_point_behind_newest_seconds"] == -4  # RDS restored to the newest point at its call, 4 s later
    assert rpo["data_gap_seconds"] == 12.5  # the freshest table, not the quietest
    # Alive beyond the restore ends when the deletion is accepted; the deletion itself is the teardown measure.
    assert result["measures"]["alive_beyond_restore"]["seconds"] == 37
    assert result["measures"]["teardown"]["seconds"] == 180
    assert (result["verdict"], result["missed"], result["torn_down"]) == ("met", [], True)
    assert "objectives met" in result["summary"] and "RTO 21m10s (objective 30m00s: met)" in result["summary"]
    assert result["left_behind"].startswith("nothing: x deleted; drill of irisx-prod-rds-postgres")
    json.dumps(result)  # it travels between states and into DynamoDB


def test_a_slow_restore_misses_rto_and_says_so():
    slow = {**VALIDATION, "timings": {**VALIDATION["timings"], "validated_at": "2025-12-02T10:41:00Z"}}
    result = measure.drill_result(drill(), RESTORE, slow, TEARDOWN)
    assert result["measures"]["rto"]["verdict"] == "missed"
    assert (result["verdict"], result["missed"]) == ("missed", ["rto"])
    assert "MISSED rto" in result["summary"]


def test_lagging_backups_miss_rpo():
    lagging = {**drill(), "latest_restorable_at_start": "2025-12-02T09:48:00Z"}
    result = measure.drill_result(lagging, RESTORE, VALIDATION, TEARDOWN)
    assert (result["measures"]["rpo"]["seconds"], result["measures"]["rpo"]["verdict"]) == (12 * 60, "missed")
    assert result["missed"] == ["rpo"]


def test_a_random_point_far_back_in_the_window_does_not_count_against_rpo():
    far_back = {**RESTORE, "restore_point": "2025-11-28T17:00:00Z"}
    result = measure.drill_result({**drill(), "restore_point_requested": "random"}, far_back, VALIDATION, TEARDOWN)
    assert result["measures"]["rpo"]["verdict"] == "met"
    assert result["measures"]["rpo"]["restore_point_behind_newest_seconds"] > 3 * 86400


def test_a_snapshot_drill_has_the_snapshot_rto_and_no_rpo_objective():
    result = measure.drill_result(drill("snapshot", rto_seconds=1200), RESTORE, VALIDATION, TEARDOWN)
    assert result["measures"]["rto"]["verdict"] == "missed"  # 21m10s against 20 minutes
    assert result["measures"]["rpo"]["seconds"] == 6 * 3600 + 53 * 60  # the newest snapshot's age at the start
    assert result["measures"]["rpo"]["verdict"] == "no objective"
    assert result["missed"] == ["rto"]


def test_kept_minutes_are_allowed_for_and_an_overstay_is_missed():
    # Kept 40 minutes after validation: its deletion was accepted 41m26s after the copy became available.
    kept = {
        **TEARDOWN,
        "started_at": "2025-12-02T11:02:00Z",
        "delete_requested_at": "2025-12-02T11:02:00Z",
        "finished_at": "2025-12-02T11:06:00Z",
    }
    assert measure.drill_result(drill(keep_minutes=40), RESTORE, VALIDATION, kept)["measures"]["alive_beyond_restore"]["verdict"] == "met"
    assert measure.drill_result(drill(keep_minutes=0), RESTORE, VALIDATION, kept)["missed"] == ["alive_beyond_restore"]


@pytest.mark.parametrize(
    ("seconds", "objective", "expected"), [(10, 10, "met"), (11, 10, "missed"), (None, 10, "not measured"), (5, None, "no objective")]
)
def test_verdicts(seconds, objective, expected):
    assert measure.verdict(seconds, objective) == expected


def test_metrics_carry_the_measures_and_a_failed_drill_only_its_failure():
    result = measure.drill_result(drill(), RESTORE, VALIDATION, TEARDOWN)
    published = {name: value for name, _unit, value in measure.metrics_of(result)}
    assert published == {
        "DrillSucceeded": 1.0,
        "DrillObjectivesMissed": 0.0,
        "RtoSeconds": 1270.0,
        "RpoSeconds": 270.0,
        "DataGapSeconds": 12.5,
        "AliveBeyondRestoreSeconds": 37.0,
        "TeardownSeconds": 180.0,
    }
    failed = measure.failed_result(drill(), RESTORE, None, TEARDOWN, {"Error": "ValidationFailed", "Cause": "x"}, None)
    assert measure.metrics_of(failed["result"]) == [("DrillFailed", "Count", 1)]


class TestFailure:
    def test_the_original_error_is_kept_and_the_teardown_reported(self):
        cause = json.dumps({"errorMessage": "1 of 6 checks failed: recency(calls): ...", "errorType": "ValidationFailed"})
        outcome = measure.failed_result(drill(), RESTORE, None, TEARDOWN, {"Error": "ValidationFailed", "Cause": cause}, None)
        assert outcome["error"] == "ValidationFailed"
        assert outcome["cause"] == "1 of 6 checks failed: recency(calls): ... [teardown: x deleted]"
        assert outcome["cleanup"] == "x deleted"
        assert (outcome["result"]["verdict"], outcome["result"]["torn_down"]) == ("failed", True)
        assert outcome["result"]["measures"]["rto"]["verdict"] == "not measured"
        assert outcome["result"]["measures"]["rto"]["phases"]["restore_seconds"] == 1230

    def test_a_failed_teardown_after_a_failure_keeps_the_first_error_and_says_the_copy_may_remain(self):
        outcome = measure.failed_result(
            drill(), RESTORE, None, None, {"Error": "RestoreFailed", "Cause": "boom"}, {"Error": "TeardownFailed", "Cause": "stuck"}
        )
        assert outcome["error"] == "RestoreFailed"
        # the copy that may remain is named, so whoever reads the cause can find it
        assert (
            "teardown FAILED (TeardownFailed: stuck); the daily sweep deletes irisx-prod-rds-postgres-drill-20251202-100000"
            in outcome["cause"]
        )
        assert outcome["result"]["torn_down"] is False

    def test_a_failed_teardown_after_a_good_drill_fails_the_drill_by_the_teardowns_error(self):
        outcome = measure.failed_result(drill(), RESTORE, VALIDATION, None, None, {"Error": "TeardownFailed", "Cause": "stuck"})
        assert (outcome["error"], outcome["result"]["verdict"]) == ("TeardownFailed", "failed")

    def test_a_failure_before_anything_was_created_says_so(self):
        outcome = measure.failed_result(None, None, None, None, {"Error": "InvalidInput", "Cause": "restore_point ..."}, None)
        assert outcome["cleanup"] == "nothing was created"
        assert outcome["result"]["verdict"] == "failed"


class TestOverdue:
    NOW = datetime(2025, 12, 10, 10, 0, tzinfo=timezone.utc)

    def record(self, finished_at: str, outcome: str = "SUCCEEDED", **result: object) -> dict:
        return {
            "outcome": outcome,
            "finished_at": finished_at,
            "execution_name": finished_at,
            "result": {"source_instance": SOURCE, **result},
        }

    def test_days_since_the_last_success_ignore_failures_duplicates_and_other_sources(self, monkeypatch):
        monkeypatch.setattr(clock, "now", lambda: self.NOW)
        records = [
            self.record("2025-12-08T10:00:00Z", outcome="FAILED"),
            self.record("2025-12-07T10:00:00Z", duplicate_of="arn"),
            {**self.record("2025-12-06T10:00:00Z"), "result": {"source_instance": "irisx-other"}},
            self.record("2025-11-04T10:00:00Z"),
            self.record("2025-10-07T10:00:00Z"),
        ]
        age = overdue.days_since_last_success(records, SOURCE, threshold_days=35)
        assert (age["last_success_at"], age["days_since"], age["overdue"]) == ("2025-11-04T10:00:00Z", 36.0, True)
        assert overdue.days_since_last_success(records, SOURCE, threshold_days=40)["overdue"] is False

    def test_no_success_on_record_publishes_nothing_so_the_missing_data_alarms(self, monkeypatch):
        monkeypatch.setattr(clock, "now", lambda: self.NOW)
        age = overdue.days_since_last_success([self.record("2025-12-08T10:00:00Z", outcome="FAILED")], SOURCE, 35)
        assert (age["days_since"], age["overdue"]) == (None, True)

    @pytest.mark.parametrize(
        ("period", "evaluations", "allowed"),
        [
            (86400, 1, True),  # the overdue alarm: one daily datapoint
            (86400, 7, True),
            (86400, 8, False),  # CloudWatch refuses more than 7 days
            (86400 * 31, 1, False),  # "no success in 31 days" cannot be one alarm
            (3600, 168, True),
            (300, 288, True),
            (300, 289, False),  # under an hour: at most one day
            (0, 1, False),
        ],
    )
    def test_the_seven_day_alarm_rule(self, period, evaluations, allowed):
        assert overdue.alarm_window_allowed(period, evaluations) is allowed

    def test_the_overdue_alarm_shape_fits_the_rule_and_breaches_on_missing_data(self):
        alarm = overdue.OVERDUE_ALARM
        assert overdue.alarm_window_allowed(alarm["period_seconds"], alarm["evaluation_periods"])
        assert (alarm["statistic"], alarm["comparison"], alarm["treat_missing_data"]) == ("Maximum", "GreaterThanThreshold", "breaching")


class TestMetricsOnTheWire:
    """What CloudWatch receives: Powertools' embedded metric format, one document per invocation, Source as the dimension."""

    @pytest.fixture
    def emitted(self, monkeypatch, capsys):
        from restore_runbook.common.observability import metrics
        from restorectl.lambda_bridge import LambdaContext

        monkeypatch.setattr(metrics.provider, "namespace", "IrisxRestore")
        # The service dimension comes from POWERTOOLS_SERVICE_NAME when the module is first imported (a rehearsal
        # sets it); these tests read the Source dimension alone, whatever ran before them in the process.
        monkeypatch.setattr(metrics.provider, "service", None)
        monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
        context = LambdaContext(function_name="f", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f")

        def invoke(handler, event):
            metrics.clear_metrics()
            capsys.readouterr()
            handler(event, context)
            documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
            (document,) = documents
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            return directive, document

        return invoke

    def test_a_drill_publishes_its_measures_under_its_source(self, emitted):
        from restore_runbook.drill.handlers import measure_drill

        directive, document = emitted(
            measure_drill.handler,
            {"context": {"execution_id": "e"}, "drill": drill(), "restore": RESTORE, "validation": VALIDATION, "teardown": TEARDOWN},
        )

        assert directive["Namespace"] == "IrisxRestore" and directive["Dimensions"] == [["Source"]]
        assert document["Source"] == SOURCE
        # EMF carries each metric's values as a list: one value per metric per drill.
        values = (document["DrillSucceeded"], document["RtoSeconds"], document["RpoSeconds"], document["DataGapSeconds"])
        assert values == ([1.0], [1270.0], [270.0], [12.5])

    def test_a_failed_drill_publishes_drill_failed_under_its_source(self, emitted):
        from restore_runbook.drill.handlers import explain_drill_failure

        _, document = emitted(
            explain_drill_failure.handler,
            {"context": {"execution_id": "e"}, "drill": drill(), "restore": RESTORE, "failure": {"Error": "RestoreFailed", "Cause": "x"}},
        )

        assert (document["Source"], document["DrillFailed"]) == (SOURCE, [1.0])
        assert "DrillSucceeded" not in document


def test_a_drill_that_missed_an_objective_publishes_the_metric_its_alarm_reads():
    # The stack's DrillObjectivesMissedAlarm (stacks/workflows/drill.py) reads this name: a Sum of at least 1 pages
    result = measure.drill_result(drill("snapshot", rto_seconds=1200), RESTORE, VALIDATION, TEARDOWN)  # 21m10s against 20 minutes
    assert result["verdict"] == measure.OBJECTIVES_MISSED
    published = {name: value for name, _unit, value in measure.metrics_of(result)}
    assert published["DrillObjectivesMissed"] == len(result["missed"]) >= 1
