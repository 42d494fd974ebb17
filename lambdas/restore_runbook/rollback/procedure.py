"""The `rollback` workflow (the runbook's Rollback Procedure): its input, checked before anything is touched.

Stop the app, point DB_HOST back at the original endpoint, restart, check health on the original
database, and only then delete the restored instance (only one this tool created, never the
source). After a cutover that copy served production: it is deleted with a final snapshot and its
automated backups kept, so the writes it took are never lost, and it is never deleted while any
host might still need it.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import fields, rds
from restore_runbook.common.errors import ConfirmationRequired, InvalidInput, UnsafeOperation
from restore_runbook.hosts import commands, cutover, ssm
from restore_runbook.settings import RunbookSettings

FIELDS = {
    "restored_instance": "the restored RDS instance to delete (required; must carry the management tag)",
    "original_endpoint": "the database host to point the app back at (default: the source instance's endpoint)",
    "stop_app_first": "true (default) to pm2 stop the app before anything else",
    "source_instance": "the production instance the copy was restored from (default: the copy's irisx-restore:source tag, else settings)",
    "requested_by": "free text for the record",
    "confirm": "the restored instance's name, typed exactly: required when it serves (or served) production after a cutover",
}
# What leaving each optional field out means, for the cause when it is given as null.
DEFAULTS = {
    "original_endpoint": "the source instance's endpoint",
    "stop_app_first": "true",
    "source_instance": "the copy's irisx-restore:source tag, else the configured source",
    "requested_by": "'not given'",
    "confirm": "no confirmation, enough only for a copy production never ran on",
}


def check_shape(request: Any) -> dict[str, Any]:
    """Everything that can be said about the input without asking AWS, so nothing hostile reaches RDS or SSM."""
    try:
        return _check_shape(request)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}; nothing was touched") from None


def _check_shape(request: Any) -> dict[str, Any]:
    request = fields.request_object(request, FIELDS, workflow="rollback", example='{"restored_instance": "..."}')
    restored = fields.rds_identifier(
        fields.required(request, "restored_instance", "the RDS identifier of the restored instance"),
        "restored_instance",
        "the RDS identifier of the failed restored instance",
    )
    given = {name: fields.optional(request, name, DEFAULTS[name]) for name in DEFAULTS}
    confirm = given["confirm"]
    if confirm is not None and not isinstance(confirm, str):
        raise InvalidInput(f"confirm must be the restored instance's name as text, got {fields.shown(confirm)}")
    source = given["source_instance"]
    endpoint = given["original_endpoint"]
    return {
        "restored_instance": restored,
        "source_instance": None if source is None else fields.rds_identifier(source, "source_instance"),
        "original_endpoint": None if endpoint is None else fields.host_name(endpoint, "original_endpoint"),
        "stop_app_first": True if given["stop_app_first"] is None else fields.flag(given["stop_app_first"], "stop_app_first"),
        "requested_by": "not given"
        if given["requested_by"] is None
        else fields.free_text(given["requested_by"], "requested_by", FIELDS["requested_by"]),
        # Compared as typed (not normalized): a confirmation is the name, exactly.
        "confirm": confirm,
    }


def plan_rollback(request: Any, settings: RunbookSettings) -> dict[str, Any]:
    checked = check_shape(request)
    restored = checked["restored_instance"]
    source = checked["source_instance"] or settings.source_instance.lower()
    if restored == source:
        raise InvalidInput(
            f"restored_instance {restored!r} is the source instance; the rollback never deletes production. Nothing was touched"
        )
    instance = rds.find_instance(restored)
    if instance is not None and not rds.is_managed(instance, settings.management_tag_key, settings.management_tag_value):
        raise InvalidInput(
            f"restored_instance {restored!r} does not carry the tag {settings.management_tag_key}={settings.management_tag_value}, "
            "so this tool did not create it and will not delete it; nothing was touched"
        )
    role = rds.tags_of(instance or {}).get(rds.TAG_ROLE)
    if role == rds.ROLE_REPLACED_PRODUCTION:
        raise InvalidInput(
            f"restored_instance {restored!r} is marked {rds.TAG_ROLE}={role}: it is the production an in-place restore "
            "replaced, kept so nothing is lost, and this tool never deletes it. Nothing was touched"
        )
    check_confirmation(restored, checked["confirm"], serves_production=role == rds.ROLE_PRODUCTION)
    if rds.tags_of(instance or {}).get(rds.TAG_PURPOSE) == rds.PURPOSE_DRILL:
        raise InvalidInput(
            f"restored_instance {restored!r} is a drill's temporary copy: no cutover may point the app at one, so there is "
            "nothing to roll back, and its drill (or the daily drill sweep) deletes it. Nothing was touched"
        )
    # The lock (TakeLock) and the default original endpoint belong to the instance this copy was made from.
    source = _made_from(restored, instance, source, given=checked["source_instance"] is not None)
    try:
        fields.fenced_source(source, settings.production_names)
    except InvalidInput as exc:
        raise InvalidInput(f"the rollback's original: {exc}") from None
    restored_address = (((instance or {}).get("Endpoint") or {}).get("Address") or "").lower()

    original = checked["original_endpoint"]
    if original is None:
        # RDS's own answer, but it goes to a shell on every host: it gets the same check as typed input.
        try:
            original = fields.host_name(cutover.source_endpoint(source), "original_endpoint", f"the endpoint of {source}")
        except InvalidInput as exc:
            raise InvalidInput(f"{exc}; nothing was touched") from None
    if restored_address and original == restored_address:
        raise InvalidInput(f"original_endpoint {original!r} is the endpoint of the instance being deleted; nothing was touched")
    refuse_if_production_moved_on(restored, source, original)

    hosts = ssm.find_hosts(settings)
    if not hosts:
        raise InvalidInput(
            f"no running instance carries the tag {settings.app_host_tag_key}={settings.app_host_tag_value}; "
            "there is no API host to roll back. Nothing was touched"
        )
    return {
        "restored_instance": restored,
        "restored_exists": instance is not None,
        "source_instance": source,
        "original_endpoint": original,
        "stop_app_first": checked["stop_app_first"],
        "requested_by": checked["requested_by"],
        "hosts": hosts,
        # A warm pool's hosts, stopped in EC2: no command reaches them, so they are named, not pointed back.
        "ec2_stopped_hosts": ssm.find_stopped_hosts(settings),
        "final_snapshot": rds.final_snapshot_name(restored),
    }


def refuse_if_production_moved_on(restored: str, source: str, original: str) -> None:
    """Production cut over, since this copy was made, to another copy of the same source (marked production
    by that cutover): the hosts use that one, and pointing them at `original` would move production off
    it onto an older database and strand every write it took. Refused before anything is touched, unless
    `original` is that copy's own endpoint (the hosts then stay where production is)."""
    for instance in rds.all_instances():
        name, tags = instance["DBInstanceIdentifier"], rds.tags_of(instance)
        if name in (restored, source) or tags.get(rds.TAG_ROLE) != rds.ROLE_PRODUCTION or tags.get(rds.TAG_SOURCE) != source:
            continue
        address = str((instance.get("Endpoint") or {}).get("Address") or "").lower()
        if original == address:
            continue
        # Read from the marker, not from the hosts: say what to check before acting on the advice.
        raise UnsafeOperation(
            f"production was cut over to {name} (marked {rds.TAG_ROLE}={rds.ROLE_PRODUCTION}, restored from {source}), not to "
            f"{restored}: the API hosts may use {name}, and rolling back {restored} would point them at {original} and strand "
            f"every write {name} took. Check every API host's DB_HOST first: if they use {name}, roll back {name} if production "
            f"must leave it, or give original_endpoint {address or 'as its endpoint'} to delete {restored} with the hosts kept "
            f"on {name}; if none uses it, its marker is left from a rollback of it whose delete failed: finish that rollback "
            "first. Nothing was touched"
        )


def check_confirmation(restored: str, confirm: str | None, *, serves_production: bool) -> None:
    """Rolling back a copy production runs on stops the app and deletes that copy: the name, typed exactly, says it is meant.

    A confirmation that is given must match whatever the copy is: a wrong name means the wrong copy may be in mind.
    """
    if confirm == restored or (confirm is None and not serves_production):
        return
    given = "no confirm was given" if confirm is None else f"confirm was {fields.shown(confirm)}"
    why = (
        f"{restored} is marked {rds.TAG_ROLE}={rds.ROLE_PRODUCTION}: production was cut over to it and may run on it now, and "
        "the rollback stops the app, points every host back at the original and then deletes this copy (a final snapshot kept)"
        if serves_production
        else "a confirmation, when given, must name the restored instance"
    )
    raise ConfirmationRequired(f'{why}; type its name exactly as confirm ("confirm": "{restored}"); {given}. Nothing was touched')


def _made_from(restored: str, instance: dict[str, Any] | None, source: str, *, given: bool) -> str:
    """The source of the restored copy: its `irisx-restore:source` tag, else the given or configured source."""
    made_from = rds.tags_of(instance or {}).get(rds.TAG_SOURCE)
    if made_from is None:
        return source
    try:
        made_from = fields.rds_identifier(made_from, f"the {rds.TAG_SOURCE} tag of {restored}")
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}; nothing was touched") from None
    if given and made_from != source:
        raise InvalidInput(
            f"restored_instance {restored!r} was restored from {made_from!r} (its {rds.TAG_SOURCE} tag), not from "
            f"source_instance {source!r}; leave source_instance out or correct it. Nothing was touched"
        )
    if made_from == restored:
        raise InvalidInput(f"restored_instance {restored!r} names itself as its source; nothing was touched")
    return made_from


def stop_app(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    hosts = list(plan["hosts"])
    command = ssm.app_control(hosts, "stop", settings, f"irisx-restore rollback: stop before leaving {plan['restored_instance']}")
    return commands.new_progress([command], dict.fromkeys(hosts), settings)


def refuse_if_hosts_started_since(plan: dict[str, Any], settings: RunbookSettings) -> None:
    """Before the copy loses its marker, its protection or itself: the hosts were found when the
    rollback began, and one tagged since (an autoscaling group replacing a host, a warm pool's host
    started since) was neither stopped nor pointed back, so it may serve from this copy. A host
    stopped in EC2 since before the rollback is not refused while it stays stopped (it is named)."""
    restored = plan["restored_instance"]
    started_since = ssm.appeared_since(plan["hosts"], settings, known_stopped=plan.get("ec2_stopped_hosts") or [])
    if started_since:
        raise UnsafeOperation(
            f"{restored} was NOT deleted, and keeps its marker and deletion protection: app host(s) {', '.join(started_since)} "
            f"appeared since the rollback found its hosts ({', '.join(plan['hosts'])}), and this rollback neither stopped nor "
            f"pointed them back, so they may use {restored}; check their DB_HOST, then run the rollback again (it finds every "
            "host anew)"
        )


def delete_restored(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    """Delete the copy once every host is healthy on the original, keeping what it holds.

    After a cutover the copy was production, perhaps for days: a final snapshot keeps every write
    it took, and its automated backups are kept rather than deleted with it.
    """
    restored = plan["restored_instance"]
    # Named when the rollback planned (older plans lack it): every attempt of this step names the same snapshot.
    final_snapshot = plan.get("final_snapshot") or rds.final_snapshot_name(restored)
    deletion = rds.delete_managed_instance(
        restored,
        source=plan["source_instance"],
        tag_key=settings.management_tag_key,
        tag_value=settings.management_tag_value,
        execution_id=None,
        final_snapshot=final_snapshot,
        delete_automated_backups=False,
    )
    outcome = deletion.outcome
    parked = plan.get("ec2_stopped_hosts") or []
    if parked:
        outcome += (
            f"; NOT pointed back, stopped in EC2 since before the rollback: {', '.join(parked)} (a warm pool's, say): check "
            f"their DB_HOST names {plan['original_endpoint']} before they start"
        )
    return {"instance": restored, "outcome": outcome, "final_snapshot": deletion.final_snapshot}


def point_back(plan: dict[str, Any], settings: RunbookSettings) -> dict[str, Any]:
    hosts = list(plan["hosts"])
    command = ssm.set_db_host(hosts, plan["original_endpoint"], settings, "irisx-restore rollback: back to the original database")
    return commands.new_progress([command], dict.fromkeys(hosts, plan["original_endpoint"]), settings)
