from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.recordings.apply import CHANGING, apply_batch


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    counts = apply_batch(event["batch"], CHANGING)
    metrics.add_metric(name="RecordingsApplied", unit=MetricUnit.Count, value=counts["applied"])
    metrics.add_metric(name="RecordingsFailed", unit=MetricUnit.Count, value=counts["failed"])
    logger.info("recordings batch applied", extra={"counts": counts})
    return counts
