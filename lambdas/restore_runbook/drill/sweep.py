"""The daily sweep: delete every drill copy that outlived its drill, and report what it removed.

A drill deletes its own copy on every path it controls; what it cannot control is an execution
that was stopped, timed out, or whose teardown failed. Those copies are found by their tags, so
the sweep needs no record of them: a drill copy (management tag and drill marker, never the
source) is removed when the execution that made it no longer runs, or when it is older than
`drill_lifetime_hours` whatever its execution says.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import UnsafeOperation
from restore_runbook.drill.teardown import delete_drill_copy
from restore_runbook.settings import RunbookSettings


def _execution_status(execution_arn: str | None) -> str:
    if not execution_arn:
        return "unknown"
    try:
        return str(aws.client("stepfunctions").describe_execution(executionArn=execution_arn)["status"])
    except Exception as exc:
        if aws.error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return "unknown"
        raise


def _created(instance: dict[str, Any]) -> datetime | None:
    created = instance.get("InstanceCreateTime")
    if not isinstance(created, datetime):
        return None
    return created.astimezone(timezone.utc) if created.tzinfo else created.replace(tzinfo=timezone.utc)


def drill_copies(settings: RunbookSettings) -> list[dict[str, Any]]:
    return [
        instance
        for instance in rds.all_instances()
        if rds.tags_of(instance).get(rds.TAG_PURPOSE) == rds.PURPOSE_DRILL
        and rds.tags_of(instance).get(settings.management_tag_key) == settings.management_tag_value
    ]


def sweep(settings: RunbookSettings) -> dict[str, Any]:
    now = clock.now()
    lifetime = timedelta(hours=settings.drill_lifetime_hours)
    removed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    copies = drill_copies(settings)
    for instance in copies:
        identifier = str(instance["DBInstanceIdentifier"])
        tags = rds.tags_of(instance)
        execution = tags.get(rds.TAG_EXECUTION)
        created = _created(instance)
        age = (now - created) if created else None
        if instance.get("DBInstanceStatus") in ("deleting", "deleted"):
            kept.append({"instance": identifier, "reason": "already being deleted"})
            continue
        too_old = age is not None and age > lifetime
        try:
            status = _execution_status(execution)
        except Exception as exc:  # noqa: BLE001 - one drill that cannot be read must not stop the sweep of the others
            code = aws.error_code(exc) or type(exc).__name__
            if not too_old:
                # It may still run: only its age would let the sweep delete it, and it is not that old yet.
                refused.append(
                    {"instance": identifier, "reason": f"its drill {execution} could not be read ({code}: {exc}); left as it is"}
                )
                continue
            status = f"unreadable ({code})"
        if status == "RUNNING" and not too_old:
            kept.append({"instance": identifier, "reason": f"its drill {execution} is still running"})
            continue
        reason = (
            f"older than {settings.drill_lifetime_hours} h (created {clock.isoformat(created)})"
            if too_old and created
            else f"its drill execution is {status}, so nothing else will delete it"
        )
        try:
            _, detail = delete_drill_copy(instance, source=settings.source_instance, settings=settings, execution_id=None)
        except UnsafeOperation as exc:
            refused.append({"instance": identifier, "reason": str(exc)})
            continue
        except Exception as exc:  # noqa: BLE001 - one copy RDS or IAM refuses must not stop the sweep of the others
            code = aws.error_code(exc) or type(exc).__name__
            refused.append({"instance": identifier, "reason": f"RDS refused the deletion ({code}): {exc}"})
            continue
        removed.append({"instance": identifier, "execution": execution, "reason": reason, "detail": detail})
    return {"checked": len(copies), "removed": removed, "kept": kept, "refused": refused, "swept_at": clock.isoformat(now)}


def notification(report: dict[str, Any]) -> tuple[str, str] | None:
    """Subject and body when the sweep removed something (a drill did not clean up after itself) or
    was refused a drill-tagged copy (one a human must look at); None otherwise."""
    removed, refused = report["removed"], report.get("refused", [])
    if not removed and not refused:
        return None
    lines = []
    if removed:
        lines.append(f"The daily drill sweep deleted {len(removed)} drill copy(ies) that outlived their drill:")
        lines += [f"- {r['instance']}: {r['reason']} ({r['detail']}); execution {r['execution']}" for r in removed]
    if refused:
        lines.append(f"The sweep did NOT delete {len(refused)} drill-tagged instance(s); look at each by hand:")
        lines += [f"- {r['instance']}: {r['reason']}" for r in refused]
    subject = f"[irisx-restore] drill sweep removed {len(removed)} leftover copy(ies)"
    if refused:
        subject += f", {len(refused)} refused"
    return subject[:100], "\n".join(lines)


def notify(report: dict[str, Any], topic_arn: str) -> bool:
    message = notification(report)
    if message is None or not topic_arn:
        return False
    subject, body = message
    aws.client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=body)
    return True


def sweep_and_report(settings: RunbookSettings, topic_arn: str) -> dict[str, Any]:
    report = sweep(settings)
    return {**report, "notified": notify(report, topic_arn)}
