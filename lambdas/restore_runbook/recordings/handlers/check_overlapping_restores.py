from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.journal.table import JournalSettings
from restore_runbook.recordings.locks import refuse_overlapping


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = refuse_overlapping(
        event["lock_resource"], event["context"]["execution_id"], JournalSettings.from_env(), str(event.get("requested_by") or "not given")
    )
    logger.info("prefix held: no overlapping recordings restore runs", extra={"locks": result})
    return result
