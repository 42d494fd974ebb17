from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.inplace.rename import rename_production_away
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    progress = rename_production_away(
        event["plan"],
        event["context"]["execution_id"],
        settings(),
        stopped_hosts=event["stopped_hosts"],
        ec2_stopped_hosts=event["ec2_stopped_hosts"],
    )
    logger.warning("production being renamed out of the way", extra={"progress": progress})
    return progress
