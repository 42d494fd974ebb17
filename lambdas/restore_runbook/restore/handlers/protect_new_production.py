from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.restore.protection import after_successful_cutover


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cutover = event["cutover"]
    # The health record is the one the console and the output show: protection joins it.
    protected = {**cutover["health"], **after_successful_cutover(cutover)}
    logger.info("new production instance protected", extra={"deletion_protection": protected["deletion_protection"]})
    return protected
