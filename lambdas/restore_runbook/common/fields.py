"""One normalization of every execution-input field, shared by every workflow's input check.

An input check is the only thing between a pasted value and RDS, SSM and a shell on the API
hosts, so each kind of field is checked one way, here, and the check runs before any AWS call:

- Patterns are matched with `re.fullmatch`: Python's `$` also matches before a final newline, so
  `"irisx-prod-rds-postgres\\n"` passed a `^...$` match and reached SSM and the source-equality check.
- Identifiers, host names and timestamps are refused, not repaired, when they hold whitespace,
  control characters or non-ASCII look-alikes: a value that is not what it seems is a paste
  error, and a destructive tool should say so rather than guess.
- RDS identifiers (instances and snapshots) are case-insensitive and RDS stores them in lower
  case, so they are checked as ASCII first (the Kelvin sign lowercases to "k") and returned in
  lower case; comparisons and records then see one spelling.
- `null` is never taken to mean "absent": leaving a field out gets its default, `null` is refused.
- Free text (who asked, labels) is stripped of surrounding spaces, length-bounded, and refused
  when it holds control or invisible formatting characters (newlines, tabs, bidi overrides).

Checkers take the value and the field's name and return the normalized value or raise
`InvalidInput` (or the error the caller names) with a cause that says what was wrong.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from restore_runbook.common.errors import InvalidInput, RunbookError
from restore_runbook.contract import DB_HOST_PATTERN, RDS_IDENTIFIER

# Checked after the ASCII check, on the lower-cased value.
RDS_IDENTIFIER_RULE = "1-63 letters, digits and hyphens, starting with a letter, no double or trailing hyphen"
# Manual snapshots follow the instance rule up to 255 characters; automated ones carry an `rds:` prefix.
SNAPSHOT_IDENTIFIER = re.compile(r"(rds:)?[a-z](?!.*--)[a-z0-9-]{0,254}(?<!-)")
SNAPSHOT_IDENTIFIER_RULE = "1-255 letters, digits and hyphens, starting with a letter, no double or trailing hyphen, optionally after rds:"
# Dot-separated labels of 1-63 letters, digits and inner hyphens, at most 253 characters in all.
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z)(?:{HOST_LABEL}\.)*{HOST_LABEL}")
HOST_NAME_RULE = "dot-separated labels of letters, digits and inner hyphens, at most 253 characters, no empty label"
# The one timestamp form the runbook writes: date, T, time, optional fraction, Z or an offset.
TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")
# What RDS accepts in a tag value: Unicode letters, digits, spaces and _ . : / = + - @
TAG_VALUE = re.compile(r"[\w .:/=+\-@]*")
TAG_VALUE_RULE = "letters, digits, spaces and _ . : / = + - @"
MAX_TEXT = 256
# Names shown in a cause as they are; anything else is shown quoted and shortened.
PLAIN_NAME = re.compile(r"[a-z_]{1,40}")
# Control (Cc), invisible formatting such as bidi overrides and zero-width joiners (Cf), line and
# paragraph separators, private-use, surrogates and unassigned code points.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})


def shown(value: Any, limit: int = 80) -> str:
    """The value as a cause quotes it: JSON-ish, and short, whatever its size."""
    text = "null" if value is None else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------- the object


def request_object(request: Any, fields: Mapping[str, str], *, workflow: str, example: str) -> dict[str, Any]:
    """The execution input as a JSON object holding only the fields the workflow knows."""
    if not isinstance(request, dict):
        raise InvalidInput(f"the execution input must be a JSON object such as {example}, got {shown(request)}")
    unknown = sorted(set(request) - set(fields), key=str)
    if unknown:
        names = ", ".join(name if isinstance(name, str) and PLAIN_NAME.fullmatch(name) else shown(name, 40) for name in unknown)
        raise InvalidInput(f"unknown input field(s) {names}; the {workflow} workflow accepts: {', '.join(sorted(fields))}")
    return request


def optional(request: Mapping[str, Any], name: str, default: str) -> Any:
    """The field's value, or None when it was left out; `null` is refused rather than read as absent."""
    if name not in request:
        return None
    value = request[name]
    if value is None:
        raise InvalidInput(f"{name} is null; leave it out to get the default ({default})")
    return value


def required(request: Mapping[str, Any], name: str, description: str) -> Any:
    value = request.get(name)
    if value is None:
        got = "null" if name in request else "nothing"
        raise InvalidInput(f"{name} must be given ({description}), got {got}")
    return value


def choice(value: Any, name: str, options: Iterable[str]) -> str:
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        listed = " or ".join(repr(o) for o in options) if len(options) <= 2 else ", ".join(options)
        raise InvalidInput(f"{name} must be {'one of ' if len(options) > 2 else ''}{listed}, got {shown(value)}")
    return value


def flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false, got {shown(value)}")
    return value


# ---------------------------------------------------------------------------------------- identifiers


def _string(value: Any, name: str, description: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string ({description}), got {shown(value)}")
    return value


def _unprintable(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in UNPRINTABLE_CATEGORIES:
            return f"U+{ord(char):04X}" + (f" {unicodedata.name(char)}" if unicodedata.name(char, "") else "")
    return None


def _why_not_ascii_token(text: str) -> str | None:
    """Why a value cannot be a token of ASCII letters, digits and punctuation, in plain words; None when it can."""
    if text != text.strip():
        return "it begins or ends with whitespace (a space, tab or newline)"
    bad = _unprintable(text)
    if bad:
        return f"it holds the control or invisible character {bad}"
    if any(char.isspace() for char in text):
        return "it holds whitespace"
    foreign = next((char for char in text if not char.isascii()), None)
    if foreign is not None:
        name = unicodedata.name(foreign, "")
        return f"it holds {foreign!r} (U+{ord(foreign):04X}{' ' + name if name else ''}), which only looks like an ASCII character"
    return None


def _identifier(value: Any, name: str, what: str, pattern: re.Pattern[str], rule: str, kind: str) -> str:
    text = _string(value, name, what)
    why = _why_not_ascii_token(text)
    if why is None:
        lowered = text.lower()
        if pattern.fullmatch(lowered):
            return lowered
        why = rule
    raise InvalidInput(f"{name} must be {what}, got {shown(text)}, which is not a valid {kind}: {why}")


def rds_identifier(value: Any, name: str, what: str = "an RDS instance identifier") -> str:
    """An RDS instance identifier in the lower case RDS stores it in."""
    return _identifier(value, name, what, RDS_IDENTIFIER, RDS_IDENTIFIER_RULE, "RDS identifier")


def snapshot_identifier(value: Any, name: str, what: str = "an RDS snapshot identifier") -> str:
    return _identifier(value, name, what, SNAPSHOT_IDENTIFIER, SNAPSHOT_IDENTIFIER_RULE, "RDS snapshot identifier")


def host_name(value: Any, name: str, what: str = "a database host name") -> str:
    """A DNS host name (what DB_HOST may be set to on the API hosts), in lower case."""
    host = _identifier(value, name, what, HOST_NAME, HOST_NAME_RULE, "host name (letters, digits, dots, hyphens)")
    # What the set-db-host document's allowedPattern will accept: a host the check passes must never be refused by SSM.
    if not re.fullmatch(DB_HOST_PATTERN, host):
        raise InvalidInput(f"{name} must be {what}, got {shown(host)}, which the set-db-host document would refuse")
    return host


def same_rds_identifier(a: str | None, b: str | None) -> bool:
    """RDS identifiers are case-insensitive; settings and tags may spell one differently from the input."""
    return a is not None and b is not None and a.lower() == b.lower()


# ---------------------------------------------------------------------------------------- time


def timestamp(value: Any, name: str, *, hint: str = "", out_of_range: type[RunbookError] = InvalidInput) -> datetime:
    """An ISO-8601 timestamp with Z or an offset, as an aware UTC datetime.

    An offset can push year 1 or 9999 outside what a datetime holds (`OverflowError`); that is a
    time no RDS window contains, reported as `out_of_range`.
    """
    text = _string(value, name, "an ISO-8601 UTC timestamp")
    form = f"write it like 2025-11-02T12:00:00Z{hint}"
    why = _why_not_ascii_token(text)
    if why is not None or not TIMESTAMP.fullmatch(text):
        raise InvalidInput(
            f"{name} {shown(text)} is not an ISO-8601 UTC timestamp ({why or 'not in the form date T time and Z or offset'}); {form}"
        )
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{name} {shown(text)} is not an ISO-8601 UTC timestamp ({exc}); {form}") from None
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise out_of_range(
            f"{name} {text} lies outside the years 0001-9999 once its offset is applied, so no restorable window holds it; {form}"
        ) from None


# ---------------------------------------------------------------------------------------- free text


def free_text(value: Any, name: str, description: str, *, max_length: int = MAX_TEXT) -> str:
    """Text for a record or a tag: surrounding spaces dropped, one line, bounded."""
    text = _string(value, name, description).strip()
    if len(text) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters ({len(text)})")
    bad = _unprintable(text)
    if bad:
        raise InvalidInput(
            f"{name} {shown(text)} holds the control or invisible character {bad}; write it on one line, in plain characters"
        )
    return text


def tag_text(value: Any, name: str, description: str) -> str:
    """Free text that becomes an RDS tag value, so also limited to the characters RDS accepts there."""
    text = free_text(value, name, description)
    if not TAG_VALUE.fullmatch(text):
        raise InvalidInput(f"{name} {shown(text)} has characters an RDS tag cannot hold; use {TAG_VALUE_RULE}")
    return text


# ---------------------------------------------------------------------------------------- fences


def fenced_source(identifier: str, production: Sequence[str], name: str = "source_instance") -> str:
    """A source the IAM fence covers: one of the production instances every deny names (settings.production_names).

    Any other instance could be changed by a destructive role, since no deny names it: refused by name.
    """
    if identifier not in production:
        raise InvalidInput(
            f"{name} {identifier!r} is not one of the production instances this deployment fences ({', '.join(production)}): "
            "every IAM deny names those and no other, so no workflow may work from another. Leave it out for the configured "
            "source, or add it to production_instances in cdk.json and redeploy; nothing was touched"
        )
    return identifier
