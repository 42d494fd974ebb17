"""A dead-letter queue for what AWS delivers on this stack's behalf (a schedule's target, an event's
function), with the alarms that tell people the moment one message lands in it, and again when
another lands while the first still waits."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import nag


def dead_letter_queue(scope: Construct, construct_id: str, *, dead_letters_of: str) -> sqs.Queue:
    """`dead_letters_of`: what sends to it, for the cdk-nag acknowledgement (it is a DLQ cdk-nag cannot see as one)."""
    queue = sqs.Queue(scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=Duration.days(14))
    nag.acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue IS the dead-letter queue of {dead_letters_of}, which cdk-nag cannot see; a message in it raises its own alarm",
    )
    return queue


def dead_letter_alarms(
    scope: Construct, construct_id: str, *, queue: sqs.IQueue, description: str, topic: sns.ITopic
) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
    """Two alarms told to `topic`: one in alarm while any message waits in `queue`, and one that goes
    into alarm whenever the queue holds more than it did five minutes before. An alarm notifies only
    on entering ALARM, so the first alone would stay silent about every message after the first until
    someone empties the queue; the second tells of new arrivals. Both read the queue's depth, which
    counts a message however it got there (Lambda's destination, EventBridge, Scheduler)."""
    visible = queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum")
    waiting = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=visible,
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    arrived = cloudwatch.Alarm(
        scope,
        f"{construct_id}NewArrival",
        alarm_description=f"Another message arrived while earlier ones wait. {description}",
        metric=cloudwatch.MathExpression(
            expression="DIFF(visible)", using_metrics={"visible": visible}, period=Duration.minutes(5), label="messages added"
        ),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    for alarm in (waiting, arrived):
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return waiting, arrived
