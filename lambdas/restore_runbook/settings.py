"""Settings for every Lambda step, read once from the environment at cold start.

The CDK stack writes these variables from the validated `cdk.json` context; reading them here
again, typed and checked, means a mis-set function fails at its first invocation with a plain
message instead of half-way through a restore.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from restore_runbook.common.errors import InvalidInput

SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
RDS_IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")


@dataclass(frozen=True)
class RunbookSettings:
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
    db_subnet_group_name: str
    db_sslmode: str = "require"
    db_sslrootcert: str | None = None
    # Cutover and rollback on the API hosts (SSM Run Command); defaults are IRISX's.
    app_host_tag_key: str = "irisx:role"
    app_host_tag_value: str = "irisx-api"
    app_env_file: str = "/home/ubuntu/irisx-backend/.env"
    app_pm2_name: str = "irisx-api"
    app_health_url: str = "http://localhost:3000/health"
    set_db_host_document: str = "irisx-restore-set-db-host"
    app_control_document: str = "irisx-restore-app-control"
    command_poll_seconds: int = 5
    command_poll_max_attempts: int = 24
    health_check_attempts: int = 6
    health_check_interval_seconds: int = 10
    # ------------------------------------------------------------------ recordings-restore (S3 versions)
    recordings_buckets: tuple[str, ...] = ("irisx-prod-recordings-672e7c49", "irisx-recordings")
    recordings_work_bucket: str = ""
    recordings_batch_size: int = 100
    recordings_tolerated_failures: int = 0
    recordings_version_retention_days: int = 30
    recordings_list_page_size: int = 1000
    recordings_pages_per_invocation: int = 200

    def __post_init__(self) -> None:
        if not RDS_IDENTIFIER.match(self.source_instance):
            raise InvalidInput(f"setting SOURCE_INSTANCE={self.source_instance!r} is not a valid RDS identifier")
        for name in (*self.validation_tables, self.recency_column, self.database_name):
            if not SQL_IDENTIFIER.match(name):
                raise InvalidInput(f"setting names {name!r}, which is not a plain SQL identifier (letters, digits, _)")
        if not self.validation_tables:
            raise InvalidInput("setting VALIDATION_TABLES is empty; name at least one table to check")
        if self.statement_timeout_ms <= 0:
            raise InvalidInput("setting STATEMENT_TIMEOUT_MS must be a positive number of milliseconds")
        if not 0 < self.restore_poll_initial_seconds <= self.restore_poll_max_seconds:
            raise InvalidInput("settings need 0 < RESTORE_POLL_INITIAL_SECONDS <= RESTORE_POLL_MAX_SECONDS")
        if self.db_sslmode not in SSL_MODES:
            raise InvalidInput(f"setting DB_SSLMODE={self.db_sslmode!r} is not one of {', '.join(SSL_MODES)}")
        if self.expected_restore_minutes <= 0:
            raise InvalidInput("setting EXPECTED_RESTORE_MINUTES must be positive")
        if self.restore_poll_max_attempts <= 0:
            raise InvalidInput("setting RESTORE_POLL_MAX_ATTEMPTS must be positive")
        for name in ("command_poll_seconds", "command_poll_max_attempts", "health_check_attempts", "health_check_interval_seconds"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"setting {name.upper()} must be a positive whole number")
        if not self.app_host_tag_key or not self.app_host_tag_value:
            raise InvalidInput("settings APP_HOST_TAG_KEY and APP_HOST_TAG_VALUE must name the tag that marks the API hosts")
        # recordings-restore
        if not self.recordings_buckets:
            raise InvalidInput("setting RECORDINGS_BUCKETS is empty; name the versioned recording buckets")
        for name in ("recordings_batch_size", "recordings_version_retention_days", "recordings_list_page_size"):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"setting {name.upper()} must be a positive whole number")
        if self.recordings_pages_per_invocation <= 0:
            raise InvalidInput("setting RECORDINGS_PAGES_PER_INVOCATION must be a positive whole number")
        if self.recordings_tolerated_failures < 0:
            raise InvalidInput("setting RECORDINGS_TOLERATED_FAILURES must be 0 or more")
        if self.recordings_list_page_size > 1000:
            raise InvalidInput("setting RECORDINGS_LIST_PAGE_SIZE must be at most 1000, ListObjectVersions' own limit")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RunbookSettings:
        env = dict(os.environ if env is None else env)

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise InvalidInput(f"setting {name} is not set on this function; redeploy the stack")
            return value

        def integer(name: str, default: int) -> int:
            raw = env.get(name, str(default))
            try:
                return int(raw)
            except ValueError as exc:
                raise InvalidInput(f"setting {name}={raw!r} is not a whole number") from exc

        tables_raw = env.get("VALIDATION_TABLES", '["tenants", "users", "calls", "api_keys"]')
        try:
            tables = json.loads(tables_raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"setting VALIDATION_TABLES={tables_raw!r} is not a JSON list of table names") from exc
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            raise InvalidInput(f"setting VALIDATION_TABLES={tables_raw!r} is not a JSON list of table names")

        return cls(
            source_instance=required("SOURCE_INSTANCE"),
            database_name=env.get("DATABASE_NAME", "irisx"),
            db_secret_arn=env.get("DB_SECRET_ARN", ""),
            validation_tables=tuple(tables),
            recency_column=env.get("RECENCY_COLUMN", "created_at"),
            statement_timeout_ms=integer("STATEMENT_TIMEOUT_MS", 60000),
            management_tag_key=env.get("MANAGEMENT_TAG_KEY", "irisx-restore:managed-by"),
            management_tag_value=env.get("MANAGEMENT_TAG_VALUE", "restore-runbook"),
            restore_poll_initial_seconds=integer("RESTORE_POLL_INITIAL_SECONDS", 15),
            restore_poll_max_seconds=integer("RESTORE_POLL_MAX_SECONDS", 120),
            restore_poll_max_attempts=integer("RESTORE_POLL_MAX_ATTEMPTS", 90),
            expected_restore_minutes=integer("EXPECTED_RESTORE_MINUTES", 20),
            db_subnet_group_name=env.get("DB_SUBNET_GROUP_NAME", ""),
            db_sslmode=env.get("DB_SSLMODE", "require"),
            db_sslrootcert=env.get("DB_SSLROOTCERT") or None,
            app_host_tag_key=env.get("APP_HOST_TAG_KEY", "irisx:role"),
            app_host_tag_value=env.get("APP_HOST_TAG_VALUE", "irisx-api"),
            app_env_file=env.get("APP_ENV_FILE", "/home/ubuntu/irisx-backend/.env"),
            app_pm2_name=env.get("APP_PM2_NAME", "irisx-api"),
            app_health_url=env.get("APP_HEALTH_URL", "http://localhost:3000/health"),
            set_db_host_document=env.get("SET_DB_HOST_DOCUMENT", "irisx-restore-set-db-host"),
            app_control_document=env.get("APP_CONTROL_DOCUMENT", "irisx-restore-app-control"),
            command_poll_seconds=integer("COMMAND_POLL_SECONDS", 5),
            command_poll_max_attempts=integer("COMMAND_POLL_MAX_ATTEMPTS", 24),
            health_check_attempts=integer("HEALTH_CHECK_ATTEMPTS", 6),
            health_check_interval_seconds=integer("HEALTH_CHECK_INTERVAL_SECONDS", 10),
            # ------------------------------------------------------------------ recordings-restore
            recordings_buckets=_text_list(env, "RECORDINGS_BUCKETS", '["irisx-prod-recordings-672e7c49", "irisx-recordings"]'),
            recordings_work_bucket=env.get("RECORDINGS_WORK_BUCKET", ""),
            recordings_batch_size=integer("RECORDINGS_BATCH_SIZE", 100),
            recordings_tolerated_failures=integer("RECORDINGS_TOLERATED_FAILURES", 0),
            recordings_version_retention_days=integer("RECORDINGS_VERSION_RETENTION_DAYS", 30),
            recordings_list_page_size=integer("RECORDINGS_LIST_PAGE_SIZE", 1000),
            recordings_pages_per_invocation=integer("RECORDINGS_PAGES_PER_INVOCATION", 200),
        )


def _text_list(env: dict[str, str], name: str, default: str) -> tuple[str, ...]:
    raw = env.get(name, default)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"setting {name}={raw!r} is not a JSON list of names") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(f"setting {name}={raw!r} is not a JSON list of names")
    return tuple(value)


@lru_cache(maxsize=1)
def settings() -> RunbookSettings:
    return RunbookSettings.from_env()
