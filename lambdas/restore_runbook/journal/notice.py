"""An execution's end notice: sent at least once.

Every writer of an end record (the workflow's own end step, the status-change function) closes
the record first and publishes after (for the status-change function, the closed record is what
stops a second delivery of the event from acting twice), so a publish that fails after the write
would leave the end journaled and nobody told. The closing write therefore also marks the notice
`pending`; the publish marks it `sent`, or `failed` before the error goes back to the caller. The
status-change function, called when the execution ends and retried by Lambda, finds the record
closed and sends a notice left `failed`, or `pending` for longer than any writer can run (its
writer is gone), and waits (NoticeInDoubt) on one whose writer may still be publishing.
Each writer names its claim on the notice (`notice_by`) and marks only under it: an end step still
running when its execution timed out may replace a record the status-change function closed a moment
before, and neither may then mark the other's notice sent (the record would read SUCCEEDED with only
the timeout's notice sent); the one a lost notice belongs to is the one the record names.
A writer with no topic (`restorectl status` reconciling a record) marks a notice worth sending
`owed`, which the status-change function, if its event for that end comes, sends.
A duplicate notice is possible (a writer stopped between the publish and its mark, or SNS took a
publish whose answer was lost), at most once per attempt; a lost one is not, while Lambda's retries
last (then the dead-letter queue's alarm tells). Records closed before notices were marked carry no
mark and are left as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from restore_runbook.common import aws, clock
from restore_runbook.common.observability import logger
from restore_runbook.contract import STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS
from restore_runbook.journal import table as journal
from restore_runbook.journal.notify import notify

PENDING, SENT, FAILED, OWED, NOT_DUE = "pending", "sent", "failed", "owed", "not-due"


class NoticeInDoubt(RuntimeError):
    """The record is closed and its notice is being sent by another invocation that may still run;
    raised so that Lambda retries once that invocation has either marked it sent or can no longer run."""


def opening_marks(worth_telling: bool, settings: journal.JournalSettings) -> dict[str, str]:
    """The notice's fields for the closing write (`:notice`, `:notice_at`, `:notice_by`): PENDING when
    this writer sends it next. `:notice_by` is the writer's claim, which `send` marks under."""
    mark = (PENDING if settings.topic_arn else OWED) if worth_telling else NOT_DUE
    return {":notice": mark, ":notice_at": clock.isoformat(clock.now()), ":notice_by": uuid.uuid4().hex}


def _read(key: Mapping[str, Any], settings: journal.JournalSettings) -> dict[str, Any]:
    return dict(journal.table(settings).get_item(Key=dict(key), ConsistentRead=True).get("Item") or {})


def message_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The notice's fields, as the closing write recorded them."""
    left_behind = str(record.get("left_behind") or "")
    reconciled = record.get("reconciled")
    if isinstance(reconciled, Mapping) and reconciled.get("by"):
        left_behind = f"{left_behind} [journal record reconciled from RUNNING by {reconciled['by']}]"
    return {
        "workflow": str(record.get("workflow") or ""),
        "execution_arn": str(record.get("execution_arn") or ""),
        "outcome": str(record.get("outcome") or ""),
        "error": record.get("error"),
        "cause": record.get("cause"),
        "left_behind": left_behind,
    }


def _mark(key: Mapping[str, Any], notice: str, settings: journal.JournalSettings, *, claim: str, why: str | None = None) -> bool:
    """Mark the notice, only while `claim` is still the writer the record names: a later writer of the
    same end (an end step still running when its execution timed out, which the status-change function
    closed first) has replaced the record and its notice, and its mark is not ours to overwrite.
    False when it was not ours any more."""
    try:
        journal.table(settings).update_item(
            Key=dict(key),
            UpdateExpression="SET notice = :notice, notice_at = :at, notice_failure = :why",
            ConditionExpression="notice_by = :claim",
            ExpressionAttributeValues={":notice": notice, ":at": clock.isoformat(clock.now()), ":why": why, ":claim": claim},
        )
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
        logger.warning("the end notice was claimed by another writer since; its mark is left to that writer", extra={"key": dict(key)})
        return False
    return True


def send(key: Mapping[str, Any], message: Mapping[str, Any], settings: journal.JournalSettings, *, claim: str) -> bool:
    """Publish the notice the closing write (`claim`: its `:notice_by`) marked pending, then mark it
    sent; on a failed publish, mark it failed (if the table answers and the claim is still ours) and
    raise, so the invocation is retried."""
    try:
        notify(**message, settings=settings)
    except Exception as exc:
        try:
            _mark(key, FAILED, settings, claim=claim, why=f"{aws.error_code(exc) or type(exc).__name__}: {exc}"[:500])
        except Exception:  # noqa: BLE001 - left pending, it is resent once its writer can no longer run
            logger.exception("the end notice could not be marked failed; it stays pending", extra={"key": dict(key)})
        raise
    try:
        _mark(key, SENT, settings, claim=claim)
    except Exception:  # noqa: BLE001 - it was published; left pending, a later retry may send it twice, never zero times
        logger.exception("the end notice was published but could not be marked sent", extra={"key": dict(key)})
    return True


def _claim(
    key: Mapping[str, Any], record: Mapping[str, Any], settings: journal.JournalSettings, *, mark: str = PENDING, why: str | None = None
) -> str:
    """Take the notice as it was read (its mark, time and outcome unchanged since), marking it `mark`,
    so that of two invocations retrying at once one acts, and a writer that replaced the record since is left alone."""
    claim, seen_by = uuid.uuid4().hex, record.get("notice_by")
    # A record closed before writers named their claim has none: it is taken as seen by mark and time alone.
    same_writer = "notice_by = :seen_by" if seen_by else "attribute_not_exists(notice_by)"
    try:
        journal.table(settings).update_item(
            Key=dict(key),
            UpdateExpression="SET notice = :mark, notice_at = :now, notice_by = :claim, notice_failure = :why",
            ConditionExpression=f"notice = :seen AND notice_at = :seen_at AND outcome = :outcome AND {same_writer}",
            ExpressionAttributeValues={
                ":mark": mark,
                ":now": clock.isoformat(clock.now()),
                ":claim": claim,
                ":why": why,
                ":seen": record.get("notice"),
                ":seen_at": str(record.get("notice_at") or ""),
                ":outcome": record.get("outcome"),
                **({":seen_by": seen_by} if seen_by else {}),
            },
        )
    except Exception as exc:
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise
        raise NoticeInDoubt(f"{record.get('execution_arn')}: another writer took the end notice since it was read; retried later") from exc
    return claim


def resend_if_lost(key: Mapping[str, Any], settings: journal.JournalSettings, *, announced: bool = False) -> str:
    """For an invocation that finds the record already closed: send its notice if its writer failed
    to. What was done, in words; NoticeInDoubt while another invocation may be sending it.

    `announced`: the execution's output says ReleaseWithoutRecord sent this success's notice itself."""
    record = _read(key, settings)
    notice, marked_at = record.get("notice"), str(record.get("notice_at") or "")
    if notice is None:
        return "no notice mark to check (the record was closed before notices were marked)"
    if notice in (SENT, NOT_DUE) or not settings.topic_arn:
        return f"its notice reads {notice}"
    if announced and record.get("outcome") == "SUCCEEDED":
        _claim(key, record, settings, mark=SENT, why="sent by ReleaseWithoutRecord (the execution's output says so)")
        return f"its notice read {notice}, but ReleaseWithoutRecord announced this success; marked sent"
    try:
        age = (clock.now() - clock.parse_utc(marked_at)).total_seconds()
    except ValueError:
        age = float("inf")
    if notice == PENDING and age < STATUS_CHANGE_FUNCTION_TIMEOUT_SECONDS:
        raise NoticeInDoubt(
            f"{record.get('execution_arn')}: the record is closed and its end notice has been pending for {age:.0f}s: "
            "the invocation that closed it may still be publishing; retried later"
        )
    claim = _claim(key, record, settings)
    send(key, message_of(record), settings, claim=claim)
    was = f"left pending {age:.0f}s" if notice == PENDING else f"read {notice}"
    return f"its notice {was}; sent now"
