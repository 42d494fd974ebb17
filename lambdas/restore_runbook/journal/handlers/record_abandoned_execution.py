"""Not a state machine step: the target of the EventBridge rule for every execution that ends.

TIMED_OUT and ABORTED executions never reach their own journal step, so this records them; a
SUCCEEDED or FAILED one whose end record could not be written is reconciled from RUNNING."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.journal.reconcile import record_status_change
from restore_runbook.journal.table import JournalSettings


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The stack names every state machine "<name prefix>-<workflow>" and sets the metrics namespace to that prefix.
    prefix = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "")
    by = f"the status-change function {context.function_name} (EventBridge)"
    result = record_status_change(event, JournalSettings.from_env(), f"{prefix}-" if prefix else "", by)
    # Already closed (a second delivery, or Lambda's retry): at most a lost notice was sent, said in result["notice"].
    if result.get("reconciled") is False or result.get("recorded") is False:
        logger.info("execution ended with its journal record closed", extra={"journal": result})
    else:
        logger.warning("journal record written from outside the execution", extra={"journal": result})
    return result
