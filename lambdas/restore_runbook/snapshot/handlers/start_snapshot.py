from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.settings import SnapshotSettings, settings
from restore_runbook.snapshot.snapshots import SnapshotPlan, start_snapshot


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    progress = start_snapshot(
        SnapshotPlan.from_state(event["plan"]), event["context"]["execution_id"], settings(), SnapshotSettings.from_env()
    )
    if not progress["already_started"]:
        metrics.add_metric(name="SnapshotsStarted", unit=MetricUnit.Count, value=1)
    logger.info("snapshot started", extra={"progress": progress})
    return progress
