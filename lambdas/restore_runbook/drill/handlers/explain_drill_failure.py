from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.drill.measure import failed_result, metrics_of


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = failed_result(
        event.get("drill"),
        event.get("restore"),
        event.get("validation"),
        event.get("teardown"),
        event.get("failure"),
        event.get("teardown_failure"),
        recordings=event.get("recordings"),
        recordings_failure=event.get("recordings_failure"),
        recordings_cleanup=event.get("recordings_cleanup"),
        recordings_cleanup_failure=event.get("recordings_cleanup_failure"),
    )
    metrics.add_dimension(name="Source", value=str(outcome["result"]["source_instance"] or "unknown"))
    for name, unit, value in metrics_of(outcome["result"]):
        metrics.add_metric(name=name, unit=unit, value=value)
    logger.warning("drill failed", extra={"outcome": outcome})
    return outcome
