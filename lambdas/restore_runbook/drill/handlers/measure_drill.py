from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.drill.measure import drill_result, metrics_of


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = drill_result(
        event["drill"],
        event.get("restore"),
        event.get("validation"),
        event.get("teardown"),
        recordings=event.get("recordings"),
        recordings_cleanup=event.get("recordings_cleanup"),
    )
    metrics.add_dimension(name="Source", value=str(result["source_instance"]))
    for name, unit, value in metrics_of(result):
        metrics.add_metric(name=name, unit=unit, value=value)
    logger.info("drill measured", extra={"result": result})
    return result
