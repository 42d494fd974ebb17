from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common import failure
from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.hosts.cutover import sent_cutover
from restore_runbook.restore.instance import clean_up_failed_restore
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error, cause = failure.outcome_of(event.get("failure"))
    plan, execution_id, config = event.get("plan"), event["context"]["execution_id"], settings()
    # A copy the API hosts were pointed at, even for the moments before they were pointed back, may hold
    # what the app wrote to it: it goes with a final snapshot (an in-place restore's plan has no cutover).
    cutover = sent_cutover(execution_id, config) if (plan or {}).get("cutover") else None
    cleanup = clean_up_failed_restore(plan, execution_id, config, served_hosts=cutover["hosts"] if cutover else ())
    logger.warning("restore failed", extra={"error": error, "cause": cause, "cleanup": cleanup})
    return {"error": error, "cause": f"{cause} [cleanup: {cleanup}]", "cleanup": cleanup}
