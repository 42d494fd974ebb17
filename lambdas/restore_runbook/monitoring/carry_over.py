"""Monitoring follows production: CloudWatch alarms and RDS event subscriptions, carried over and back.

RDS metrics, and so alarms, are keyed by the DBInstanceIdentifier dimension, and event subscriptions
list source identifiers: both name an instance, not a resource. After `restore` with cutover
production runs under a NEW name, so every alarm on the old one is recreated for the new one (same
thresholds, actions, missing-data policy and tags, plus a tag saying where it came from) and every
subscription listing the old one gets the new one too. The old alarms are kept (the old instance
still runs and still reports): the record lists them. Carrying back deletes only the alarms this
tool created (by their tag) and removes only the identifiers it added.

An in-place swap keeps the production name, so alarms and subscriptions follow the name by
themselves; the swap's carry-over says which ones did and changes nothing.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common import aws, clock, rds
from restore_runbook.common.errors import MonitoringCarryOverFailed
from restore_runbook.contract import TAG_CARRIED_FROM

DIMENSION = "DBInstanceIdentifier"
MAX_ALARM_NAME = 255
# put_metric_alarm arguments copied as they are; Dimensions and Metrics are rewritten.
COPIED = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "ThresholdMetricId",
)


def _dimensions_name(dimensions: list[dict[str, str]] | None, instance: str) -> bool:
    return any(d.get("Name") == DIMENSION and d.get("Value") == instance for d in dimensions or [])


def watches(alarm: dict[str, Any], instance: str) -> bool:
    if _dimensions_name(alarm.get("Dimensions"), instance):
        return True
    return any(
        _dimensions_name(((m.get("MetricStat") or {}).get("Metric") or {}).get("Dimensions"), instance) for m in alarm.get("Metrics") or []
    )


def metric_alarms() -> list[dict[str, Any]]:
    # DescribeAlarms has no dimension filter, and DescribeAlarmsForMetric needs the metric name.
    found: list[dict[str, Any]] = []
    pages = aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
    for page in _aws_call("listing the CloudWatch alarms", list, pages):
        found.extend(page.get("MetricAlarms", []))
    return found


def alarms_watching(instance: str) -> list[dict[str, Any]]:
    return [a for a in metric_alarms() if watches(a, instance)]


def _rewrite(dimensions: list[dict[str, str]] | None, old: str, new: str) -> list[dict[str, str]]:
    return [{**d, "Value": new} if d.get("Name") == DIMENSION and d.get("Value") == old else dict(d) for d in dimensions or []]


def copied_alarm_name(name: str, old: str, new: str) -> str:
    copied = name.replace(old, new) if old in name else f"{name} ({new})"
    return copied[:MAX_ALARM_NAME]


def alarm_parameters(alarm: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """put_metric_alarm arguments for the same alarm on `new`."""
    parameters: dict[str, Any] = {"AlarmName": copied_alarm_name(alarm["AlarmName"], old, new)}
    for key in COPIED:
        if alarm.get(key) not in (None, [], ""):
            parameters[key] = alarm[key]
    if alarm.get("Dimensions"):
        parameters["Dimensions"] = _rewrite(alarm["Dimensions"], old, new)
    if alarm.get("Metrics"):
        metrics = []
        for query in alarm["Metrics"]:
            query = dict(query)
            if query.get("MetricStat"):
                stat = dict(query["MetricStat"])
                metric = dict(stat["Metric"])
                metric["Dimensions"] = _rewrite(metric.get("Dimensions"), old, new)
                stat["Metric"] = metric
                query["MetricStat"] = stat
            metrics.append(query)
        parameters["Metrics"] = metrics
    return parameters


def _aws_call(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        code = aws.error_code(exc)
        if not code:
            raise
        raise MonitoringCarryOverFailed(f"{what} failed: {code}: {exc}") from exc


def subscriptions_listing(instance: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    pages = aws.client("rds").get_paginator("describe_event_subscriptions").paginate()
    for page in _aws_call("listing the RDS event subscriptions", list, pages):
        found.extend(s for s in page.get("EventSubscriptionsList", []) if instance in (s.get("SourceIdsList") or []))
    return found


def follow_name(instance: str) -> dict[str, Any]:
    """The swap: what follows production's name by itself (nothing is changed)."""
    return {
        "from_instance": instance,
        "to_instance": instance,
        "checked_at": clock.isoformat(clock.now()),
        "followed_name": {
            "alarms": sorted(a["AlarmName"] for a in alarms_watching(instance)),
            "subscriptions": sorted(s["CustSubscriptionId"] for s in subscriptions_listing(instance)),
        },
        "alarms_created": [],
        "old_alarms_kept": [],
        "subscriptions_added": [],
        "note": f"the production name {instance} did not change: its alarms and event subscriptions now watch the restored instance",
    }


def _tags(cloudwatch: Any, alarm: dict[str, Any]) -> list[dict[str, str]]:
    answer = _aws_call(f"reading the tags of alarm {alarm['AlarmName']}", cloudwatch.list_tags_for_resource, ResourceARN=alarm["AlarmArn"])
    return list(answer.get("Tags", []))


def _failed_part_way(exc: MonitoringCarryOverFailed, done: dict[str, Any]) -> MonitoringCarryOverFailed:
    """The same error, saying what had already changed: a human finishing by hand starts from there."""
    return MonitoringCarryOverFailed(f"{exc.message}; done before the failure: {done}")


def carry_over(old: str, new: str, execution_id: str) -> dict[str, Any]:
    """Alarms and event subscriptions on `old` made to watch `new` as well.

    A copied alarm's name is the original's with `new` for `old`. When another alarm already has that
    name and is not a copy from `old`, it is left alone (PutMetricAlarm would overwrite it) and listed
    in `alarms_not_copied`.
    """
    if old == new:
        return follow_name(old)
    cloudwatch, rds_client = aws.client("cloudwatch"), aws.client("rds")
    created: list[dict[str, str]] = []
    kept: list[str] = []
    not_copied: list[dict[str, str]] = []
    added: list[str] = []
    try:
        every = metric_alarms()
        by_name = {a["AlarmName"]: a for a in every}
        for alarm in (a for a in every if watches(a, old)):
            parameters = alarm_parameters(alarm, old, new)
            taken = by_name.get(parameters["AlarmName"])
            if taken is not None and {"Key": TAG_CARRIED_FROM, "Value": old} not in _tags(cloudwatch, taken):
                not_copied.append({"alarm": alarm["AlarmName"], "reason": f"an alarm named {parameters['AlarmName']} already exists"})
                continue
            own = [t for t in _tags(cloudwatch, alarm) if t["Key"] not in (TAG_CARRIED_FROM, rds.TAG_EXECUTION)]
            parameters["Tags"] = [*own, {"Key": TAG_CARRIED_FROM, "Value": old}, {"Key": rds.TAG_EXECUTION, "Value": execution_id[-256:]}]
            _aws_call(f"creating alarm {parameters['AlarmName']} for {new}", cloudwatch.put_metric_alarm, **parameters)
            created.append({"from": alarm["AlarmName"], "to": parameters["AlarmName"]})
            kept.append(alarm["AlarmName"])
        for subscription in subscriptions_listing(old):
            if new in (subscription.get("SourceIdsList") or []):
                continue
            name = subscription["CustSubscriptionId"]
            _aws_call(
                f"adding {new} to event subscription {name}",
                rds_client.add_source_identifier_to_subscription,
                SubscriptionName=name,
                SourceIdentifier=new,
            )
            added.append(name)
    except MonitoringCarryOverFailed as exc:
        raise _failed_part_way(exc, {"alarms_created": [c["to"] for c in created], "subscriptions_added": added}) from exc
    note = (
        f"monitoring followed production to {new}: {len(created)} alarm(s) on {old} copied for it (the originals kept: "
        f"{old} still runs), {new} added to {len(added)} event subscription(s)"
    )
    if not_copied:
        note += f"; NOT copied, a name was taken: {', '.join(n['alarm'] for n in not_copied)}"
    return {
        "carried_over": True,
        "from_instance": old,
        "to_instance": new,
        "carried_at": clock.isoformat(clock.now()),
        "alarms_created": created,
        "old_alarms_kept": kept,
        "alarms_not_copied": not_copied,
        "subscriptions_added": added,
        "note": note,
    }


def carry_back(restored: str, original: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Undo carry_over(original, restored): delete the alarms it created, remove the identifier it added.

    With the carry-over's record, exactly what it did is undone; without one (the rollback workflow
    is another execution), alarms on `restored` carrying `carried-from=<original>` are this tool's,
    and `restored` is removed from every subscription that lists both (the copy is about to be
    deleted, so its identifier has nothing left to report). Alarms someone else made for `restored`
    are kept and listed: they will watch an instance that no longer exists.
    """
    if restored == original:
        return {
            "carried_back": True,
            "from_instance": restored,
            "to_instance": original,
            "alarms_deleted": [],
            "subscriptions_removed": [],
            "note": "nothing to undo",
        }
    cloudwatch, rds_client = aws.client("cloudwatch"), aws.client("rds")
    ours: list[str] = []
    others: list[str] = []
    deleted: list[str] = []
    removed: list[str] = []
    alarms_listed = False
    subscriptions_listed: list[str] | None = None
    try:
        for alarm in alarms_watching(restored):
            (ours if {"Key": TAG_CARRIED_FROM, "Value": original} in _tags(cloudwatch, alarm) else others).append(alarm["AlarmName"])
        alarms_listed = True
        for start in range(0, len(ours), 100):  # DeleteAlarms takes at most 100 names
            batch = ours[start : start + 100]
            _aws_call(f"deleting alarms {', '.join(batch)}", cloudwatch.delete_alarms, AlarmNames=batch)
            deleted.extend(batch)
        if record is not None:
            names = set(record.get("subscriptions_added") or [])
            targets = [s for s in subscriptions_listing(restored) if s["CustSubscriptionId"] in names]
        else:
            targets = [s for s in subscriptions_listing(restored) if original in (s.get("SourceIdsList") or [])]
        subscriptions_listed = [s["CustSubscriptionId"] for s in targets]
        for subscription in targets:
            name = subscription["CustSubscriptionId"]
            _aws_call(
                f"removing {restored} from event subscription {name}",
                rds_client.remove_source_identifier_from_subscription,
                SubscriptionName=name,
                SourceIdentifier=restored,
            )
            removed.append(name)
    except MonitoringCarryOverFailed as exc:
        listed = subscriptions_listed is not None
        remaining = {
            "alarms_still_there": [a for a in ours if a not in deleted] if alarms_listed else "not known: listing them failed",
            "subscriptions_still_listing_it": [n for n in subscriptions_listed or [] if n not in removed]
            if listed
            else f"not known: every subscription listing both {restored} and {original}",
            "alarms_deleted": deleted,
            "subscriptions_removed": removed,
        }
        raise MonitoringCarryOverFailed(f"{exc.message}; for {restored}: {remaining}") from exc
    note = (
        f"monitoring watches {original} only again: {len(deleted)} alarm(s) made for {restored} deleted, "
        f"{restored} removed from {len(removed)} event subscription(s)"
    )
    if others:
        note += f"; alarms NOT made by this tool still watch {restored}: {', '.join(sorted(others))}"
    return {
        "carried_back": True,
        "from_instance": restored,
        "to_instance": original,
        "carried_back_at": clock.isoformat(clock.now()),
        "alarms_deleted": sorted(deleted),
        "other_alarms_on_copy": sorted(others),
        "subscriptions_removed": removed,
        "note": note,
    }
