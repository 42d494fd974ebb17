from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from restore_runbook.common.observability import logger, metrics, tracer
from restore_runbook.common.redrive import refuses_redrive
from restore_runbook.restore import protection
from restore_runbook.rollback.procedure import delete_restored, refuse_if_hosts_started_since
from restore_runbook.settings import settings


@logger.inject_lambda_context(correlation_id_path="context.execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
@refuses_redrive
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    plan, config = event["plan"], settings()
    refuse_if_hosts_started_since(plan, config)
    # A copy production was cut over to carries the production marker and deletion protection (restore
    # workflow). Only now, every host healthy on the original by this execution's own record, does this
    # deliberate (confirmed) rollback drop the marker, then the protection, right before the deletion's own checks.
    unmarked = protection.unmark_production(
        plan["restored_instance"],
        event.get("revert"),
        original_endpoint=plan["original_endpoint"],
        hosts=list(plan["hosts"]),
    )
    unprotected = protection.lift_deletion_protection(
        plan["restored_instance"],
        source=plan["source_instance"],
        tag_key=config.management_tag_key,
        tag_value=config.management_tag_value,
    )
    deleted = delete_restored(plan, config)
    if unmarked:
        deleted = {**deleted, "production_marker": unmarked}
    if unprotected:
        deleted = {**deleted, "deletion_protection": unprotected}
    logger.info("restored instance removed", extra=deleted)
    return deleted
