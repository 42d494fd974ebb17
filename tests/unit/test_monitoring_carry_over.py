"""Monitoring follows production: alarms (moto CloudWatch) and event subscriptions (botocore Stubber).

moto implements CloudWatch alarms with their tags, so alarms are tested as the state they leave.
moto raises NotImplementedError for AddSourceIdentifierToSubscription and
RemoveSourceIdentifierFromSubscription, so those calls are checked against a Stubber of the real
botocore RDS model: the exact request sent, for the response AWS documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from restore_runbook.common import aws
from restore_runbook.common.errors import MonitoringCarryOverFailed
from restore_runbook.monitoring import carry_over as monitoring
from restorectl.lambda_bridge import LambdaContext

pytestmark = pytest.mark.unit

SOURCE, RESTORED = "irisx-prod-rds-postgres", "irisx-prod-rds-postgres-restored-20251102-120000"
TOPIC = "arn:aws:sns:us-east-1:123456789012:irisx-oncall"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:irisx-restore-restore:cutover-1"


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    client = aws.client  # the cached factory itself: the subscriptions fixture replaces the name for a while
    with mock_aws():
        client.cache_clear()
        yield client("cloudwatch")
    client.cache_clear()


@pytest.fixture
def subscriptions(monkeypatch: pytest.MonkeyPatch, cloudwatch: Any) -> Iterator[Stubber]:
    """The RDS client the module uses, stubbed; CloudWatch stays moto's."""
    rds = boto3.client("rds", region_name="us-east-1")
    stubber = Stubber(rds)
    real = aws.client
    monkeypatch.setattr(aws, "client", lambda service: rds if service == "rds" else real(service))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def cpu_alarm(cloudwatch: Any, instance: str, name: str | None = None, tags: list[dict[str, str]] | None = None) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name or f"{instance}-cpu-high",
        AlarmDescription="CPU above 80% for 10 minutes",
        Namespace="AWS/RDS",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance}],
        Statistic="Average",
        Period=300,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=80.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="breaching",
        AlarmActions=[TOPIC],
        OKActions=[TOPIC],
        Tags=tags or [{"Key": "team", "Value": "platform"}],
    )


def storage_math_alarm(cloudwatch: Any, instance: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName="irisx database free storage low",
        EvaluationPeriods=1,
        Threshold=10.0,
        ComparisonOperator="LessThanThreshold",
        AlarmActions=[TOPIC],
        Metrics=[
            {
                "Id": "free",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": "FreeStorageSpace",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
                    },
                    "Period": 300,
                    "Stat": "Minimum",
                },
                "ReturnData": False,
            },
            {"Id": "gib", "Expression": "free / 1073741824", "ReturnData": True},
        ],
    )


def alarms(cloudwatch: Any) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}


def tags_of(cloudwatch: Any, alarm: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]}


def no_subscriptions(stubber: Stubber, times: int = 1) -> None:
    for _ in range(times):
        stubber.add_response("describe_event_subscriptions", {"EventSubscriptionsList": []}, {})


def subscription(name: str, *ids: str) -> dict[str, Any]:
    return {"CustSubscriptionId": name, "SourceType": "db-instance", "SourceIdsList": list(ids), "Enabled": True}


# ---------------------------------------------------------------------------------------- alarms, after a cutover


def test_alarms_on_the_old_production_are_recreated_for_the_new_one_with_the_same_thresholds_actions_and_tags(cloudwatch, subscriptions):
    # Given production's alarms (one on a metric, one metric-math) and an alarm on another instance
    cpu_alarm(cloudwatch, SOURCE)
    storage_math_alarm(cloudwatch, SOURCE)
    cpu_alarm(cloudwatch, "irisx-reporting")
    no_subscriptions(subscriptions)

    # When a cutover carries monitoring over to the restored instance
    record = monitoring.carry_over(SOURCE, RESTORED, EXECUTION)

    # Then each production alarm has a twin watching the new instance, identical but for the instance
    after = alarms(cloudwatch)
    assert sorted(after) == sorted(
        [
            f"{SOURCE}-cpu-high",
            f"{RESTORED}-cpu-high",
            "irisx database free storage low",
            f"irisx database free storage low ({RESTORED})",
            "irisx-reporting-cpu-high",
        ]
    )
    old, new = after[f"{SOURCE}-cpu-high"], after[f"{RESTORED}-cpu-high"]
    assert new["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": RESTORED}]
    for key in ("Threshold", "ComparisonOperator", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Statistic", "TreatMissingData"):
        assert new[key] == old[key], key
    assert new["AlarmActions"] == old["AlarmActions"] == [TOPIC] and new["OKActions"] == [TOPIC]
    assert tags_of(cloudwatch, new) == {"team": "platform", "irisx-restore:carried-from": SOURCE, "irisx-restore:execution": EXECUTION}
    math = after[f"irisx database free storage low ({RESTORED})"]
    dimensions = [m["MetricStat"]["Metric"]["Dimensions"] for m in math["Metrics"] if "MetricStat" in m]
    assert dimensions == [[{"Name": "DBInstanceIdentifier", "Value": RESTORED}]]
    assert [m.get("Expression") for m in math["Metrics"]] == [None, "free / 1073741824"]

    # And the old alarms are kept unchanged and listed; the other instance's alarm is untouched
    assert old["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": SOURCE}]
    assert sorted(record["old_alarms_kept"]) == sorted([f"{SOURCE}-cpu-high", "irisx database free storage low"])
    assert {"from": f"{SOURCE}-cpu-high", "to": f"{RESTORED}-cpu-high"} in record["alarms_created"]


def test_carrying_over_twice_leaves_one_twin_per_alarm(cloudwatch, subscriptions):
    cpu_alarm(cloudwatch, SOURCE)
    no_subscriptions(subscriptions, times=2)

    monitoring.carry_over(SOURCE, RESTORED, EXECUTION)
    monitoring.carry_over(SOURCE, RESTORED, EXECUTION)

    assert sorted(alarms(cloudwatch)) == sorted([f"{SOURCE}-cpu-high", f"{RESTORED}-cpu-high"])


def test_carrying_back_deletes_only_the_twins_this_tool_made(cloudwatch, subscriptions):
    # Given a carried-over alarm, and an alarm someone made by hand for the restored instance
    cpu_alarm(cloudwatch, SOURCE)
    no_subscriptions(subscriptions, times=2)
    monitoring.carry_over(SOURCE, RESTORED, EXECUTION)
    cpu_alarm(cloudwatch, RESTORED, name="hand-made restored alarm")

    # When the rollback carries monitoring back (without the carry-over's record: another execution)
    record = monitoring.carry_back(RESTORED, SOURCE)

    # Then only the tool's twin is gone
    assert sorted(alarms(cloudwatch)) == sorted([f"{SOURCE}-cpu-high", "hand-made restored alarm"])
    assert record["alarms_deleted"] == [f"{RESTORED}-cpu-high"]
    # and the hand-made one is named: it will watch an instance the rollback deletes
    assert record["other_alarms_on_copy"] == ["hand-made restored alarm"]


def test_an_alarm_that_already_has_the_copys_name_is_never_overwritten_and_is_listed(cloudwatch, subscriptions):
    # Given production's alarm, and someone else's alarm already holding the name its copy would get
    cpu_alarm(cloudwatch, SOURCE)
    cpu_alarm(cloudwatch, "irisx-other", name=f"{RESTORED}-cpu-high", tags=[{"Key": "team", "Value": "data"}])
    before = alarms(cloudwatch)[f"{RESTORED}-cpu-high"]
    no_subscriptions(subscriptions)

    record = monitoring.carry_over(SOURCE, RESTORED, EXECUTION)

    # Then that alarm is as it was (PutMetricAlarm would have replaced it), and the record says the copy was not made
    assert alarms(cloudwatch)[f"{RESTORED}-cpu-high"] == before
    assert record["alarms_created"] == []
    assert record["alarms_not_copied"] == [{"alarm": f"{SOURCE}-cpu-high", "reason": f"an alarm named {RESTORED}-cpu-high already exists"}]
    assert f"NOT copied, a name was taken: {SOURCE}-cpu-high" in record["note"]


# ---------------------------------------------------------------------------------------- event subscriptions


def test_subscriptions_listing_the_old_production_get_the_new_one(cloudwatch, subscriptions):
    subscriptions.add_response(
        "describe_event_subscriptions",
        {
            "EventSubscriptionsList": [
                subscription("irisx-prod-events", SOURCE),
                subscription("already-both", SOURCE, RESTORED),
                subscription("other", "irisx-reporting"),
            ]
        },
        {},
    )
    subscriptions.add_response(
        "add_source_identifier_to_subscription",
        {"EventSubscription": subscription("irisx-prod-events", SOURCE, RESTORED)},
        {"SubscriptionName": "irisx-prod-events", "SourceIdentifier": RESTORED},
    )

    record = monitoring.carry_over(SOURCE, RESTORED, EXECUTION)

    assert record["subscriptions_added"] == ["irisx-prod-events"]


def test_carrying_back_with_the_record_removes_only_what_it_added(cloudwatch, subscriptions):
    subscriptions.add_response(
        "describe_event_subscriptions",
        {"EventSubscriptionsList": [subscription("irisx-prod-events", SOURCE, RESTORED), subscription("restored-only", RESTORED, SOURCE)]},
        {},
    )
    subscriptions.add_response(
        "remove_source_identifier_from_subscription",
        {"EventSubscription": subscription("irisx-prod-events", SOURCE)},
        {"SubscriptionName": "irisx-prod-events", "SourceIdentifier": RESTORED},
    )

    record = monitoring.carry_back(RESTORED, SOURCE, {"subscriptions_added": ["irisx-prod-events"]})

    assert record["subscriptions_removed"] == ["irisx-prod-events"]


def test_a_refused_subscription_change_is_a_named_error_with_the_subscription_and_the_code(cloudwatch, subscriptions):
    subscriptions.add_response("describe_event_subscriptions", {"EventSubscriptionsList": [subscription("irisx-prod-events", SOURCE)]}, {})
    subscriptions.add_client_error("add_source_identifier_to_subscription", service_error_code="SubscriptionNotFound", http_status_code=404)

    with pytest.raises(MonitoringCarryOverFailed, match=r"adding .* to event subscription irisx-prod-events failed: SubscriptionNotFound"):
        monitoring.carry_over(SOURCE, RESTORED, EXECUTION)


def test_a_carry_over_failing_part_way_says_which_alarms_it_had_already_created(cloudwatch, subscriptions):
    cpu_alarm(cloudwatch, SOURCE)
    subscriptions.add_response("describe_event_subscriptions", {"EventSubscriptionsList": [subscription("irisx-prod-events", SOURCE)]}, {})
    subscriptions.add_client_error("add_source_identifier_to_subscription", service_error_code="SubscriptionNotFound", http_status_code=404)

    with pytest.raises(MonitoringCarryOverFailed) as failed:
        monitoring.carry_over(SOURCE, RESTORED, EXECUTION)

    assert f"done before the failure: {{'alarms_created': ['{RESTORED}-cpu-high'], 'subscriptions_added': []}}" in str(failed.value)
    assert f"{RESTORED}-cpu-high" in alarms(cloudwatch)


def test_a_carry_back_failing_part_way_names_what_still_watches_the_copy(cloudwatch, subscriptions):
    # Given a carried-over alarm, and a subscription RDS refuses to change
    cpu_alarm(cloudwatch, SOURCE)
    no_subscriptions(subscriptions)
    monitoring.carry_over(SOURCE, RESTORED, EXECUTION)
    subscriptions.add_response(
        "describe_event_subscriptions", {"EventSubscriptionsList": [subscription("irisx-prod-events", SOURCE, RESTORED)]}, {}
    )
    subscriptions.add_client_error("remove_source_identifier_from_subscription", service_error_code="AccessDenied", http_status_code=403)

    with pytest.raises(MonitoringCarryOverFailed) as failed:
        monitoring.carry_back(RESTORED, SOURCE)

    # Then the error says the alarm is gone and which subscription still lists the copy
    message = str(failed.value)
    assert f"removing {RESTORED} from event subscription irisx-prod-events failed: AccessDenied" in message
    assert "'alarms_still_there': []" in message and "'subscriptions_still_listing_it': ['irisx-prod-events']" in message
    assert f"'alarms_deleted': ['{RESTORED}-cpu-high']" in message


def test_a_carry_back_that_cannot_list_the_alarms_says_it_does_not_know_which_remain(cloudwatch, subscriptions, monkeypatch):
    from botocore.exceptions import ClientError

    def refused(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeAlarms")

    monkeypatch.setattr(monitoring, "metric_alarms", lambda: monitoring._aws_call("listing the CloudWatch alarms", refused))

    with pytest.raises(
        MonitoringCarryOverFailed, match=r"listing the CloudWatch alarms failed: AccessDenied.*not known: listing them failed"
    ):
        monitoring.carry_back(RESTORED, SOURCE)


# ---------------------------------------------------------------------------------------- the swap, and the handlers


def test_a_swap_changes_nothing_and_says_which_alarms_and_subscriptions_follow_the_name(cloudwatch, subscriptions):
    cpu_alarm(cloudwatch, SOURCE)
    subscriptions.add_response("describe_event_subscriptions", {"EventSubscriptionsList": [subscription("irisx-prod-events", SOURCE)]}, {})
    before = alarms(cloudwatch)

    record = monitoring.carry_over(SOURCE, SOURCE, EXECUTION)

    assert alarms(cloudwatch) == before
    assert record["followed_name"] == {"alarms": [f"{SOURCE}-cpu-high"], "subscriptions": ["irisx-prod-events"]}
    assert record["alarms_created"] == [] and record["subscriptions_added"] == []
    assert monitoring.carry_back(SOURCE, SOURCE, record)["alarms_deleted"] == []


def test_the_handlers_carry_over_after_a_cutover_and_back_for_its_rollback(cloudwatch, subscriptions):
    from restore_runbook.monitoring.handlers import carry_monitoring_back, carry_monitoring_over

    cpu_alarm(cloudwatch, SOURCE)
    no_subscriptions(subscriptions, times=2)
    context = {"execution_id": EXECUTION, "state": "CarryMonitoringOver", "workflow": "restore"}
    lambda_context = LambdaContext(function_name="irisx-restore-CarryMonitoringOver", invoked_function_arn="arn:aws:lambda:::function:x")

    over = carry_monitoring_over.handler({"context": context, "from_instance": SOURCE, "to_instance": RESTORED}, lambda_context)
    assert f"{RESTORED}-cpu-high" in alarms(cloudwatch)

    back = carry_monitoring_back.handler(
        {"context": context, "from_instance": RESTORED, "to_instance": SOURCE, "monitoring": over}, lambda_context
    )
    assert sorted(alarms(cloudwatch)) == [f"{SOURCE}-cpu-high"]
    assert back["alarms_deleted"] == [f"{RESTORED}-cpu-high"]
