"""Days since the last successful drill: published daily, so an alarm can say a drill is overdue.

CloudWatch cannot look back a month: an alarm's Period x EvaluationPeriods may not exceed 7 days
(1 day for periods under an hour). So a small scheduled function publishes the age of the last
success every day, and the alarm is on that metric: Maximum > drill_overdue_days over one daily
period, with missing data breaching, so a publisher that stops also alarms.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock
from restore_runbook.journal import table as journal

METRIC_NAME = "DaysSinceLastSuccessfulDrill"
SEVEN_DAYS, ONE_DAY, ONE_HOUR = 7 * 86400, 86400, 3600
# What the stack's overdue alarm is made of (the threshold is the setting drill_overdue_days).
OVERDUE_ALARM = {
    "metric_name": METRIC_NAME,
    "statistic": "Maximum",
    "period_seconds": ONE_DAY,
    "evaluation_periods": 1,
    "comparison": "GreaterThanThreshold",
    "treat_missing_data": "breaching",
}


def alarm_window_allowed(period_seconds: int, evaluation_periods: int) -> bool:
    """CloudWatch's limit on an alarm's evaluation window (botocore PutMetricAlarm.Period)."""
    if period_seconds <= 0 or evaluation_periods <= 0:
        return False
    window = period_seconds * evaluation_periods
    return window <= (ONE_DAY if period_seconds < ONE_HOUR else SEVEN_DAYS)


def is_successful_drill(record: dict[str, Any], source: str) -> bool:
    result = record.get("result") or {}
    return (
        record.get("outcome") == "SUCCEEDED"
        and isinstance(result, dict)
        and not result.get("duplicate_of")
        and result.get("source_instance") == source
        and bool(record.get("finished_at"))
    )


def last_success(records: list[dict[str, Any]], source: str) -> dict[str, Any] | None:
    successes = [r for r in records if is_successful_drill(r, source)]
    return max(successes, key=lambda r: str(r["finished_at"])) if successes else None


def drill_records(settings: journal.JournalSettings, limit: int = 200) -> list[dict[str, Any]]:
    """The newest drill records, newest first (one Query on the workflow's key)."""
    from boto3.dynamodb.conditions import Key

    table = journal.table(settings)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"KeyConditionExpression": Key(journal.PK).eq(journal.execution_pk("drill")), "ScanIndexForward": False}
    while len(items) < limit:
        page = table.query(Limit=limit - len(items), **kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [journal.from_item(i) for i in items]


def days_since_last_success(records: list[dict[str, Any]], source: str, threshold_days: int) -> dict[str, Any]:
    """The measure to publish, or days_since None when no drill of `source` ever succeeded (missing data: the alarm fires)."""
    now = clock.now()
    last = last_success(records, source)
    if last is None:
        return {"source_instance": source, "last_success_at": None, "days_since": None, "overdue": True, "threshold_days": threshold_days}
    days = round((now - clock.parse_utc(str(last["finished_at"]))).total_seconds() / 86400, 2)
    return {
        "source_instance": source,
        "last_success_at": last["finished_at"],
        "last_success_execution": last.get("execution_name"),
        "days_since": days,
        "overdue": days > threshold_days,
        "threshold_days": threshold_days,
    }


def measure(source: str, threshold_days: int, settings: journal.JournalSettings) -> dict[str, Any]:
    return days_since_last_success(drill_records(settings), source, threshold_days)
