"""A dead-letter queue for what AWS delivers on this stack's behalf (a schedule's target, an event's
function), with the alarm that tells people the moment one message lands in it."""

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


def dead_letter_alarm(scope: Construct, construct_id: str, *, queue: sqs.IQueue, description: str, topic: sns.ITopic) -> cloudwatch.Alarm:
    """In alarm while any message waits in `queue`, told to `topic`."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5), statistic="Maximum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return alarm
