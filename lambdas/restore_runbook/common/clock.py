"""The one source of "now" for domain code.

Every timestamp a step records (restore points, phase timings, generated names) comes from here,
so the rehearsal can run the same code on a simulated clock where a 20-minute restore passes in
a blink. Production never replaces it.
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    """UTC ISO-8601 with a Z suffix and whole seconds, the form users type and RDS returns."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def precise(moment: datetime) -> str:
    """Like isoformat, but keeps fractions of a second when there are any.

    Restore points need them: a snapshot taken at 03:07:00.600 holds rows from 03:07:00.3, which
    a restore point cut to 03:07:00 would call "after the restore point".
    """
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return isoformat(moment)


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 timestamp that names its offset; naive timestamps are ambiguous at 3 a.m."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset; write it like 2025-11-02T12:00:00Z")
    return value.astimezone(timezone.utc)
