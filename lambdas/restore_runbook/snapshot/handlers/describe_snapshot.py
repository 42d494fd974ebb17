from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.settings import SnapshotSettings
from restore_runbook.snapshot.snapshots import describe_snapshot


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    progress = describe_snapshot(event["snapshot"], SnapshotSettings.from_env())
    if progress["state"] == "available":
        metrics.add_metric(name="SnapshotSeconds", unit=MetricUnit.Seconds, value=progress["seconds"])
    logger.info("snapshot progress", extra={"progress": progress})
    return progress
