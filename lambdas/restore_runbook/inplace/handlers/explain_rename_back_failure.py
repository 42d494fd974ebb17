from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.inplace.explain import rename_back_failed
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = rename_back_failed(
        event.get("failure"),
        event.get("rollback_failure"),
        event["plan"],
        [event.get("restart"), event.get("rename_back")],
        event["context"]["execution_id"],
        settings(),
        event.get("restart_failure"),
        start=event.get("start"),
        stop=event.get("stop_after_start"),
        stop_failure=event.get("stop_after_start_failure"),
    )
    logger.error("renaming back failed", extra=outcome)
    return outcome
