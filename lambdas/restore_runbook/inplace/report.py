"""The in-place restore's output and journal record: where everything is, downtime and per-phase timings."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock


def _seconds(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return round((clock.parse_utc(end) - clock.parse_utc(start)).total_seconds())


def report(plan: dict[str, Any], records: dict[str, Any]) -> dict[str, Any]:
    healthy_at = clock.isoformat(clock.now())
    snapshot, restore, validation = records.get("snapshot") or {}, records.get("restore") or {}, records.get("validation") or {}
    stop, away, back = records.get("stop") or {}, records.get("rename_production") or {}, records.get("rename_copy") or {}
    applied, start = records.get("settings") or {}, records.get("start") or {}
    validated_at = (validation.get("timings") or {}).get("validated_at")
    replaced = plan["replaced_instance"]
    timings = {
        "final_snapshot_seconds": _seconds(snapshot.get("started_at"), snapshot.get("available_at")),
        "restore_seconds": _seconds(restore.get("started_at"), restore.get("available_at")),
        # Measured by the checks themselves (wall time): the clock between the two steps says nothing about them.
        "validation_seconds": (validation.get("timings") or {}).get(
            "validation_seconds", _seconds(restore.get("available_at"), validated_at)
        ),
        "stop_app_seconds": _seconds(stop.get("sent_at"), away.get("started_at")),
        "rename_production_seconds": _seconds(away.get("started_at"), away.get("finished_at")),
        "rename_copy_seconds": _seconds(back.get("started_at"), back.get("finished_at")),
        "apply_settings_seconds": _seconds(applied.get("started_at"), applied.get("finished_at")),
        "start_app_and_health_seconds": _seconds(start.get("sent_at"), healthy_at),
        "total_seconds": _seconds(plan.get("checked_at"), healthy_at),
    }
    how_to_delete = (
        f"aws rds modify-db-instance --db-instance-identifier {replaced} --no-deletion-protection --apply-immediately && "
        f"aws rds delete-db-instance --db-instance-identifier {replaced} --final-db-snapshot-identifier {replaced}-final "
        "--no-delete-automated-backups"
    )
    return {
        "production_instance": plan["production_instance"],
        "endpoint": plan["production_endpoint"],
        "mode": plan["mode"],
        "restore_point": restore.get("restore_point") or plan.get("restore_point"),
        "old_production": {
            "instance": replaced,
            "deletion_protection": True,
            "keeps": "its automated backups (the PITR window before the swap), Performance Insights history and any read replicas",
            "how_to_delete_later": how_to_delete,
        },
        "final_snapshot": snapshot.get("snapshot_id") or plan.get("final_snapshot"),
        "settings_applied": applied.get("applied"),
        "monitoring": records.get("monitoring"),
        "downtime_seconds": _seconds(stop.get("sent_at"), healthy_at),
        "app_stopped_at": stop.get("sent_at"),
        "app_healthy_at": healthy_at,
        "timings": timings,
        "validation": {k: validation.get(k) for k in ("passed", "checks", "timings") if k in validation},
    }


def left_behind(result: dict[str, Any]) -> str:
    old = result["old_production"]
    return (
        f"production {result['production_instance']} now runs on the restored data (restore point {result['restore_point']}), "
        f"same endpoint; the old production is kept as {old['instance']} with deletion protection on: delete it later with a "
        f"final snapshot, keeping its automated backups ({old['how_to_delete_later']}); final snapshot {result['final_snapshot']}"
    )
