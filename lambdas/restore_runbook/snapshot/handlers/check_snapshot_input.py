from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.settings import SnapshotSettings, settings
from restore_runbook.snapshot.snapshots import plan_snapshot


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan = plan_snapshot(event.get("request"), settings(), SnapshotSettings.from_env())
    logger.info("snapshot input accepted", extra={"plan": plan.to_state()})
    return plan.to_state()
