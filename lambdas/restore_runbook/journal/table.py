"""The journal's table: its key layout, its settings, and the conversions to and from its items.

One table, one index, two main item kinds:

    execution   pk = WORKFLOW#<workflow>   sk = <start time>#<execution name>
    lock        pk = LOCK#<resource>       sk = LOCK      (resource: rds:<instance>, s3:<bucket>/<prefix>)
    index gsi1  gsi1pk = EXECUTION | LOCK, gsi1sk = <start time>#<name> | <resource>

so "the last runs of one workflow" is one Query on pk, "the last runs of all workflows" and "all
locks held" are one Query each on the index, and the lock is a conditional write on one key.
Beside them: one registry of the prefixes held on each recordings bucket, outside the index
(`PREFIXES#s3:<bucket>` / `REGISTRY`, prefix_registry.py), and a scheduled drill's claim
(drill/request.py).

The workflows write it themselves: a start Task records who started what with which input
(records.py), a lock Task (mutating workflows only) takes the lock on the resource the workflow
changes (lock.py, with the resource declared in workflows.py), and a finish Task on both the
success and the failure path records the outcome, releases the lock and notifies (records.py,
notify.py). events.py reads each of those Tasks' input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from restore_runbook.common import aws
from restore_runbook.common.errors import InvalidInput
from restore_runbook.contract import ENV_JOURNAL_TABLE_NAME, ENV_NOTIFY_TOPIC_ARN, JOURNAL_EXECUTION_PK, JOURNAL_LOCK_PK

PK, SK = "pk", "sk"
INDEX, INDEX_PK, INDEX_SK = "gsi1", "gsi1pk", "gsi1sk"
EXECUTION_KIND, LOCK_KIND = "EXECUTION", "LOCK"
RUNNING = "RUNNING"


@dataclass(frozen=True)
class JournalSettings:
    table_name: str
    topic_arn: str
    # The configured source: a lock field an execution's input left out comes from it (as in the input check).
    source_instance: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> JournalSettings:
        env = dict(os.environ if env is None else env)
        table = env.get(ENV_JOURNAL_TABLE_NAME, "").strip()
        if not table:
            raise InvalidInput(f"setting {ENV_JOURNAL_TABLE_NAME} is not set on this function; redeploy the stack")
        topic = env.get(ENV_NOTIFY_TOPIC_ARN, "").strip()
        return cls(table_name=table, topic_arn=topic, source_instance=env.get("SOURCE_INSTANCE", "").strip())

    def defaults(self) -> dict[str, str]:
        """What a lock field left out of an execution's input defaults to."""
        return {"source_instance": self.source_instance}


def execution_pk(workflow: str) -> str:
    return JOURNAL_EXECUTION_PK.format(workflow=workflow)


def execution_sk(started_at: str, execution_arn: str) -> str:
    return f"{started_at}#{execution_name(execution_arn)}"


def key_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """The table key of an item read from it."""
    return {PK: item[PK], SK: item[SK]}


def lock_pk(resource: str) -> str:
    return JOURNAL_LOCK_PK.format(resource=resource)


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


def console_link(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 4 else "us-east-1"
    return f"https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def table(settings: JournalSettings) -> Any:
    # boto3's resource layer converts Python values to DynamoDB's; the client config keeps standard retries.
    return aws.resource("dynamodb").Table(settings.table_name)


def to_item(value: Any) -> Any:
    """JSON-safe and DynamoDB-safe: floats become Decimals by going through JSON."""
    return json.loads(json.dumps(value, default=str), parse_float=Decimal)


def from_item(value: Any) -> Any:
    """A journal item as plain JSON types again: DynamoDB hands numbers back as Decimals."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_item(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_item(v) for v in value]
    return value
