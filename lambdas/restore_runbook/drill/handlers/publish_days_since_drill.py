"""Not a state machine step: the target of the daily schedule that feeds the overdue-drill alarm."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.drill.overdue import METRIC_NAME, measure
from restore_runbook.journal import table as journal
from restore_runbook.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config = settings()
    age = measure(config.source_instance, config.drill_overdue_days, journal.JournalSettings.from_env())
    # No success on record publishes nothing: the alarm treats missing data as breaching.
    if age["days_since"] is not None:
        metrics.add_dimension(name="Source", value=age["source_instance"])
        metrics.add_metric(name=METRIC_NAME, unit=MetricUnit.Count, value=age["days_since"])
    logger.info("days since the last successful drill", extra={"age": age})
    return age
