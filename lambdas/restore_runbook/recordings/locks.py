"""One recordings restore per bucket and prefix: overlapping prefixes refuse each other.

The journal's lock (TakeLock) is a conditional write on one exact resource string,
`s3:<bucket>/<prefix>`, so two restores of `recordings/` and `recordings/t1/` would both get
theirs. This check runs right after TakeLock: it reads every lock held on the same bucket and
refuses when another running execution's prefix contains ours or lies inside it. Both of two
overlapping restores started at the same moment may refuse; neither can proceed alongside the other.
"""

from __future__ import annotations

from typing import Any

from restore_runbook.common.errors import OperationInProgress
from restore_runbook.journal import table as journal
from restore_runbook.journal.lock import _holder_is_running


def _bucket_and_prefix(resource: str) -> tuple[str, str]:
    bucket, _, prefix = resource.removeprefix("s3:").partition("/")
    return bucket, prefix


def overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def refuse_overlapping(resource: str, execution_arn: str, settings: journal.JournalSettings) -> dict[str, Any]:
    from boto3.dynamodb.conditions import Key

    bucket, prefix = _bucket_and_prefix(resource)
    table = journal.table(settings)
    condition = Key(journal.INDEX_PK).eq(journal.LOCK_KIND) & Key(journal.INDEX_SK).begins_with(f"s3:{bucket}/")
    kwargs: dict[str, Any] = {"IndexName": journal.INDEX, "KeyConditionExpression": condition}
    checked = 0
    while True:
        page = table.query(**kwargs)
        for lock in page.get("Items", []):
            held = str(lock.get("resource") or lock.get(journal.INDEX_SK) or "")
            holder = str(lock.get("holder"))
            checked += 1
            if holder == execution_arn or not overlaps(_bucket_and_prefix(held)[1], prefix):
                continue
            if _holder_is_running(holder):
                raise OperationInProgress(
                    f"{lock.get('workflow')} execution {journal.execution_name(holder)} (requested by {lock.get('requested_by')}) "
                    f"is restoring {held}, which overlaps s3:{bucket}/{prefix}; wait for it to finish or stop it, then start "
                    f"again: {journal.console_link(holder)}"
                )
        if not page.get("LastEvaluatedKey"):
            return {"resource": resource, "locks_checked": checked, "overlapping": 0}
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
