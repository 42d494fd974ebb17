from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.recordings.report import record_crash


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    recorded = record_crash(event["batch"], event["crash"])
    logger.warning("recordings batch left no result", extra={"crash": recorded})
    return {"batch": recorded["batch"], "crashed": True}
