from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.hosts import explain


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = explain.explain_rollback_failure(
        event.get("failure"),
        event.get("rollback_failure"),
        event.get("plan"),
        event.get("cutover"),
        event.get("rollback"),
        event.get("recoveries"),
        deletion_failed=bool(event.get("deletion_failed")),
    )
    logger.error("rollback failed", extra=outcome)
    return outcome
