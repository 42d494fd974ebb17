from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.settings import settings
from restore_runbook.validation.warm import warm_step


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = warm_step(event["restore"], settings())
    metrics.add_metric(name="WarmUpMegabytes", unit=MetricUnit.Megabytes, value=report["mb_read"])
    logger.info("restored copy warmed", extra={"report": report})
    return report
