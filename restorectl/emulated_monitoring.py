"""Emulated RDS event subscription source ids, and the monitoring a rehearsal reports in its world.

moto 5.2 stores event subscriptions (create, describe, delete) but answers
`AddSourceIdentifierToSubscription` and `RemoveSourceIdentifierFromSubscription` with
NotImplementedError, so a carry-over after a cutover could not be rehearsed at all. Here both
calls do what the RDS API reference documents: the subscription's `SourceIdsList` gains or loses
the identifier and the subscription is returned; an unknown subscription is `SubscriptionNotFound`;
adding an instance that does not exist is `SourceNotFound`. Adding an identifier already listed
leaves the list as it is (the reference does not say that AWS refuses it; the carry-over never
sends one). CloudWatch alarms and their tags are moto's own.

Installed by the rehearsal harness after `EmulatedRds`; `describe_world` adds `alarms` and
`event_subscriptions` to the world the rehearsal reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock


@contextlib.contextmanager
def installed() -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.rds import models as rds_models
    from moto.rds import responses as rds_responses
    from moto.rds.exceptions import RDSClientError, SubscriptionNotFoundError

    def subscription(backend: Any, name: str) -> Any:
        if name not in backend.event_subscriptions:
            raise SubscriptionNotFoundError(name)
        return backend.event_subscriptions[name]

    def add_source(backend: Any, subscription_name: str, source_identifier: str) -> Any:
        found = subscription(backend, subscription_name)
        if found.source_type in (None, "db-instance") and source_identifier not in backend.databases:
            raise RDSClientError("SourceNotFound", f"DBInstance {source_identifier} not found.")
        if source_identifier not in found.source_ids:
            found.source_ids = [*found.source_ids, source_identifier]
        return found

    def remove_source(backend: Any, subscription_name: str, source_identifier: str) -> Any:
        found = subscription(backend, subscription_name)
        found.source_ids = [s for s in found.source_ids if s != source_identifier]
        return found

    def answer(change: Any) -> Any:
        def respond(response: Any) -> Any:
            changed = change(response.backend, response.params["SubscriptionName"], response.params["SourceIdentifier"])
            return ActionResult({"EventSubscription": changed})

        return respond

    with contextlib.ExitStack() as stack:
        patch = stack.enter_context
        patch(mock.patch.object(rds_models.RDSBackend, "add_source_identifier_to_subscription", add_source, create=True))
        patch(mock.patch.object(rds_models.RDSBackend, "remove_source_identifier_from_subscription", remove_source, create=True))
        respond_add = answer(lambda backend, *args: backend.add_source_identifier_to_subscription(*args))
        respond_remove = answer(lambda backend, *args: backend.remove_source_identifier_from_subscription(*args))
        patch(mock.patch.object(rds_responses.RDSResponse, "add_source_identifier_to_subscription", respond_add, create=True))
        patch(mock.patch.object(rds_responses.RDSResponse, "remove_source_identifier_from_subscription", respond_remove, create=True))
        yield


def describe_world() -> dict[str, Any]:
    """Every metric alarm (the instance it watches, its threshold, actions and tags) and every event subscription."""
    import boto3

    cloudwatch, rds = boto3.client("cloudwatch"), boto3.client("rds")
    alarms = []
    for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
        dimensions: list[Any] = list(alarm.get("Dimensions") or [])
        for query in alarm.get("Metrics") or []:
            stat: dict[str, Any] = dict(query.get("MetricStat") or {})
            dimensions += (stat.get("Metric") or {}).get("Dimensions") or []
        alarms.append(
            {
                "name": alarm["AlarmName"],
                "instances": sorted({d["Value"] for d in dimensions if d.get("Name") == "DBInstanceIdentifier"}),
                "metric": alarm.get("MetricName"),
                "threshold": alarm.get("Threshold"),
                "comparison": alarm.get("ComparisonOperator"),
                "evaluation_periods": alarm.get("EvaluationPeriods"),
                "alarm_actions": alarm.get("AlarmActions", []),
                "ok_actions": alarm.get("OKActions", []),
                "tags": {t["Key"]: t["Value"] for t in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]},
            }
        )
    subscriptions = [
        {"name": s["CustSubscriptionId"], "source_ids": list(s.get("SourceIdsList") or [])}
        for s in rds.describe_event_subscriptions()["EventSubscriptionsList"]
    ]
    return {"alarms": sorted(alarms, key=lambda a: a["name"]), "event_subscriptions": subscriptions}
