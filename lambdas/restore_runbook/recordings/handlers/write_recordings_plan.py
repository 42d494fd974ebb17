from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.recordings.plan import finish_plan


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = finish_plan(event["request"], event["progress"], event["context"]["execution_id"])
    metrics.add_metric(name="RecordingsPlanned", unit=MetricUnit.Count, value=plan["totals"]["entries"])
    logger.info("recordings plan written", extra={"plan": plan})
    return plan
