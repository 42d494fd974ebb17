"""One recordings restore per bucket and prefix: overlapping prefixes refuse each other, and
restores of prefixes that do not overlap run side by side.

The journal's lock (TakeLock) is a conditional write on one exact resource string,
`s3:<bucket>/<prefix>`, so restores of `recordings/` and `recordings/t1/` would both get theirs.
This step, right after TakeLock, enters the prefix in its bucket's registry of held prefixes (one
journal item per bucket, journal/prefix_registry.py): a strongly consistent read of the item, the
overlap check in code, then a write conditional on the item's version (compare-and-swap), read and
tried again when another write came first, a bounded number of times. An entry whose holder has
ended is stale and dropped; one whose holder still runs and whose prefix contains ours or lies
inside it refuses this restore with OperationInProgress. Every path that releases the lock
releases the entry (journal/lock.py `release_lock`: the workflow's own end steps and the
status-change function's reconciliation of executions that ended without them).

Why two overlapping restores A and B cannot both pass while both run:

1. A passes only by a successful conditional write W_A of the registry, made with the version A read;
   B likewise by W_B. DynamoDB applies writes to one item one at a time and evaluates each
   condition against the item as it is then; every write to the registry (a take here, a release)
   adds one to its version and the item is never deleted, so the version only grows and one
   version number is one content of the item.
2. Say W_A came first. At W_B the version was the one B read, and it was already above every
   version the item had before W_A; so B's read, being strongly consistent (ConsistentRead: it
   reflects every write acknowledged before it), returned W_A's content or a later one.
3. A later write removes A's entry only when A releases it (A is ending) or when a taker judges A
   ended. That judgement is made only on proof: Step Functions reports A in a final status
   (DescribeExecution is eventually consistent, but a stale answer about a running execution is an
   older one, RUNNING, never a final status), or says A does not exist although its entry is older
   than the longest an execution may run (the workflow's TimeoutSeconds; a younger one may be an
   execution DescribeExecution has not caught up with, and blocks). (An execution redriven after it
   ended holds no lock, and its steps refuse to act: common/redrive.py.)
4. So B's read held A's entry, whose prefix overlaps B's and whose holder runs: B refused. Of two
   overlapping restores started at the same moment, the one whose write lost reads again and refuses.

The check it replaces read the locks through the journal's index, which is eventually consistent
(no ConsistentRead on a global secondary index): two overlapping restores started close together
could each miss the other's new lock and both proceed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.errors import OperationInProgress
from restore_runbook.journal import prefix_registry
from restore_runbook.journal import table as journal
from restore_runbook.journal.workflows import lock_label

WORKFLOW = "recordings-restore"
# statemachines/recordings-restore.asl.json TimeoutSeconds: no execution of it runs longer.
LONGEST_EXECUTION = timedelta(seconds=86400)
# Each lost write means another restore of the bucket started or ended in the same instant; five in a
# row is contention worth telling a person about rather than spinning on.
ATTEMPTS = 5


def _bucket_and_prefix(resource: str) -> tuple[str, str]:
    bucket, _, prefix = resource.removeprefix("s3:").partition("/")
    return bucket, prefix


def overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def _holder_is_running(holder: str, acquired_at: str | None) -> bool:
    """False only on proof that the holder has ended (see the module docstring, point 3)."""
    try:
        status = aws.client("stepfunctions").describe_execution(executionArn=holder)["status"]
    except Exception as exc:
        code = aws.error_code(exc)
        if code == "InvalidArn":
            return False
        if code == "ExecutionDoesNotExist":
            return not _older_than_any_execution(acquired_at)
        raise
    return bool(status == journal.RUNNING)


def _older_than_any_execution(acquired_at: str | None) -> bool:
    try:
        return clock.now() - clock.parse_utc(str(acquired_at)) > LONGEST_EXECUTION
    except ValueError:
        return False


def refuse_overlapping(
    resource: str, execution_arn: str, settings: journal.JournalSettings, requested_by: str = "not given"
) -> dict[str, Any]:
    """Hold `resource`'s prefix in its bucket's registry, or raise OperationInProgress naming the
    running restore whose prefix overlaps it."""
    bucket, prefix = _bucket_and_prefix(resource)
    for attempt in range(1, ATTEMPTS + 1):
        seen = prefix_registry.read(bucket, settings)
        holders: dict[str, dict[str, Any]] = {}
        stale: list[str] = []
        for held, entry in seen.holders.items():
            holder = str(entry.get("holder"))
            # Its own entry (this step retried after its write) is written again below.
            if holder == execution_arn:
                continue
            if not overlaps(_bucket_and_prefix(held)[1], prefix):
                holders[held] = entry
                continue
            if _holder_is_running(holder, entry.get("acquired_at")):
                raise OperationInProgress(
                    f"{entry.get('workflow')} execution {journal.execution_name(holder)} (started {entry.get('acquired_at')}, "
                    f"requested by {entry.get('requested_by')}) is restoring {lock_label(held)}, which overlaps "
                    f"{lock_label(resource)}; wait for it to finish or stop it, then start again: {journal.console_link(holder)}"
                )
            stale.append(held)
        holders[resource] = {
            "holder": execution_arn,
            "workflow": WORKFLOW,
            "requested_by": requested_by,
            "acquired_at": clock.isoformat(clock.now()),
        }
        if prefix_registry.replace(seen, holders, settings):
            return {
                "resource": resource,
                "overlapping": 0,
                "locks_checked": len(seen.holders),
                "held_alongside": sorted(h for h in holders if h != resource),
                "took_over_from": stale,
                "registry_version": seen.version + 1,
                "attempts": attempt,
            }
    raise OperationInProgress(
        f"the prefixes held on s3://{bucket} changed {ATTEMPTS} times while this restore was checking {lock_label(resource)} "
        "against them: other restores of this bucket are starting or ending at this moment; start again in a minute"
    )
