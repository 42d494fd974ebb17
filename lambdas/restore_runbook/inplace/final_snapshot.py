"""Runbook Scenario 3, step 1: a final snapshot of production before anything else, waited to `available`.

The snapshot workflow's describe step follows it (same progress record); its retention never
touches this one (it deletes only snapshots tagged with the snapshot workflow).
"""

from __future__ import annotations

import re
from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import TargetAlreadyExists
from restore_runbook.contract import TAG_REASON
from restore_runbook.settings import RunbookSettings

FIRST_WAIT_SECONDS = 30
NOT_IN_A_TAG = re.compile(r"[^\w .:/=+@-]")  # RDS tag values: letters, digits, spaces and _ . : / = + - @


def start_final_snapshot(plan: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    snapshot_id, production = plan["final_snapshot"], plan["production_instance"]
    existing = rds.snapshot_named(snapshot_id)
    if existing is not None:
        if rds.tags_of(existing).get(rds.TAG_EXECUTION) != execution_id:
            raise TargetAlreadyExists(f"snapshot {snapshot_id!r} exists and is not this execution's; refusing to use it")
        status = existing.get("Status", "creating")  # a retry after RDS accepted the first call
    else:
        tags = {
            settings.management_tag_key: settings.management_tag_value,
            rds.TAG_WORKFLOW: plan["workflow"],
            rds.TAG_EXECUTION: execution_id,
            rds.TAG_SOURCE: production,
            TAG_REASON: NOT_IN_A_TAG.sub(" ", f"before in-place restore: {plan.get('reason')}")[:256],
        }
        response = aws.client("rds").create_db_snapshot(
            DBInstanceIdentifier=production,
            DBSnapshotIdentifier=snapshot_id,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        status = response["DBSnapshot"].get("Status", "creating")
    return {
        "snapshot_id": snapshot_id,
        "source_instance": production,
        "reason": "final",
        "started_at": clock.isoformat(clock.now()),
        "status": status,
        "percent_progress": 0,
        "state": "pending",
        "attempts": 0,
        "next_wait_seconds": FIRST_WAIT_SECONDS,
    }
