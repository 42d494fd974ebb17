from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.rollback.procedure import refuse_if_hosts_started_since
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Before monitoring is carried back: a host that appeared since may serve from the copy, which
    # then must keep its alarms as well as itself. DeleteRestoredInstance looks again (a host may
    # appear while the alarms are carried back).
    plan = event["plan"]
    refuse_if_hosts_started_since(plan, settings())
    found = {"hosts": list(plan["hosts"]), "appeared_since": []}
    logger.info("no app host appeared since the rollback found its hosts", extra=found)
    return found
