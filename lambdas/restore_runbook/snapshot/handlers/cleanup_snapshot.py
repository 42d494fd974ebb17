from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common import failure
from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.settings import settings
from restore_runbook.snapshot.snapshots import clean_up_failed_snapshot


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error, cause = failure.outcome_of(event.get("failure"))
    # Without the start step's answer (lost after it acted), the plan still names the snapshot to look for.
    progress = event.get("snapshot") or _planned(event.get("plan"))
    cleanup = clean_up_failed_snapshot(progress, event["context"]["execution_id"], settings())
    logger.warning("snapshot failed", extra={"error": error, "cause": cause, "cleanup": cleanup})
    return {"error": error, "cause": f"{cause} [cleanup: {cleanup}]", "cleanup": cleanup}


def _planned(plan: Any) -> dict[str, Any] | None:
    snapshot_id = plan.get("snapshot_id") if isinstance(plan, dict) else None
    return {"snapshot_id": snapshot_id} if snapshot_id else None
