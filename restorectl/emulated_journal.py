"""The journal table and the notification topic, as the stack deploys them, in the rehearsal's moto.

moto's DynamoDB and SNS behave like the real ones for what the workflows do (conditional writes,
queries, publish), so the only job here is to create them with the stack's key schema, point the
steps at them, and report what they hold in the rehearsal's world (`journal`, `notifications`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from restore_runbook.contract import ENV_JOURNAL_TABLE_NAME, ENV_NOTIFY_TOPIC_ARN
from restore_runbook.journal.table import from_item

TABLE_NAME = "irisx-restore-journal"
TOPIC_NAME = "irisx-restore-notifications"


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments; the CDK construct (stacks/journal.py) declares the same schema."""
    from restore_runbook.journal import table as journal

    attributes = [journal.PK, journal.SK, journal.INDEX_PK, journal.INDEX_SK]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in attributes],
        "KeySchema": [{"AttributeName": journal.PK, "KeyType": "HASH"}, {"AttributeName": journal.SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": journal.INDEX,
                "KeySchema": [
                    {"AttributeName": journal.INDEX_PK, "KeyType": "HASH"},
                    {"AttributeName": journal.INDEX_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


class EmulatedJournal:
    def __init__(self, region: str, account: str) -> None:
        self.region = region
        self.account = account
        self.table_name = TABLE_NAME
        self.topic_arn = ""

    def install(self) -> EmulatedJournal:
        """Create the table and the topic, and set the variables the stack sets on every function.

        Called inside the rehearsal's patched environment, which restores os.environ on exit.
        """
        import boto3

        boto3.client("dynamodb").create_table(**table_definition(self.table_name))
        self.topic_arn = boto3.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
        os.environ[ENV_JOURNAL_TABLE_NAME] = self.table_name
        os.environ[ENV_NOTIFY_TOPIC_ARN] = self.topic_arn
        return self

    def records(self) -> list[dict[str, Any]]:
        """Every item, executions in start order, then locks."""
        items = self._items_in_process()
        if items is None:
            items = self._scanned_items()
        items.sort(key=lambda i: (i["pk"].startswith("LOCK#"), str(i.get("started_at", "")), i["sk"]))
        return [from_item(i) for i in items]

    def _scanned_items(self) -> list[dict[str, Any]]:
        import boto3

        table = boto3.resource("dynamodb").Table(self.table_name)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        while True:
            page = table.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _items_in_process(self) -> list[dict[str, Any]] | None:
        """What a consistent Scan returns, read from moto's table: the world is described after every
        execution, and moto's Scan walks botocore's shape model for every nested value of every item.
        The steps' own reads go through the API. tests/workflow/test_harness_reads.py holds
        the two readings equal. None when moto's internals are not where they were."""
        try:
            from moto.dynamodb.models import dynamodb_backends

            table = dynamodb_backends[self.account][self.region].get_table(self.table_name)
            return [item.to_regular_json() for item in table.all_items()]
        except (ImportError, AttributeError, KeyError):
            return None

    def executions(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["pk"].startswith("WORKFLOW#")]

    def locks(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["pk"].startswith("LOCK#")]

    def notifications(self) -> list[dict[str, Any]]:
        from moto.sns import models as sns_models

        topic = sns_models.sns_backends[self.account][self.region].topics.get(self.topic_arn)
        sent = topic.sent_notifications if topic else []
        return [{"subject": n[2], "message": n[1]} for n in sent]

    def report(self) -> dict[str, Any]:
        return {"journal": json.loads(json.dumps(self.records(), default=str)), "notifications": self.notifications()}
