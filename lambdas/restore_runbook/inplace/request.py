"""The `in-place-restore` workflow's input, checked completely before production is touched.

On top of the restore workflow's checks (the window or the snapshot, the subnet group), an in-place
restore needs: the production name typed as `confirm`, free names for the copy and for the replaced
production, production itself available (it is snapshotted, then renamed), and API hosts to stop
and start again. The plan is the restore plan (the copy is its target) plus what the swap needs.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import clock, rds
from restore_runbook.common.errors import ConfirmationRequired, InvalidInput, SourceNotAvailable, TargetAlreadyExists
from restore_runbook.hosts import ssm
from restore_runbook.restore.request import plan_restore
from restore_runbook.settings import RDS_IDENTIFIER, RunbookSettings

WORKFLOW = "in-place-restore"
FIELDS = {
    "confirm": "the production instance's name, typed exactly (required)",
    "mode": "point-in-time | snapshot",
    "restore_time": "ISO-8601 UTC timestamp or 'latest' (point-in-time only)",
    "snapshot_id": "a snapshot identifier or 'latest' (snapshot only)",
    "reason": "why production is being replaced, for the record",
    "requested_by": "free text for the record",
}
MAX_REASON = 256


def _stamp() -> str:
    return clock.now().strftime("%Y%m%d-%H%M%S")


def _named(base: str, suffix: str) -> str:
    return f"{base[: 63 - len(suffix)].rstrip('-')}{suffix}"


def temporary_name(production: str) -> str:
    return _named(production, f"-inplace-{_stamp()}")


def replaced_name(production: str, settings: RunbookSettings) -> str:
    return _named(production, clock.now().strftime(settings.replaced_suffix_format))


def final_snapshot_name(production: str) -> str:
    return _named(production, f"-pre-restore-{_stamp()}")


def check_confirmation(request: Any, production: str) -> dict[str, Any]:
    """The fields and the confirmation, before any AWS call: a wrong confirmation touches nothing."""
    if not isinstance(request, dict):
        raise InvalidInput(f'the execution input must be a JSON object such as {{"confirm": "{production}", "mode": "snapshot"}}')
    unknown = sorted(set(request) - set(FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown input field(s) {', '.join(unknown)}; the in-place-restore workflow accepts: {', '.join(sorted(FIELDS))}"
        )
    confirm = request.get("confirm")
    if confirm != production:
        given = "no confirm was given" if confirm is None else f"confirm was {confirm!r}"
        raise ConfirmationRequired(
            f"an in-place restore replaces production: type the production instance's name exactly as confirm "
            f'("confirm": "{production}"); {given}. Nothing was done'
        )
    reason = request.get("reason", "not given")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidInput(f"reason must be text of 1 to {MAX_REASON} characters; nothing was done")
    return {"reason": reason.strip()}


def plan_in_place(request: Any, settings: RunbookSettings) -> dict[str, Any]:
    production = settings.source_instance
    checked = check_confirmation(request, production)
    temporary = temporary_name(production)
    restore_request = {name: request[name] for name in ("mode", "restore_time", "snapshot_id", "requested_by") if name in request}
    # The restore workflow's own checks: the window or the snapshot, the subnet group, the copy's name.
    plan = plan_restore({**restore_request, "source_instance": production, "target_instance": temporary}, settings)

    source = rds.describe_source(production)
    if source.get("DBInstanceStatus") != rds.AVAILABLE:
        raise SourceNotAvailable(
            f"production {production!r} is {source.get('DBInstanceStatus')!r}, not 'available': it can be neither snapshotted "
            "nor renamed now; nothing was done"
        )
    endpoint = source.get("Endpoint") or {}
    if not endpoint.get("Address") or not source.get("DbiResourceId"):
        raise SourceNotAvailable(f"production {production!r} reports no endpoint or resource id; nothing was done")
    replaced = replaced_name(production, settings)
    if not RDS_IDENTIFIER.match(replaced):
        raise InvalidInput(f"the replaced production's name {replaced!r} (REPLACED_SUFFIX_FORMAT) is not a valid RDS identifier")
    if rds.find_instance(replaced) is not None:
        raise TargetAlreadyExists(f"an instance named {replaced!r} already exists, so production cannot be renamed to it; nothing was done")
    # Everything a revert needs is checked before the app is stopped: the hosts to start again.
    hosts = ssm.find_hosts(settings)
    if not hosts:
        raise InvalidInput(
            f"no running instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}: there is no API host "
            "to stop before the swap and start after it; nothing was done"
        )
    return {
        **plan.to_state(),
        "workflow": WORKFLOW,
        "production_instance": production,
        "production_resource_id": source["DbiResourceId"],
        "production_endpoint": {"address": endpoint["Address"], "port": endpoint.get("Port")},
        "temporary_instance": temporary,
        "replaced_instance": replaced,
        "final_snapshot": final_snapshot_name(production),
        "reason": checked["reason"],
        "hosts": hosts,
    }
