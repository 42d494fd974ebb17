"""Not a state machine step: the target of the EventBridge rule for TIMED_OUT and ABORTED executions."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.journal.abandoned import record_abandoned
from restore_runbook.journal.table import JournalSettings


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The stack names every state machine "<name prefix>-<workflow>" and sets the metrics namespace to that prefix.
    prefix = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "")
    result = record_abandoned(event, JournalSettings.from_env(), f"{prefix}-" if prefix else "")
    logger.warning("abandoned execution recorded", extra={"journal": result})
    return result
