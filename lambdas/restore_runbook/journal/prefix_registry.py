"""The prefixes of one recordings bucket that restores hold: one journal item per bucket, read with
a strongly consistent GetItem and changed only by conditional writes.

    registry   pk = PREFIXES#s3:<bucket>   sk = REGISTRY
               holders = {"s3:<bucket>/<prefix>": {holder, workflow, requested_by, acquired_at}, ...}
               version = how many writes the item has taken

The item is never deleted and every write adds one to `version`, so a version number stands for
exactly one content of the item: a write conditional on the version a reader saw succeeds only if
nothing changed the item since that read. recordings/locks.py takes an entry that way (and says
why two overlapping restores cannot both get one); every path that releases a recordings lock
releases the execution's entry too, through journal/lock.py `release_lock`.

The item stays out of the locks index (no gsi1 attributes): an index read is eventually
consistent, which is the very thing this item exists to avoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.contract import JOURNAL_PREFIX_REGISTRY_PK
from restore_runbook.journal.table import PK, SK, JournalSettings, from_item, table

REGISTRY_SK = "REGISTRY"


@dataclass(frozen=True)
class Registry:
    bucket: str
    # 0: the item has never been written.
    version: int
    holders: dict[str, dict[str, Any]] = field(default_factory=dict)


def registry_pk(bucket: str) -> str:
    return JOURNAL_PREFIX_REGISTRY_PK.format(bucket=bucket)


def key(bucket: str) -> dict[str, str]:
    return {PK: registry_pk(bucket), SK: REGISTRY_SK}


def bucket_of(resource: str) -> str | None:
    """The bucket of a recordings lock (`s3:<bucket>/<prefix>`); None for a lock of any other kind."""
    if not resource.startswith("s3:"):
        return None
    return resource.removeprefix("s3:").partition("/")[0] or None


def read(bucket: str, settings: JournalSettings) -> Registry:
    item = table(settings).get_item(Key=key(bucket), ConsistentRead=True).get("Item")
    if item is None:
        return Registry(bucket=bucket, version=0)
    plain = from_item(item)
    return Registry(bucket=bucket, version=int(plain.get("version") or 0), holders=dict(plain.get("holders") or {}))


def replace(seen: Registry, holders: dict[str, dict[str, Any]], settings: JournalSettings) -> bool:
    """Write `holders` as the bucket's registry if it is still as `seen`; False when another write came first."""
    condition: dict[str, Any] = (
        {"ConditionExpression": "attribute_not_exists(pk)"}
        if seen.version == 0
        else {"ConditionExpression": "version = :seen", "ExpressionAttributeValues": {":seen": seen.version}}
    )
    item = {
        **key(seen.bucket),
        "bucket": seen.bucket,
        "holders": holders,
        "version": seen.version + 1,
        "updated_at": clock.isoformat(clock.now()),
    }
    try:
        table(settings).put_item(Item=item, **condition)
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release(resource: str, execution_arn: str, settings: JournalSettings) -> bool:
    """Remove `resource` from its bucket's registry if `execution_arn` holds it; False when it did not.

    One conditional UpdateItem, no read first: it removes only this execution's own entry, which no
    one else writes, and it adds one to the version, so a taker that read the registry before this
    release fails its conditional write and reads again."""
    bucket = bucket_of(resource)
    if bucket is None:
        return False
    try:
        table(settings).update_item(
            Key=key(bucket),
            UpdateExpression="REMOVE holders.#resource SET version = version + :one, updated_at = :now",
            ConditionExpression="holders.#resource.holder = :me",
            ExpressionAttributeNames={"#resource": resource},
            ExpressionAttributeValues={":one": 1, ":me": execution_arn, ":now": clock.isoformat(clock.now())},
        )
    except Exception as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True
