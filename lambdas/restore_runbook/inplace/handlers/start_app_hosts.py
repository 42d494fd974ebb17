from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.inplace.app import start_app
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    progress = start_app(event["plan"], event["why"], settings())
    logger.info("start command sent", extra={"progress": progress})
    return progress
