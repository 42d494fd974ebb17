from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common import failure
from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.settings import settings
from restore_runbook.snapshot.snapshots import clean_up_failed_snapshot


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error, cause = failure.outcome_of(event.get("failure"))
    cleanup = clean_up_failed_snapshot(
        event.get("snapshot"),
        event["context"]["execution_id"],
        settings(),
        plan=event.get("plan"),
        retried=bool(event["context"].get("retry_count")),
    )
    logger.warning("snapshot failed", extra={"error": error, "cause": cause, "cleanup": cleanup})
    return {"error": error, "cause": f"{cause} [cleanup: {cleanup}]", "cleanup": cleanup}
