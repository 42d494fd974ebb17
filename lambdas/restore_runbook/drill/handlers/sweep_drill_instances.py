"""Not a state machine step: the target of the daily schedule that removes drill copies their drill left behind."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.drill.sweep import sweep_and_report
from restore_runbook.journal import table as journal
from restore_runbook.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep_and_report(settings(), journal.JournalSettings.from_env().topic_arn)
    metrics.add_metric(name="DrillCopiesSwept", unit=MetricUnit.Count, value=len(report["removed"]))
    logger.info("drill sweep", extra={"sweep": report})
    return report
