"""The journal of every execution (DynamoDB) and the notification topic (SNS).

The table's key schema is the one `lambdas/restore_runbook/journal/` writes and
`restorectl/emulated_journal.py` creates in the rehearsal. What the journal steps may do with them
is in stacks/permissions/journal.py.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from restore_runbook.contract import ENV_JOURNAL_TABLE_NAME, ENV_NOTIFY_TOPIC_ARN
from stacks.settings import StackSettings

PK, SK, INDEX, INDEX_PK, INDEX_SK = "pk", "sk", "gsi1", "gsi1pk", "gsi1sk"


class Journal(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.table = self._build_table()
        self.topic = self._build_topic()

    def _build_table(self) -> dynamodb.TableV2:
        table = dynamodb.TableV2(
            self,
            "Table",
            table_name=f"{self._settings.name_prefix}-journal",
            partition_key=dynamodb.Attribute(name=PK, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SK, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            # The incident log is evidence: recoverable to any second of the last 35 days, never deleted by a stack change.
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=INDEX,
                    partition_key=dynamodb.Attribute(name=INDEX_PK, type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name=INDEX_SK, type=dynamodb.AttributeType.STRING),
                )
            ],
        )
        return table

    def _build_topic(self) -> sns.Topic:
        # A key of the stack's own: CloudWatch alarm actions (a failed or overdue drill) cannot publish to
        # a topic encrypted with the AWS managed SNS key, whose policy this account cannot change.
        self.key = kms.Key(
            self,
            "NotificationsKey",
            description=f"{self._settings.name_prefix}: encrypts the notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self._settings.account}},
            )
        )
        topic = sns.Topic(
            self,
            "Notifications",
            topic_name=f"{self._settings.name_prefix}-notifications",
            display_name="IRISX restore runbook",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in self._settings.notify_emails:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def publish_statements(self) -> list[iam.PolicyStatement]:
        """What a function needs to publish to the topic: the topic, and its key to encrypt the message."""
        return [
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]),
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]),
        ]

    def environment(self) -> dict[str, str]:
        """What every step function needs to find the journal and the topic."""
        return {ENV_JOURNAL_TABLE_NAME: self.table.table_name, ENV_NOTIFY_TOPIC_ARN: self.topic.topic_arn}

    def table_statement(self, actions: list[str], leading_keys: list[str] | None = None) -> iam.PolicyStatement:
        """Actions on the journal table; with `leading_keys`, only on items whose partition key matches one of them."""
        if leading_keys is None:
            return iam.PolicyStatement(actions=actions, resources=[self.table.table_arn])
        return iam.PolicyStatement(
            actions=actions,
            resources=[self.table.table_arn],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": leading_keys},
                # ForAllValues holds for a request naming no key at all (a Scan): such a request is not allowed.
                "Null": {"dynamodb:LeadingKeys": "false"},
            },
        )

    def add_outputs(self) -> None:
        stack = Stack.of(self)
        CfnOutput(stack, "JournalTableName", value=self.table.table_name, description="DynamoDB journal of every execution")
        CfnOutput(stack, "NotificationTopicArn", value=self.topic.topic_arn, description="SNS topic for workflow notifications")
