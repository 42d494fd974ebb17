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

DIMENSION = "DBInstanceIdentifier"
TAG_CARRIED_FROM = "irisx-restore:carried-from"
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


def alarms_watching(instance: str) -> list[dict[str, Any]]:
    # DescribeAlarms has no dimension filter, and DescribeAlarmsForMetric needs the metric name.
    found: list[dict[str, Any]] = []
    for page in aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        found.extend(a for a in page.get("MetricAlarms", []) if watches(a, instance))
    return found


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


def _aws_call(what: str, call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except Exception as exc:
        code = aws.error_code(exc)
        if not code:
            raise
        raise MonitoringCarryOverFailed(f"{what} failed: {code}: {exc}") from exc


def subscriptions_listing(instance: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in aws.client("rds").get_paginator("describe_event_subscriptions").paginate():
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


def carry_over(old: str, new: str, execution_id: str) -> dict[str, Any]:
    """Alarms and event subscriptions on `old` made to watch `new` as well."""
    if old == new:
        return follow_name(old)
    cloudwatch, rds_client = aws.client("cloudwatch"), aws.client("rds")
    created: list[dict[str, str]] = []
    kept: list[str] = []
    for alarm in alarms_watching(old):
        tags = _aws_call(
            f"reading the tags of alarm {alarm['AlarmName']}", cloudwatch.list_tags_for_resource, ResourceARN=alarm["AlarmArn"]
        )
        own = [t for t in tags.get("Tags", []) if t["Key"] not in (TAG_CARRIED_FROM, rds.TAG_EXECUTION)]
        parameters = alarm_parameters(alarm, old, new)
        parameters["Tags"] = [*own, {"Key": TAG_CARRIED_FROM, "Value": old}, {"Key": rds.TAG_EXECUTION, "Value": execution_id[-256:]}]
        _aws_call(f"creating alarm {parameters['AlarmName']} for {new}", cloudwatch.put_metric_alarm, **parameters)
        created.append({"from": alarm["AlarmName"], "to": parameters["AlarmName"]})
        kept.append(alarm["AlarmName"])
    added: list[str] = []
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
    return {
        "from_instance": old,
        "to_instance": new,
        "carried_at": clock.isoformat(clock.now()),
        "alarms_created": created,
        "old_alarms_kept": kept,
        "subscriptions_added": added,
        "note": f"alarms on {old} were copied for {new} (the originals are kept: {old} still runs); subscriptions now list both",
    }


def carry_back(restored: str, original: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Undo carry_over(original, restored): delete the alarms it created, remove the identifier it added.

    With the carry-over's record, exactly what it did is undone; without one (the rollback workflow
    is another execution), alarms on `restored` carrying `carried-from=<original>` are this tool's,
    and `restored` is removed from every subscription that lists both.
    """
    if restored == original:
        return {
            "from_instance": restored,
            "to_instance": original,
            "alarms_deleted": [],
            "subscriptions_removed": [],
            "note": "nothing to undo",
        }
    cloudwatch, rds_client = aws.client("cloudwatch"), aws.client("rds")
    ours: list[str] = []
    for alarm in alarms_watching(restored):
        tags = _aws_call(
            f"reading the tags of alarm {alarm['AlarmName']}", cloudwatch.list_tags_for_resource, ResourceARN=alarm["AlarmArn"]
        )
        if {"Key": TAG_CARRIED_FROM, "Value": original} in tags.get("Tags", []):
            ours.append(alarm["AlarmName"])
    for start in range(0, len(ours), 100):  # DeleteAlarms takes at most 100 names
        _aws_call(f"deleting alarms {', '.join(ours[start : start + 100])}", cloudwatch.delete_alarms, AlarmNames=ours[start : start + 100])
    if record is not None:
        names = set(record.get("subscriptions_added") or [])
        targets = [s for s in subscriptions_listing(restored) if s["CustSubscriptionId"] in names]
    else:
        targets = [s for s in subscriptions_listing(restored) if original in (s.get("SourceIdsList") or [])]
    removed: list[str] = []
    for subscription in targets:
        name = subscription["CustSubscriptionId"]
        _aws_call(
            f"removing {restored} from event subscription {name}",
            rds_client.remove_source_identifier_from_subscription,
            SubscriptionName=name,
            SourceIdentifier=restored,
        )
        removed.append(name)
    return {
        "from_instance": restored,
        "to_instance": original,
        "carried_back_at": clock.isoformat(clock.now()),
        "alarms_deleted": sorted(ours),
        "subscriptions_removed": removed,
        "note": f"monitoring watches {original} only again",
    }
