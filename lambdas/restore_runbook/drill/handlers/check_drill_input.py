from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.drill.request import plan_drill
from restore_runbook.journal import table as journal
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    drill = plan_drill(event.get("request"), event["context"]["execution_id"], settings(), journal.JournalSettings.from_env())
    logger.info("drill input accepted", extra={"drill": drill})
    return drill
