"""Each dead-letter queue alarms when its first message lands and again when another lands while
earlier ones wait: an alarm notifies only as it enters ALARM, so the depth alarm alone would stay
silent about every failure after the first until someone empties the queue."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Synthesized

DEAD_LETTER_QUEUES = ["AbandonedExecutionsDeadLetters", "DrillScheduleDeadLetters"]


def queue_id(synthesized: Synthesized, construct_prefix: str) -> str:
    (found,) = [k for k in synthesized.of_type("AWS::SQS::Queue") if k.startswith(construct_prefix) and len(k) == len(construct_prefix) + 8]
    return found


def depth_of(queue: str) -> dict[str, Any]:
    return {
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
    }


def test_every_queue_in_the_stack_is_one_of_the_dead_letter_queues_checked_here(synthesized: Synthesized) -> None:
    assert sorted(queue_id(synthesized, prefix) for prefix in DEAD_LETTER_QUEUES) == sorted(synthesized.of_type("AWS::SQS::Queue"))


@pytest.mark.parametrize("construct_prefix", DEAD_LETTER_QUEUES)
def test_a_dead_letter_queue_alarms_on_its_first_message_and_again_on_each_new_one(synthesized: Synthesized, construct_prefix: str) -> None:
    queue = queue_id(synthesized, construct_prefix)
    depth = depth_of(queue)
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    alarms = [a["Properties"] for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()]
    waiting = [a for a in alarms if {k: a.get(k) for k in depth} == depth]
    arrivals = [a for a in alarms if any(m.get("MetricStat", {}).get("Metric") == depth for m in a.get("Metrics", []))]
    assert len(waiting) == 1 and len(arrivals) == 1, (waiting, arrivals)
    (waiting_alarm,), (arrival_alarm,) = waiting, arrivals

    # In alarm while any message waits (one is enough), quiet when CloudWatch has no figure for an idle queue
    assert (waiting_alarm["Statistic"], waiting_alarm["Period"], waiting_alarm["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert (waiting_alarm["ComparisonOperator"], waiting_alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert waiting_alarm["TreatMissingData"] == "notBreaching"

    # In alarm in any five minutes whose greatest depth is above the five minutes' before: a new message
    # while earlier ones wait sends a notice of its own, and the alarm is OK again once the depth stops rising
    (expression,) = [m for m in arrival_alarm["Metrics"] if "Expression" in m]
    (visible,) = [m for m in arrival_alarm["Metrics"] if "MetricStat" in m]
    assert expression["ReturnData"] is True and visible["ReturnData"] is False
    assert expression["Expression"] == f"DIFF({visible['Id']})"
    assert (visible["MetricStat"]["Stat"], visible["MetricStat"]["Period"]) == ("Maximum", 300)
    assert (arrival_alarm["ComparisonOperator"], arrival_alarm["Threshold"], arrival_alarm["EvaluationPeriods"]) == (
        "GreaterThanOrEqualToThreshold",
        1,
        1,
    )
    assert arrival_alarm["TreatMissingData"] == "notBreaching"
    assert arrival_alarm["AlarmDescription"].endswith(waiting_alarm["AlarmDescription"])

    for alarm in (waiting_alarm, arrival_alarm):
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
