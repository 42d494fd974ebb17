"""What a restore cannot set, copied from the old production onto the new one after the swap.

`RestoreDBInstance*` has no Performance Insights, Enhanced Monitoring or maintenance window, and the
restore step does not pass log exports, backup retention or the CA certificate; the copy was also
made deletable on purpose. One ModifyDBInstance (ApplyImmediately) puts production's values back,
read from the old production's own description (by resource id: it is renamed by now).
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws
from restore_runbook.common.errors import RenameFailed
from restore_runbook.inplace import rename
from restore_runbook.settings import RunbookSettings


def settings_to_apply(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """ModifyDBInstance arguments that make `new` run as `old` did; only what differs, plus deletion protection."""
    changes: dict[str, Any] = {"DeletionProtection": True}
    if old.get("PerformanceInsightsEnabled"):
        changes["EnablePerformanceInsights"] = True
        for key in ("PerformanceInsightsRetentionPeriod", "PerformanceInsightsKMSKeyId"):
            if old.get(key):
                changes[key] = old[key]
    if int(old.get("MonitoringInterval") or 0) > 0 and old.get("MonitoringRoleArn"):
        changes["MonitoringInterval"] = int(old["MonitoringInterval"])
        changes["MonitoringRoleArn"] = old["MonitoringRoleArn"]
    wanted_logs = set(old.get("EnabledCloudwatchLogsExports") or [])
    have_logs = set(new.get("EnabledCloudwatchLogsExports") or [])
    if wanted_logs != have_logs:
        changes["CloudwatchLogsExportConfiguration"] = {
            "EnableLogTypes": sorted(wanted_logs - have_logs),
            "DisableLogTypes": sorted(have_logs - wanted_logs),
        }
    for key in ("BackupRetentionPeriod", "PreferredBackupWindow", "PreferredMaintenanceWindow", "AutoMinorVersionUpgrade"):
        if old.get(key) is not None and old.get(key) != new.get(key):
            changes[key] = old[key]
    if old.get("IAMDatabaseAuthenticationEnabled") and not new.get("IAMDatabaseAuthenticationEnabled"):
        changes["EnableIAMDatabaseAuthentication"] = True
    if old.get("MaxAllocatedStorage") and old.get("MaxAllocatedStorage") != new.get("MaxAllocatedStorage"):
        changes["MaxAllocatedStorage"] = old["MaxAllocatedStorage"]
    # A CA change may reboot the instance: only when the restore gave it a different one.
    if old.get("CACertificateIdentifier") and old.get("CACertificateIdentifier") != new.get("CACertificateIdentifier"):
        changes["CACertificateIdentifier"] = old["CACertificateIdentifier"]
    return changes


def apply_production_settings(plan: dict[str, Any], execution_id: str, settings: RunbookSettings) -> dict[str, Any]:
    """Modify the new production; returns a wait record (the modify may reboot it) plus what was applied."""
    old = rename.by_resource_id(plan["production_resource_id"])
    new = rename.find_copy(execution_id, settings)
    if old is None or new is None:
        raise RenameFailed(
            f"after the swap, the old production is {rename.describe_instance(old)} and the new one "
            f"{rename.describe_instance(new)}; the settings a restore cannot set were not applied"
        )
    production = plan["production_instance"]
    if new["DBInstanceIdentifier"] != production:
        raise RenameFailed(f"the restored copy is {rename.describe_instance(new)}, not {production}; settings not applied")
    changes = settings_to_apply(old, new)
    aws.client("rds").modify_db_instance(DBInstanceIdentifier=production, ApplyImmediately=True, **changes)
    return rename.new_wait(new, production, "settings", settings, applied=changes, copied_from=old["DBInstanceIdentifier"])
