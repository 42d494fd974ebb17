"""Every setting of the Lambda steps, declared once: its type, default, check and environment variable.

The declaration below is read twice. At synth, `stacks/settings.py` parses the `runbook` context of
cdk.json with it (a bad value stops `cdk synth` with a ValueError naming the key) and writes each
value into the functions' environment. At cold start, `from_env` parses that environment with it
again (a mis-set function fails its first invocation with InvalidInput naming the variable), so
the two sides can never disagree on a name, a default or what is valid.

A field's cdk.json key is its name (or `key=`), its environment variable the key in upper case.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from restore_runbook.common.errors import InvalidInput
from restore_runbook.contract import (
    APP_CONTROL_DOCUMENT,
    APP_NAME_PATTERN,
    DEFAULT_MANAGEMENT_TAG_KEY,
    DEFAULT_MANAGEMENT_TAG_VALUE,
    ENV_FILE_PATTERN,
    HEALTH_URL_PATTERN,
    RDS_IDENTIFIER,
    SET_DB_HOST_DOCUMENT,
    SNAPSHOT_REASONS,
    SQL_IDENTIFIER,
    document_name,
)

__all__ = ["RDS_IDENTIFIER", "SQL_IDENTIFIER", "RunbookSettings", "Setting", "SnapshotSettings", "settings"]

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
SUBNET_GROUP = re.compile(r"^[A-Za-z0-9 ._-]{1,255}$")
TAG_PART = re.compile(r"^[\w .:/=+@-]{1,128}$")
SNAPSHOT_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
DEFAULT_NAME_PREFIX = "irisx-restore"
WARM_BUDGET_LIMIT_SECONDS = 540
# The validate step's function has 10 minutes (stacks/permissions/restore.py). Its index check and its
# count report run side by side, so each gets at most this much, leaving 3 minutes for what runs
# before and after them: the sessions' connects (10 s timeout each), the schema and recency reads
# (each under the statement timeout, against the copy and the source) and writing the report.
VALIDATE_BUDGET_LIMIT_SECONDS = 420
INTEGRITY_BUDGET_DEFAULT_SECONDS = 180
# A drill copies and reads back this many recordings per bucket, at most, in its 5-minute step.
DRILL_RECORDINGS_KEYS_LIMIT = 20
# cron(minutes hours day-of-month month day-of-week year): Scheduler's six fields.
DRILL_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
# strftime directives and letters, digits, hyphens: what an RDS identifier may end with.
REPLACED_SUFFIX_FORMAT = re.compile(r"^-[A-Za-z0-9%-]{1,40}$")
# What the format gives: letters, digits and single hyphens after the production name.
REPLACED_SUFFIX = re.compile(r"^-(?!.*--)[A-Za-z0-9-]{1,30}(?<!-)$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


@dataclass(frozen=True)
class Setting:
    """How one setting is read and checked. `kind` is text, optional-text, texts, optional-texts (None: not
    narrowed), choice, positive, count (0 or more), flag or counts."""

    kind: str
    expected: str
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] = ()
    key: str | None = None
    # cdk.json may leave it out (the default applies); every other key must be there.
    optional: bool = False
    # texts: may be an empty list; `each` says what one entry must be (in messages at cold start).
    allow_empty: bool = False
    each: str = ""
    # Not in cdk.json: the stack derives the value (a document name from the name prefix).
    derived: bool = False

    # -- synth: from the cdk.json `runbook` context, ValueError naming the key ------------------------

    def from_context(self, key: str, value: Any) -> Any:
        def invalid(expected: str) -> ValueError:
            return ValueError(f"runbook setting {key!r}={value!r} is not valid; expected {expected}")

        if self.kind in ("text", "optional-text", "choice"):
            if value is None and self.kind == "optional-text":
                return None
            if not isinstance(value, str) or not self._accepts(value):
                raise invalid(self.expected)
            return value
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise invalid("true or false")
            return value
        if self.kind == "optional-texts" and value is None:
            return None
        if self.kind in ("positive", "count"):
            # bool is an int in Python; `true` in cdk.json is a mistake, not 1.
            lowest = 1 if self.kind == "positive" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise invalid("a positive whole number" if lowest else "a whole number, 0 or more")
            return value
        if self.kind in ("texts", "optional-texts"):
            if isinstance(value, list) and not value and (self.allow_empty or self.kind == "optional-texts"):
                return ()
            if not isinstance(value, list) or not value:
                raise invalid(f"a non-empty list of {self.expected}")
            for item in value:
                if not isinstance(item, str) or not self._accepts(item):
                    raise ValueError(f"runbook setting {key!r} has {item!r}; expected a list of {self.expected}")
            if len(set(value)) != len(value):
                raise ValueError(f"runbook setting {key!r} lists an entry twice: {value!r}")
            return tuple(value)
        if self.kind == "counts":
            if not isinstance(value, Mapping):
                raise invalid(f"an object of {self.expected} -> count, like {{{json.dumps(self.choices[0])}: 10}}")
            for name, count in value.items():
                if name not in self.choices:
                    raise ValueError(f"runbook setting {key!r} names {name!r}; expected only: {', '.join(self.choices)}")
                if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
                    raise ValueError(f"runbook setting {key!r} has {name!r}: {count!r}; expected a positive whole number")
            return dict(value)
        raise TypeError(f"unknown setting kind {self.kind!r}")

    # -- cold start: from the function's environment, InvalidInput naming the variable ---------------

    def from_env(self, name: str, raw: str) -> Any:
        if self.kind in ("text", "optional-text"):
            if not self._accepts(raw):
                raise InvalidInput(f"setting {name}={raw!r} is not valid; expected {self.expected}")
            return raw
        if self.kind == "choice":
            if raw not in self.choices:
                raise InvalidInput(f"setting {name}={raw!r} is not one of {', '.join(self.choices)}")
            return raw
        if self.kind == "flag":
            if raw not in ("true", "false"):
                raise InvalidInput(f"setting {name}={raw!r} is not true or false")
            return raw == "true"
        if self.kind in ("positive", "count"):
            try:
                number = int(raw)
            except ValueError as exc:
                raise InvalidInput(f"setting {name}={raw!r} is not a whole number") from exc
            if number < (1 if self.kind == "positive" else 0):
                if self.kind == "positive":
                    raise InvalidInput(
                        f"setting {name}={raw!r} is not a positive whole number: {name} must be a positive number of {self.expected}"
                    )
                raise InvalidInput(f"setting {name}={raw!r} is not valid: {name} must be a whole number of {self.expected}, zero or more")
            return number
        if self.kind in ("texts", "optional-texts"):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"setting {name}={raw!r} is not a JSON list of {self.expected}") from exc
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise InvalidInput(f"setting {name}={raw!r} is not a JSON list of {self.expected}")
            if not items and not (self.allow_empty or self.kind == "optional-texts"):
                raise InvalidInput(f"setting {name} is empty; name at least one of {self.expected}")
            for item in items:
                if not self._accepts(item):
                    raise InvalidInput(f"setting {name} names {item!r}, which is not {self.each or self.expected}")
            twice = sorted({item for item in items if items.count(item) > 1})
            if twice:
                raise InvalidInput(f"setting {name} names {', '.join(map(repr, twice))} more than once; name each once")
            return tuple(items)
        if self.kind == "counts":
            try:
                counts = json.loads(raw)
            except ValueError as exc:
                raise InvalidInput(f"setting {name}={raw!r} is not a JSON object of {self.expected} -> count") from exc
            if not isinstance(counts, dict) or any(
                r not in self.choices or isinstance(n, bool) or not isinstance(n, int) or n < 1 for r, n in counts.items()
            ):
                raise InvalidInput(f"setting {name}={raw!r} must map {self.expected} ({', '.join(self.choices)}) to whole numbers >= 1")
            return dict(counts)
        raise TypeError(f"unknown setting kind {self.kind!r}")

    def to_env(self, value: Any) -> str:
        if self.kind == "flag":
            return "true" if value else "false"
        if self.kind in ("texts", "optional-texts"):
            return json.dumps(list(value))
        if self.kind == "counts":
            return json.dumps(dict(value))
        return "" if value is None else str(value)

    def _accepts(self, value: str) -> bool:
        if self.choices:
            return value in self.choices
        return self.pattern is None or bool(self.pattern.fullmatch(value))


def setting(default: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field carrying its Setting; `default` is the value when cdk.json or the environment omits it."""
    metadata = {"setting": Setting(**spec)}
    if isinstance(default, list):
        return field(default_factory=lambda: tuple(default), metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def declared(cls: type) -> list[tuple[str, str, Setting, Any]]:
    """(field name, cdk.json key, Setting, default or MISSING) for every declared setting of `cls`."""
    result = []
    for f in fields(cls):
        spec = f.metadata.get("setting")
        if spec is None:
            continue
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else MISSING)
        result.append((f.name, spec.key or f.name, spec, default))
    return result


def context_keys(cls: type) -> set[str]:
    return {key for _, key, spec, _ in declared(cls) if not spec.derived}


def values_from_context(cls: type, context: Mapping[str, Any]) -> dict[str, Any]:
    """Field name -> value for every non-derived setting of `cls`, from the cdk.json `runbook` context."""
    values = {}
    for name, key, spec, default in declared(cls):
        if spec.derived:
            continue
        if key not in context:
            if spec.optional and default is not MISSING:
                values[name] = default
                continue
            raise ValueError(f"runbook setting {key!r} is missing from the 'runbook' context in cdk.json")
        values[name] = spec.from_context(key, context[key])
    _check_order(cls, values, lambda a, b, x, y: ValueError(f"runbook setting {a!r} must be <= {b!r} (got {x} > {y})"), str.lower)
    return values


def values_from_env(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """Field name -> value for every setting of `cls`, from a function's environment; unset means the default."""
    values = {}
    for name, key, spec, default in declared(cls):
        variable = key.upper()
        raw = env.get(variable, "")
        if not raw:
            if default is MISSING:
                raise InvalidInput(f"setting {variable} is not set on this function; redeploy the stack")
            values[name] = default
            continue
        values[name] = spec.from_env(variable, raw)
    _check_order(cls, values, lambda a, b, x, y: InvalidInput(f"settings need {a} <= {b} (got {x} > {y})"), str.upper)
    return values


def environment_of(instance: Any, cls: type | None = None) -> dict[str, str]:
    """The variables `values_from_env(cls, ...)` reads back into the same values; None is left unset."""
    return {
        key.upper(): spec.to_env(getattr(instance, name))
        for name, key, spec, _ in declared(cls or type(instance))
        if getattr(instance, name) is not None
    }


def check_declared(instance: Any) -> None:
    """Every text setting matches its declaration however the object was made (parsed, or built by hand)."""
    for name, key, spec, default in declared(type(instance)):
        value = getattr(instance, name)
        if value == default:
            continue  # a default stands for "not configured" (e.g. no secret in a unit test)
        if spec.kind in ("text", "optional-text") and isinstance(value, str):
            items: tuple[Any, ...] = (value,)
        elif spec.kind in ("texts", "optional-texts") and isinstance(value, tuple):
            items = value
        else:
            continue
        for item in items:
            if not spec._accepts(item):
                raise InvalidInput(f"setting {key.upper()}={item!r} is not valid; expected {spec.each or spec.expected}")


def _check_order(cls: type, values: Mapping[str, Any], error: Any, spell: Any) -> None:
    keys = {name: key for name, key, _, _ in declared(cls)}
    for low, high in getattr(cls, "ORDERED", ()):
        if values[low] > values[high]:
            raise error(spell(keys[low]), spell(keys[high]), values[low], values[high])


T = TypeVar("T")


def _from_env(cls: type[T], env: Mapping[str, str] | None) -> T:
    return cls(**values_from_env(cls, dict(os.environ if env is None else env)))


@dataclass(frozen=True, kw_only=True)
class RunbookSettings:
    """What the restore, cutover and rollback steps read."""

    source_instance: str = setting(kind="text", pattern=RDS_IDENTIFIER, expected="an RDS instance identifier")
    # Every instance a workflow may take as its source_instance: each is fenced by name in every IAM
    # deny (stacks/permissions/rds.py), and an input naming any other is refused before anything changes.
    # The configured source is always one of them; left out (or null) it is the only one.
    production_instances: tuple[str, ...] | None = setting(
        None,
        kind="optional-texts",
        pattern=RDS_IDENTIFIER,
        expected="RDS instance identifiers",
        each="an RDS instance identifier",
        optional=True,
    )
    database_name: str = setting("irisx", kind="text", pattern=SQL_IDENTIFIER, expected="a plain SQL identifier")
    db_secret_arn: str = setting("", kind="text", pattern=SECRET_ARN, expected="a Secrets Manager secret ARN")
    validation_tables: tuple[str, ...] = setting(
        ["tenants", "users", "calls", "api_keys"],
        kind="texts",
        pattern=SQL_IDENTIFIER,
        expected="plain SQL identifiers",
        each="a plain SQL identifier",
    )
    recency_column: str = setting("created_at", kind="text", pattern=SQL_IDENTIFIER, expected="a plain SQL identifier")
    statement_timeout_ms: int = setting(60000, kind="positive", expected="milliseconds")
    management_tag_key: str = setting(DEFAULT_MANAGEMENT_TAG_KEY, kind="text", pattern=TAG_PART, expected="a tag key (1-128 characters)")
    management_tag_value: str = setting(
        DEFAULT_MANAGEMENT_TAG_VALUE, kind="text", pattern=TAG_PART, expected="a tag value (1-128 characters)"
    )
    restore_poll_initial_seconds: int = setting(15, kind="positive", expected="seconds")
    restore_poll_max_seconds: int = setting(120, kind="positive", expected="seconds")
    restore_poll_max_attempts: int = setting(90, kind="positive", expected="attempts")
    expected_restore_minutes: int = setting(20, kind="positive", expected="minutes")
    db_subnet_group_name: str = setting("", kind="text", pattern=SUBNET_GROUP, expected="a DB subnet group name")
    # How the validate step connects: TLS required by default; verify-full with the RDS CA bundle is stricter.
    db_sslmode: str = setting("require", kind="choice", choices=SSL_MODES, expected="a libpq sslmode", optional=True)
    db_sslrootcert: str | None = setting(
        None, kind="optional-text", expected="a path to the CA bundle, readable by the function", optional=True
    )
    # Cutover and rollback on the API hosts (SSM Run Command); the SSM documents' own allowedPatterns,
    # so a value SSM would refuse stops synth instead.
    app_host_tag_key: str = setting("irisx:role", kind="text", pattern=TAG_PART, expected="a tag key (1-128 characters)")
    app_host_tag_value: str = setting("irisx-api", kind="text", pattern=TAG_PART, expected="a tag value (1-128 characters)")
    app_env_file: str = setting(
        "/home/ubuntu/irisx-backend/.env", kind="text", pattern=re.compile(ENV_FILE_PATTERN), expected="an absolute path to the app's .env"
    )
    app_pm2_name: str = setting("irisx-api", kind="text", pattern=re.compile(APP_NAME_PATTERN), expected="a pm2 process name")
    app_health_url: str = setting(
        "http://localhost:3000/health", kind="text", pattern=re.compile(HEALTH_URL_PATTERN), expected="an http(s) URL read on the host"
    )
    set_db_host_document: str = setting(
        document_name(DEFAULT_NAME_PREFIX, SET_DB_HOST_DOCUMENT), kind="text", expected="an SSM document name", derived=True
    )
    app_control_document: str = setting(
        document_name(DEFAULT_NAME_PREFIX, APP_CONTROL_DOCUMENT), kind="text", expected="an SSM document name", derived=True
    )
    command_poll_seconds: int = setting(5, kind="positive", expected="seconds")
    command_poll_max_attempts: int = setting(24, kind="positive", expected="attempts")
    health_check_attempts: int = setting(6, kind="positive", expected="attempts")
    health_check_interval_seconds: int = setting(10, kind="positive", expected="seconds")

    # Validating a large, cold copy (validation/counts.py, integrity.py, warm.py): the gating checks stay
    # cheap at any size; row counts are a time-boxed report unless required. A table list left out (or
    # null) means every validation table; [] means none.
    count_budget_seconds: int = setting(20, kind="positive", expected="seconds", optional=True)
    counts_required: bool = setting(False, kind="flag", expected="true or false", optional=True)
    integrity_check_tables: tuple[str, ...] | None = setting(
        None, kind="optional-texts", pattern=SQL_IDENTIFIER, expected="plain SQL identifiers", each="a plain SQL identifier", optional=True
    )
    # Indexes checked too, before the tables' (say only the primary keys of a table too large for the
    # budget; leave that table out of integrity_check_tables, or all its indexes are checked as well).
    integrity_check_indexes: tuple[str, ...] | None = setting(
        None, kind="optional-texts", pattern=SQL_IDENTIFIER, expected="plain SQL identifiers", each="a plain SQL identifier", optional=True
    )
    integrity_required: bool = setting(False, kind="flag", expected="true or false", optional=True)
    # The whole index check's time: no index is started once it is spent, and each runs under what is left.
    integrity_budget_seconds: int = setting(INTEGRITY_BUDGET_DEFAULT_SECONDS, kind="positive", expected="seconds", optional=True)
    warm_budget_seconds: int = setting(120, kind="positive", expected="seconds", optional=True)
    warm_tables: tuple[str, ...] | None = setting(
        None, kind="optional-texts", pattern=SQL_IDENTIFIER, expected="plain SQL identifiers", each="a plain SQL identifier", optional=True
    )

    # The monthly restore drill (drill/): the runbook's RTO/RPO objectives, how long a person may keep
    # the copy, how long its teardown may take, when the daily sweep deletes a leftover copy, and when a
    # drill is overdue. The schedule (EventBridge Scheduler) is the stack's; disabled means created DISABLED.
    drill_rto_point_in_time_minutes: int = setting(30, kind="positive", expected="minutes", optional=True)
    drill_rto_snapshot_minutes: int = setting(20, kind="positive", expected="minutes", optional=True)
    drill_rpo_minutes: int = setting(5, kind="positive", expected="minutes", optional=True)
    drill_max_keep_minutes: int = setting(240, kind="count", expected="minutes", optional=True)
    drill_overstay_minutes: int = setting(5, kind="positive", expected="minutes", optional=True)
    drill_teardown_minutes: int = setting(30, kind="positive", expected="minutes", optional=True)
    drill_lifetime_hours: int = setting(12, kind="positive", expected="hours", optional=True)
    drill_overdue_days: int = setting(35, kind="positive", expected="days", optional=True)
    drill_schedule: str = setting(
        "cron(0 10 ? * TUE#1 *)", kind="text", pattern=DRILL_CRON, expected="an EventBridge Scheduler cron(...) expression", optional=True
    )
    drill_schedule_timezone: str = setting("UTC", kind="text", pattern=TIME_ZONE, expected="an IANA time zone like UTC", optional=True)
    drill_schedule_enabled: bool = setting(True, kind="flag", expected="true or false", optional=True)
    # Per recordings bucket, how many keys with an older version a drill copies to the work bucket's
    # scratch prefix and compares (0: the drill does not check recordings).
    drill_recordings_keys: int = setting(3, kind="count", expected="keys per recordings bucket", optional=True)

    # Restoring call recordings from S3 versions (recordings/): the versioned buckets this tool may
    # restore in (and write to), how a plan is cut into batches, and how many failed keys still pass.
    # The work bucket (plans, results) is the stack's: its name reaches only the recordings functions.
    recordings_buckets: tuple[str, ...] = setting(
        ["irisx-prod-recordings-672e7c49", "irisx-recordings"],
        kind="texts",
        pattern=BUCKET_NAME,
        expected="S3 bucket names",
        each="an S3 bucket name",
        optional=True,
    )
    recordings_work_bucket: str | None = setting(
        None, kind="optional-text", pattern=BUCKET_NAME, expected="an S3 bucket name", derived=True
    )
    recordings_batch_size: int = setting(100, kind="positive", expected="entries per batch", optional=True)
    recordings_tolerated_failures: int = setting(0, kind="count", expected="failed keys", optional=True)
    recordings_version_retention_days: int = setting(30, kind="positive", expected="days", optional=True)
    recordings_list_page_size: int = setting(1000, kind="positive", expected="keys per ListObjectVersions page", optional=True)
    recordings_pages_per_invocation: int = setting(200, kind="positive", expected="pages", optional=True)

    # The in-place restore's swap (inplace/): how a rename is followed (RDS renames take 10-15 minutes and
    # read `available` once just before their reboot), and the suffix the replaced production is renamed with.
    rename_poll_seconds: int = setting(20, kind="positive", expected="seconds", optional=True)
    rename_poll_max_attempts: int = setting(90, kind="positive", expected="attempts", optional=True)
    rename_stable_reads: int = setting(3, kind="positive", expected="consecutive reads", optional=True)
    replaced_suffix_format: str = setting(
        "-replaced-%Y%m%d-%H%M",
        kind="text",
        pattern=REPLACED_SUFFIX_FORMAT,
        expected="a strftime suffix like -replaced-%Y%m%d-%H%M",
        optional=True,
    )

    ORDERED: ClassVar = (("restore_poll_initial_seconds", "restore_poll_max_seconds"),)

    @classmethod
    def setting_error(cls, at_cold_start: str, at_synth: str) -> Exception:
        """A relation between settings broken: named as the function's variables (the stack names cdk.json keys)."""
        return InvalidInput(at_cold_start)

    def __post_init__(self) -> None:
        check_declared(self)
        # The warm-up step's function has 10 minutes (as the validate step): the budget must leave it time to report.
        if self.warm_budget_seconds > WARM_BUDGET_LIMIT_SECONDS:
            raise self.setting_error(
                f"setting WARM_BUDGET_SECONDS={self.warm_budget_seconds} is above {WARM_BUDGET_LIMIT_SECONDS}: the warm-up step "
                "runs in a 10-minute function and must stop in time to report what it read",
                f"runbook setting 'warm_budget_seconds'={self.warm_budget_seconds} is above {WARM_BUDGET_LIMIT_SECONDS}: "
                "the warm-up step runs in a 10-minute function and must stop in time to report what it read",
            )
        # The validate step's checks must stop in time for its 10-minute function to report a good copy as good.
        if self.integrity_budget_seconds > VALIDATE_BUDGET_LIMIT_SECONDS:
            raise self.setting_error(
                f"setting INTEGRITY_BUDGET_SECONDS={self.integrity_budget_seconds} is above {VALIDATE_BUDGET_LIMIT_SECONDS}: the "
                "validate step runs in a 10-minute function and its index check must stop in time to report",
                f"runbook setting 'integrity_budget_seconds'={self.integrity_budget_seconds} is above "
                f"{VALIDATE_BUDGET_LIMIT_SECONDS}: the validate step runs in a 10-minute function and its index check must "
                "stop in time to report",
            )
        counting = self.count_budget_seconds * len(self.validation_tables)
        if counting > VALIDATE_BUDGET_LIMIT_SECONDS:
            raise self.setting_error(
                f"setting COUNT_BUDGET_SECONDS={self.count_budget_seconds} for each of the {len(self.validation_tables)} "
                f"VALIDATION_TABLES is {counting} s of counting, above {VALIDATE_BUDGET_LIMIT_SECONDS}: the validate step runs "
                "in a 10-minute function and its counts must stop in time to report",
                f"runbook setting 'count_budget_seconds'={self.count_budget_seconds} for each of the "
                f"{len(self.validation_tables)} 'validation_tables' is {counting} s of counting, above "
                f"{VALIDATE_BUDGET_LIMIT_SECONDS}: the validate step runs in a 10-minute function and its counts must stop "
                "in time to report",
            )
        # The sweep must never delete the copy of a drill that is still within its allowed run.
        if self.drill_lifetime_hours * 60 <= self.drill_max_keep_minutes:
            raise self.setting_error(
                "setting DRILL_LIFETIME_HOURS must be longer than DRILL_MAX_KEEP_MINUTES, or the sweep deletes kept copies",
                "runbook setting 'drill_lifetime_hours' must be longer than 'drill_max_keep_minutes', "
                "or the daily sweep deletes copies a drill is still keeping",
            )
        # Every key is copied and read back twice inside one 5-minute function.
        if self.drill_recordings_keys > DRILL_RECORDINGS_KEYS_LIMIT:
            raise self.setting_error(
                f"setting DRILL_RECORDINGS_KEYS={self.drill_recordings_keys} is above {DRILL_RECORDINGS_KEYS_LIMIT}: each key is "
                "copied and read back inside one 5-minute function",
                f"runbook setting 'drill_recordings_keys'={self.drill_recordings_keys} is above {DRILL_RECORDINGS_KEYS_LIMIT}: "
                "each key is copied and read back inside one 5-minute function",
            )
        # The replaced production's new name must be an RDS identifier and differ from one swap to the next.
        example = datetime(2025, 11, 2, 3, 7, 0).strftime(self.replaced_suffix_format)
        if not REPLACED_SUFFIX.fullmatch(example) or example == datetime(2025, 11, 3, 4, 8, 0).strftime(self.replaced_suffix_format):
            rule = "must give a suffix of letters, digits and single hyphens that starts with '-' and changes with the time"
            raise self.setting_error(
                f"setting REPLACED_SUFFIX_FORMAT={self.replaced_suffix_format!r} {rule} (e.g. -replaced-%Y%m%d-%H%M)",
                f"runbook setting 'replaced_suffix_format'={self.replaced_suffix_format!r} {rule} (e.g. -replaced-%Y%m%d-%H%M)",
            )

    @property
    def production_names(self) -> tuple[str, ...]:
        """The fenced production instances in the lower case RDS stores them in, the configured source first."""
        return tuple(dict.fromkeys(name.lower() for name in (self.source_instance, *(self.production_instances or ()))))

    @property
    def integrity_tables(self) -> tuple[str, ...]:
        return self.validation_tables if self.integrity_check_tables is None else self.integrity_check_tables

    @property
    def warm_up_tables(self) -> tuple[str, ...]:
        return self.validation_tables if self.warm_tables is None else self.warm_tables

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunbookSettings:
        return _from_env(cls, env)


@dataclass(frozen=True, kw_only=True)
class SnapshotSettings:
    """What the snapshot workflow's steps read (cdk.json keys and variables `snapshot_*`)."""

    def __post_init__(self) -> None:
        check_declared(self)

    prefix: str = setting(
        "irisx", key="snapshot_prefix", kind="text", pattern=SNAPSHOT_PREFIX, expected="lower-case letters, digits and -, at most 30"
    )
    keep_last: Mapping[str, int] = setting({}, key="snapshot_keep_last", kind="counts", choices=SNAPSHOT_REASONS, expected="reasons")
    poll_initial_seconds: int = setting(30, key="snapshot_poll_initial_seconds", kind="positive", expected="seconds", optional=True)
    poll_max_seconds: int = setting(300, key="snapshot_poll_max_seconds", kind="positive", expected="seconds", optional=True)
    poll_max_attempts: int = setting(120, key="snapshot_poll_max_attempts", kind="positive", expected="attempts")

    ORDERED: ClassVar = (("poll_initial_seconds", "poll_max_seconds"),)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SnapshotSettings:
        return _from_env(cls, env)


@lru_cache(maxsize=1)
def settings() -> RunbookSettings:
    return RunbookSettings.from_env()
