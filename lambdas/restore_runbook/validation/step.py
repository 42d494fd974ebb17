"""The validate and warm-up steps: log in to the restored copy (and the source), check it, warm it."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock, rds
from restore_runbook.restore.request import RestorePlan
from restore_runbook.settings import RunbookSettings
from restore_runbook.validation import checks as validation
from restore_runbook.validation import secrets, warm
from restore_runbook.validation.database import DbTarget


def _target(endpoint: dict[str, Any], settings: RunbookSettings, user: str, password: str) -> DbTarget:
    return DbTarget(
        host=endpoint["address"],
        port=int(endpoint["port"]),
        dbname=settings.database_name,
        user=user,
        password=password,
        sslmode=settings.db_sslmode,
        sslrootcert=settings.db_sslrootcert,
    )


def validate_restore(plan: RestorePlan, progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    user, password = secrets.database_credentials(settings.db_secret_arn)
    copy = _target(progress["endpoint"], settings, user, password)
    source_endpoint = rds.describe_source(plan.source_instance).get("Endpoint")
    source = (
        _target({"address": source_endpoint["Address"], "port": source_endpoint["Port"]}, settings, user, password)
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


def warm_restored_copy(progress: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    user, password = secrets.database_credentials(settings.db_secret_arn)
    return warm.warm_restored_copy(
        _target(progress["endpoint"], settings, user, password),
        settings.warm_up_tables,
        budget_seconds=settings.warm_budget_seconds,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
