from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common import failure
from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.restore.instance import clean_up_failed_restore
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    error, cause = failure.outcome_of(event.get("failure"))
    # The restore workflow's record of the revert of its cutover (null until one ran; the in-place
    # restore passes none): the hosts were pointed at the copy, if only for moments.
    # $.restore is null until StartRestore answered: then RDS took the copy, so a copy missing now was deleted, not never made.
    cleanup = clean_up_failed_restore(
        event.get("plan"),
        event["context"]["execution_id"],
        settings(),
        reverted_cutover=event.get("rollback"),
        restore_started=event.get("restore") is not None,
        retried=bool(event["context"].get("retry_count")),
    )
    logger.warning("restore failed", extra={"error": error, "cause": cause, "cleanup": cleanup})
    return {"error": error, "cause": f"{cause} [cleanup: {cleanup}]", "cleanup": cleanup}
