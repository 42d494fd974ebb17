"""The runbook's settings as the stack sees them: read once from the `runbook` context, checked, typed.

The same names reach the Lambda functions as environment variables (`lambda_environment`), where
`lambdas/restore_runbook/settings.py` reads them again at cold start. Checking here as well means a
typo in `cdk.json` stops `cdk synth` with the key's name instead of failing a restore half-way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from stacks import ssm_documents

SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RDS_IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
# The runbook's own examples ("vpc-xxxxxx", "sg-xxxxxx") are accepted: the prefix is what is checked.
VPC_ID = re.compile(r"^vpc-[0-9a-zA-Z]+$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-zA-Z]+$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-zA-Z]+$")
AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")
SUBNET_GROUP = re.compile(r"^[A-Za-z0-9 ._-]{1,255}$")
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The snapshot workflow's reasons (lambdas/restore_runbook/snapshot/snapshots.py REASONS).
SNAPSHOT_REASONS = ("pre-migration", "bulk-operation", "upgrade", "config-change", "manual")
TAG_PART = re.compile(r"^[\w .:/=+@-]{1,128}$")
# recordings-restore: S3's bucket naming rules (3-63 lower-case letters, digits, dots and hyphens).
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class StackSettings:
    source_instance: str
    database_name: str
    db_secret_arn: str
    validation_tables: tuple[str, ...]
    recency_column: str
    statement_timeout_ms: int
    management_tag_key: str
    management_tag_value: str
    restore_poll_initial_seconds: int
    restore_poll_max_seconds: int
    restore_poll_max_attempts: int
    expected_restore_minutes: int
    vpc_id: str
    subnet_ids: tuple[str, ...]
    availability_zones: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    db_subnet_group_name: str
    account: str
    region: str
    name_prefix: str
    # Cutover and rollback on the API hosts, through the project's SSM Command documents.
    app_host_tag_key: str
    app_host_tag_value: str
    app_env_file: str
    app_pm2_name: str
    app_health_url: str
    command_poll_seconds: int
    command_poll_max_attempts: int
    health_check_attempts: int
    health_check_interval_seconds: int
    # The journal's notifications and the snapshot workflow (stacks/journal.py, stacks/snapshot_workflow.py).
    notify_emails: tuple[str, ...]
    snapshot_prefix: str
    snapshot_keep_last: Mapping[str, int]
    snapshot_poll_max_attempts: int
    # ------------------------------------------------------------------ recordings-restore (S3 versions)
    recordings_buckets: tuple[str, ...]
    recordings_work_bucket: str
    recordings_batch_size: int
    recordings_tolerated_failures: int
    recordings_version_retention_days: int

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> StackSettings:
        if not isinstance(context, Mapping):
            raise ValueError("context key 'runbook' is missing or not an object; see cdk.json for the expected settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(context) - known)
        if unknown:
            raise ValueError(f"runbook setting(s) {', '.join(unknown)} unknown; expected only: {', '.join(sorted(known))}")
        reader = _Reader(context)
        settings = cls(
            source_instance=reader.text("source_instance", RDS_IDENTIFIER, "an RDS instance identifier"),
            database_name=reader.text("database_name", SQL_IDENTIFIER, "a plain SQL identifier"),
            db_secret_arn=reader.text("db_secret_arn", SECRET_ARN, "a Secrets Manager secret ARN"),
            validation_tables=reader.texts("validation_tables", SQL_IDENTIFIER, "plain SQL identifiers"),
            recency_column=reader.text("recency_column", SQL_IDENTIFIER, "a plain SQL identifier"),
            statement_timeout_ms=reader.positive("statement_timeout_ms"),
            management_tag_key=reader.text("management_tag_key", TAG_PART, "a tag key (1-128 characters)"),
            management_tag_value=reader.text("management_tag_value", TAG_PART, "a tag value (1-128 characters)"),
            restore_poll_initial_seconds=reader.positive("restore_poll_initial_seconds"),
            restore_poll_max_seconds=reader.positive("restore_poll_max_seconds"),
            restore_poll_max_attempts=reader.positive("restore_poll_max_attempts"),
            expected_restore_minutes=reader.positive("expected_restore_minutes"),
            vpc_id=reader.text("vpc_id", VPC_ID, "a VPC id like vpc-0abc..."),
            subnet_ids=reader.texts("subnet_ids", SUBNET_ID, "subnet ids like subnet-0abc..."),
            availability_zones=reader.texts("availability_zones", AVAILABILITY_ZONE, "availability zones like us-east-1a"),
            security_group_ids=reader.texts("security_group_ids", SECURITY_GROUP_ID, "security group ids like sg-0abc..."),
            db_subnet_group_name=reader.text("db_subnet_group_name", SUBNET_GROUP, "a DB subnet group name"),
            account=reader.text("account", ACCOUNT, "a 12-digit AWS account id"),
            region=reader.text("region", REGION, "an AWS region like us-east-1"),
            name_prefix=reader.text("name_prefix", NAME_PREFIX, "lower-case letters, digits and -, at most 30"),
            app_host_tag_key=reader.text("app_host_tag_key", TAG_PART, "a tag key (1-128 characters)"),
            app_host_tag_value=reader.text("app_host_tag_value", TAG_PART, "a tag value (1-128 characters)"),
            # The SSM documents' own allowedPatterns: a setting SSM would refuse stops synth instead.
            app_env_file=reader.text("app_env_file", re.compile(ssm_documents.ENV_FILE_PATTERN), "an absolute path to the app's .env"),
            app_pm2_name=reader.text("app_pm2_name", re.compile(ssm_documents.APP_NAME_PATTERN), "a pm2 process name"),
            app_health_url=reader.text("app_health_url", re.compile(ssm_documents.HEALTH_URL_PATTERN), "an http(s) URL read on the host"),
            command_poll_seconds=reader.positive("command_poll_seconds"),
            command_poll_max_attempts=reader.positive("command_poll_max_attempts"),
            health_check_attempts=reader.positive("health_check_attempts"),
            health_check_interval_seconds=reader.positive("health_check_interval_seconds"),
            notify_emails=reader.texts("notify_emails", EMAIL, "e-mail addresses", allow_empty=True),
            snapshot_prefix=reader.text("snapshot_prefix", NAME_PREFIX, "lower-case letters, digits and -, at most 30"),
            snapshot_keep_last=reader.counts("snapshot_keep_last", SNAPSHOT_REASONS),
            snapshot_poll_max_attempts=reader.positive("snapshot_poll_max_attempts"),
            # ------------------------------------------------------------------ recordings-restore
            recordings_buckets=reader.texts("recordings_buckets", S3_BUCKET, "S3 bucket names"),
            recordings_work_bucket=reader.text("recordings_work_bucket", S3_BUCKET, "an S3 bucket name (the stack creates it)"),
            recordings_batch_size=reader.positive("recordings_batch_size"),
            recordings_tolerated_failures=reader.non_negative("recordings_tolerated_failures"),
            recordings_version_retention_days=reader.positive("recordings_version_retention_days"),
        )
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if self.restore_poll_initial_seconds > self.restore_poll_max_seconds:
            raise ValueError(
                "runbook setting 'restore_poll_initial_seconds' must be <= 'restore_poll_max_seconds' "
                f"(got {self.restore_poll_initial_seconds} > {self.restore_poll_max_seconds})"
            )
        if len(self.subnet_ids) != len(self.availability_zones):
            raise ValueError(
                "runbook settings 'subnet_ids' and 'availability_zones' must have the same length "
                "(one availability zone per subnet, in the same order)"
            )
        for zone in self.availability_zones:
            if not zone.startswith(self.region):
                raise ValueError(f"runbook setting 'availability_zones' has {zone!r}, which is not in region {self.region!r}")
        arn_region, arn_account = self.db_secret_arn.split(":")[3:5]
        if (arn_region, arn_account) != (self.region, self.account):
            raise ValueError(
                f"runbook setting 'db_secret_arn' points at {arn_region}/{arn_account}, "
                f"expected the stack's region/account {self.region}/{self.account}"
            )

    def placeholders(self) -> list[str]:
        """Keys still holding the runbook's example ids (`vpc-xxxxxx`): fine to synth, not to deploy."""
        network = {
            "vpc_id": (self.vpc_id,),
            "subnet_ids": self.subnet_ids,
            "security_group_ids": self.security_group_ids,
            "db_subnet_group_name": (self.db_subnet_group_name,),
        }
        return [key for key, values in network.items() if any("xxxxxx" in value for value in values)]

    def document_name(self, document: ssm_documents.CommandDocument) -> str:
        return document.name(self.name_prefix)

    def lambda_environment(self) -> dict[str, str]:
        """The variables `lambdas/restore_runbook/settings.py` reads, spelled as it reads them."""
        return {
            "SOURCE_INSTANCE": self.source_instance,
            "DATABASE_NAME": self.database_name,
            "DB_SECRET_ARN": self.db_secret_arn,
            "VALIDATION_TABLES": json.dumps(list(self.validation_tables)),
            "RECENCY_COLUMN": self.recency_column,
            "STATEMENT_TIMEOUT_MS": str(self.statement_timeout_ms),
            "MANAGEMENT_TAG_KEY": self.management_tag_key,
            "MANAGEMENT_TAG_VALUE": self.management_tag_value,
            "RESTORE_POLL_INITIAL_SECONDS": str(self.restore_poll_initial_seconds),
            "RESTORE_POLL_MAX_SECONDS": str(self.restore_poll_max_seconds),
            "RESTORE_POLL_MAX_ATTEMPTS": str(self.restore_poll_max_attempts),
            "EXPECTED_RESTORE_MINUTES": str(self.expected_restore_minutes),
            "DB_SUBNET_GROUP_NAME": self.db_subnet_group_name,
            "APP_HOST_TAG_KEY": self.app_host_tag_key,
            "APP_HOST_TAG_VALUE": self.app_host_tag_value,
            "APP_ENV_FILE": self.app_env_file,
            "APP_PM2_NAME": self.app_pm2_name,
            "APP_HEALTH_URL": self.app_health_url,
            "SET_DB_HOST_DOCUMENT": self.document_name(ssm_documents.SET_DB_HOST),
            "APP_CONTROL_DOCUMENT": self.document_name(ssm_documents.APP_CONTROL),
            "COMMAND_POLL_SECONDS": str(self.command_poll_seconds),
            "COMMAND_POLL_MAX_ATTEMPTS": str(self.command_poll_max_attempts),
            "HEALTH_CHECK_ATTEMPTS": str(self.health_check_attempts),
            "HEALTH_CHECK_INTERVAL_SECONDS": str(self.health_check_interval_seconds),
            "SNAPSHOT_PREFIX": self.snapshot_prefix,
            "SNAPSHOT_KEEP_LAST": json.dumps(dict(self.snapshot_keep_last)),
            "SNAPSHOT_POLL_MAX_ATTEMPTS": str(self.snapshot_poll_max_attempts),
            # ------------------------------------------------------------------ recordings-restore
            "RECORDINGS_BUCKETS": json.dumps(list(self.recordings_buckets)),
            "RECORDINGS_WORK_BUCKET": self.recordings_work_bucket,
            "RECORDINGS_BATCH_SIZE": str(self.recordings_batch_size),
            "RECORDINGS_TOLERATED_FAILURES": str(self.recordings_tolerated_failures),
            "RECORDINGS_VERSION_RETENTION_DAYS": str(self.recordings_version_retention_days),
        }


class _Reader:
    """Reads one key at a time, so every error names the key and what it should hold."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._context = context

    def _get(self, key: str) -> Any:
        if key not in self._context:
            raise ValueError(f"runbook setting {key!r} is missing from the 'runbook' context in cdk.json")
        return self._context[key]

    def text(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"runbook setting {key!r}={value!r} is not valid; expected {expected}")
        return value

    def texts(self, key: str, pattern: re.Pattern[str], expected: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self._get(key)
        if isinstance(value, list) and not value and allow_empty:
            return ()
        if not isinstance(value, list) or not value:
            raise ValueError(f"runbook setting {key!r}={value!r} is not valid; expected a non-empty list of {expected}")
        for item in value:
            if not isinstance(item, str) or not pattern.match(item):
                raise ValueError(f"runbook setting {key!r} has {item!r}; expected a list of {expected}")
        if len(set(value)) != len(value):
            raise ValueError(f"runbook setting {key!r} lists an entry twice: {value!r}")
        return tuple(value)

    def counts(self, key: str, allowed: tuple[str, ...]) -> dict[str, int]:
        value = self._get(key)
        if not isinstance(value, Mapping):
            raise ValueError(f'runbook setting {key!r}={value!r} is not valid; expected an object like {{"pre-migration": 10}}')
        for name, count in value.items():
            if name not in allowed:
                raise ValueError(f"runbook setting {key!r} names {name!r}; expected only: {', '.join(allowed)}")
            if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
                raise ValueError(f"runbook setting {key!r} has {name!r}: {count!r}; expected a positive whole number")
        return dict(value)

    def non_negative(self, key: str) -> int:  # recordings-restore
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"runbook setting {key!r}={value!r} is not valid; expected a whole number >= 0")
        return value

    def positive(self, key: str) -> int:
        value = self._get(key)
        # bool is an int in Python; `true` in cdk.json is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"runbook setting {key!r}={value!r} is not valid; expected a positive whole number")
        return value
