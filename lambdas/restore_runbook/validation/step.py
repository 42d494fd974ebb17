"""The validate step: log in to the restored copy and the source, and check the copy.

(The warm-up step is in warm.py, so its function does not import every check.)"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock, rds
from restore_runbook.restore.request import RestorePlan
from restore_runbook.settings import RunbookSettings
from restore_runbook.validation import checks as validation
from restore_runbook.validation import secrets
from restore_runbook.validation.database import target_at


def validate_restore(plan: RestorePlan, progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    user, password = secrets.database_credentials(settings.db_secret_arn)
    copy = target_at(progress["endpoint"], settings, user, password)
    source_endpoint = rds.describe_source(plan.source_instance).get("Endpoint")
    source = (
        target_at({"address": source_endpoint["Address"], "port": source_endpoint["Port"]}, settings, user, password)
        if source_endpoint
        else None
    )
    report = validation.validate_restored_database(
        copy,
        source,
        tables=settings.validation_tables,
        recency_column=settings.recency_column,
        restore_point=clock.parse_utc(progress["restore_point"]),
        statement_timeout_ms=settings.statement_timeout_ms,
        count_budget_ms=settings.count_budget_seconds * 1000,
        counts_required=settings.counts_required,
        integrity_check_tables=settings.integrity_tables,
        integrity_check_indexes=settings.integrity_check_indexes or (),
        integrity_required=settings.integrity_required,
        integrity_budget_ms=settings.integrity_budget_seconds * 1000,
    )
    finished = clock.now()
    report["timings"] = {
        "requested_at": plan.checked_at,
        "restore_started_at": progress["started_at"],
        "available_at": progress.get("available_at"),
        "validated_at": clock.isoformat(finished),
        "restore_seconds": progress.get("restore_seconds"),
        # Measured by the checks themselves: wall time, not the (possibly simulated) clock.
        "validation_seconds": round(report["duration_ms"] / 1000, 3),
        "total_seconds": round((finished - clock.parse_utc(plan.checked_at)).total_seconds()),
    }
    return report
