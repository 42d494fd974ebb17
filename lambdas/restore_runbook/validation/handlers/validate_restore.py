from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.restore.request import RestorePlan
from restore_runbook.settings import settings
from restore_runbook.validation.step import validate_restore


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = validate_restore(RestorePlan.from_state(event["plan"]), event["restore"], settings())
    metrics.add_metric(name="ValidationsPassed", unit=MetricUnit.Count, value=1)
    logger.info("restored database validated", extra={"report": report})
    return report
