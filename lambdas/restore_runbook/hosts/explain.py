"""The RollbackFailed a human finishes by hand from: what failed first, and where every host stands."""

from __future__ import annotations

from typing import Any

from restore_runbook.common import failure as failures
from restore_runbook.common import rds
from restore_runbook.hosts import ssm


def where_hosts_stand(cutover: dict[str, Any] | None, rollback: dict[str, Any] | None, *, revert_unanswered: bool = False) -> str:
    """Every host the cutover or its rollback touched, and the last DB_HOST the records show for it.

    `revert_unanswered`: the revert step failed without a record, possibly after sending its command,
    so a host the cutover set is not said to have had "no rollback sent"."""
    no_rollback = "a rollback may have been sent before its step failed: check it" if revert_unanswered else "no rollback sent"
    cutover, rollback = cutover or {}, rollback or {}
    if not cutover.get("commands") and not rollback.get("commands"):
        return (
            "no record of the hosts (the cutover's start step failed, possibly after sending the command): "
            "check every API host's DB_HOST by hand"
        )
    target = cutover.get("target_db_host") or "the restored endpoint"
    back_results = rollback.get("results") or {}
    reverted_to = rollback.get("reverted_to") or {}
    unchanged = set(rollback.get("unchanged") or [])
    cut_results = cutover.get("results") or {}
    health = ((rollback.get("health") or {}).get("hosts")) or {}
    hosts = sorted(set(cutover.get("hosts") or []) | set(rollback.get("hosts") or []) | set(back_results) | set(cut_results))
    parts = []
    for host in hosts:
        back = back_results.get(host) or {}
        cut = cut_results.get(host) or {}
        if back.get("output", {}).get("db_host"):
            where = (
                f"DB_HOST={back['output']['db_host']} (rollback {back.get('status')}"
                + (f": {back['error']}" if back.get("error") else "")
                + ")"
            )
        elif host in reverted_to:
            before = cut.get("output", {}).get("db_host") or back.get("output", {}).get("previous_db_host") or f"{target} (probably)"
            where = f"DB_HOST={before}; the rollback to {reverted_to[host]} was sent, result {back.get('status') or 'not seen'}"
            if back.get("error"):
                where += f" ({back['error']})"
        elif host in unchanged:
            where = "not changed by the cutover (its command stopped before reading .env)"
        elif cut.get("output", {}).get("db_host"):
            where = f"DB_HOST={cut['output']['db_host']} (set by the cutover; {no_rollback})"
        else:
            where = f"DB_HOST unknown: the cutover to {target} was sent, {no_rollback}"
        if host in health:
            where += f"; health: {health[host].get('detail')}"
        parts.append(f"{host}: {where}")
    return "; ".join(parts)


def explain_rollback_failure(
    failure: dict[str, Any] | None,
    rollback_failure: dict[str, Any] | None,
    plan: dict[str, Any] | None,
    cutover: dict[str, Any] | None = None,
    rollback: dict[str, Any] | None = None,
    recoveries: list[dict[str, Any] | None] | None = None,
    deletion_failed: bool = False,
) -> dict[str, str]:
    """The RollbackFailed error a human finishes by hand from: what failed first, and where hosts stand.

    With the restore workflow's cutover and rollback records, every host is named with the last
    DB_HOST those records show, in the cause and in `cleanup` (the journal's "left behind").
    With the rollback workflow's recovery records, every host is named with where DB_HOST points
    and whether its app answers, and the restored copy as RDS shows it now.
    """

    rollback_error, rollback_cause = failures.explain(rollback_failure)
    if plan is None and not failure:
        # The rollback workflow's input check refused: nothing was touched, so the refusal stands as is
        # (a Step Functions name, such as a timeout, becomes the name a Fail state may raise).
        error, cause = failures.outcome_of(rollback_failure)
        return {"error": error, "cause": cause}
    parts = [
        f"rollback failed ({rollback_error}): {rollback_cause}"
        if rollback_error != "RollbackFailed"
        else f"rollback failed: {rollback_cause}"
    ]
    if failure:
        error, cause = failures.explain(failure)
        parts.append(f"[original error {error}: {cause}]")
    restored = (plan or {}).get("restored_instance")
    if restored and deletion_failed:
        # The hosts are back and healthy; the deletion may still have acted before it failed.
        copy = rds.presence(str(restored))
        if "was NOT deleted" in copy:
            copy += _what_to_do_with_the_copy(str(restored), rollback_error)
        return {
            "error": "RollbackFailed",
            "cause": " ".join(parts),
            "copy": copy,
            "cleanup": f"the API hosts the rollback found ({', '.join((plan or {}).get('hosts') or [])}) are back on the original; {copy}",
        }
    if restored and recoveries is not None:
        app = where_hosts_run(plan, recoveries)
        copy = rds.presence(str(restored))
        parts.append(f"[the app: {app}]")
        parts.append(f"[{copy}]")
        outcome = {"error": "RollbackFailed", "cause": " ".join(parts), "cleanup": f"{copy}; the app: {app}"}
        if not serving_from_one_database(plan, recoveries):
            # The end step keeps the lock on these words (journal/events.py): a person is finishing this by hand.
            outcome["recovery"] = (
                f"the rollback failed with the app not confirmed running on one database on every host ({app}): point every "
                f"API host at one database that answers, start the app with pm2 and check its health, then run the rollback "
                f"of {restored} again or delete it by hand"
            )
        return outcome
    target = (plan or {}).get("target_instance")  # the restore workflow's copy
    if not target:
        return {"error": "RollbackFailed", "cause": " ".join(parts)}
    # No revert record beside the revert's own failure: its step failed, perhaps after it sent the command.
    hosts = where_hosts_stand(cutover, rollback, revert_unanswered=not rollback and rollback_failure is not None)
    parts.append(f"[where the hosts stand: {hosts}]")
    parts.append(f"[{target} was NOT deleted: a host may still use it; finish the rollback by hand, then delete it]")
    left = f"{target} (the restored copy) was NOT deleted: a host may still use it; where the hosts stand: {hosts}"
    # The cutover's own revert failed, or the app was not confirmed healthy after it: the hosts may be split
    # between the copy and the original. The end step keeps the lock on these words (journal/events.py).
    recovery = (
        f"the rollback of the cutover to {target} failed ({hosts}): point every API host at one database that answers, start "
        f"the app with pm2 and check its health, then run the rollback workflow for {target} or delete it by hand"
    )
    return {"error": "RollbackFailed", "cause": " ".join(parts), "cleanup": left, "recovery": recovery}


def _what_to_do_with_the_copy(restored: str, rollback_error: str) -> str:
    if rollback_error == "UnsafeOperation":
        # Refused as unsafe (a host that may use it, say): deleting it by hand is what the refusal prevents.
        return ": the deletion was refused as unsafe (the cause says why); put that right before deleting it"
    if rds.tags_of(rds.find_instance(restored) or {}).get(rds.TAG_ROLE) == rds.ROLE_PRODUCTION:
        # Still marked: the rollback failed before the deletion began (a look for new hosts that failed, say).
        return (
            ": it is still marked production and protected from deletion, as the rollback failed before it began deleting "
            "it; check that no app host uses it (every tagged host's DB_HOST), then run the rollback again"
        )
    return ": delete it by hand, keeping a final snapshot"


def where_hosts_run(plan: dict[str, Any] | None, recoveries: list[dict[str, Any] | None]) -> str:
    """Per host: where DB_HOST points and whether the app answers, from the last recovery that reached it."""
    hosts = list((plan or {}).get("hosts") or [])
    if not hosts:
        return "no API host was planned for (the rollback failed before it touched any): nothing was stopped"
    seen = [(recovery, _results_of(recovery)) for recovery in recoveries if recovery]
    return "; ".join(f"{host}: {_host_state(host, seen)}" for host in hosts)


def serving_from_one_database(plan: dict[str, Any] | None, recoveries: list[dict[str, Any] | None]) -> bool:
    """Whether the last recovery that reached each host confirmed its app healthy, all on one database.

    The hosts are the ones the recoveries acted on (the planned ones still running, and any tagged
    since: hosts/ssm.py serving_now), less those each found gone; with no recovery, the planned ones."""
    reached = [recovery for recovery in recoveries if recovery]
    gone = {host for recovery in reached for host in recovery.get("hosts_gone") or []}
    acted_on = {host for recovery in reached for host in recovery.get("hosts") or []}
    hosts = sorted((acted_on or set((plan or {}).get("hosts") or [])) - gone)
    seen = [(recovery, _results_of(recovery)) for recovery in reached]
    last = [_last_word(host, seen) for host in hosts]
    healthy_on = {word[0].get("target") for word in last if word is not None and _healthy(word[1])}
    return bool(hosts) and all(word is not None and _healthy(word[1]) for word in last) and len(healthy_on) == 1


def _results_of(recovery: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A recovery whose check failed never wrote its results back: look at its commands now."""
    results: dict[str, dict[str, Any]] = recovery.get("results") or {}
    if not results and recovery.get("commands"):
        results = ssm.look(recovery["commands"])
    return results


Seen = list[tuple[dict[str, Any], dict[str, dict[str, Any]]]]


def _last_word(host: str, seen: Seen) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]] | None:
    """(recovery, its health verdict, its command result) of the newest recovery that says anything of `host`."""
    for recovery, results in reversed(seen):
        health = ((recovery.get("health") or {}).get("hosts") or {}).get(host)
        result = results.get(host) or {}
        if _healthy(health) or result:
            return recovery, health, result
    return None


def _healthy(health: dict[str, Any] | None) -> bool:
    return bool(health and health.get("healthy"))


def _host_state(host: str, seen: Seen) -> str:
    word = _last_word(host, seen)
    if word is None:
        return "DB_HOST unknown, no restart confirmed: the app may be STOPPED"
    recovery, health, result = word
    db_host = (result.get("output") or {}).get("db_host") or recovery.get("db_host")
    if _healthy(health):
        return f"DB_HOST={db_host}, app running and healthy ({recovery.get('target')} database)"
    if result.get("status") == ssm.SUCCESS:
        verdict = health.get("detail") if health else "health not confirmed"
        return f"DB_HOST={db_host}, app restarted but not confirmed healthy ({verdict})"
    problem = result.get("error") or result.get("status")
    reported = (result.get("output") or {}).get("db_host")
    where = f"DB_HOST={reported}" if reported else "DB_HOST unknown"
    return f"{where}, restart on the {recovery.get('target')} database failed ({problem}): the app may be STOPPED"
