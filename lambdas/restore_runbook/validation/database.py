"""Connections to a PostgreSQL database the validate step inspects (never changes).

Every connection the validation opens goes through `connect()` here, looked up on this module at
call time, so the rehearsal can map an emulated RDS endpoint to its local cluster by wrapping this
one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2.extensions import connection

if TYPE_CHECKING:
    from restore_runbook.settings import RunbookSettings

APPLICATION_NAME = "irisx-restore-validate"


@dataclass(frozen=True)
class DbTarget:
    """Where a database is and how to log in; the password never appears in repr() or logs."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    # The password crosses this connection: encrypted by default; verify-full with the RDS CA
    # bundle (sslrootcert) also proves the server is the RDS instance.
    sslmode: str = "require"
    sslrootcert: str | None = None

    def describe(self) -> str:
        """host:port/dbname, for messages."""
        return f"{self.host}:{self.port}/{self.dbname}"


def target_at(endpoint: Mapping[str, Any], settings: RunbookSettings, user: str, password: str) -> DbTarget:
    """The configured database on an instance's endpoint (`address`, `port`), as the settings say to reach it."""
    return DbTarget(
        host=endpoint["address"],
        port=int(endpoint["port"]),
        dbname=settings.database_name,
        user=user,
        password=password,
        sslmode=settings.db_sslmode,
        sslrootcert=settings.db_sslrootcert,
    )


def connect(target: DbTarget, *, statement_timeout_ms: int, connect_timeout_s: int = 10) -> connection:
    """Open a read-only, autocommit psycopg2 connection where every statement is time-limited.

    The statement timeout, UTC session time zone and read-only default are sent in the startup
    packet (`options`), so they hold from the first query and cost no extra round trip.
    """
    if statement_timeout_ms <= 0:
        raise ValueError("statement_timeout_ms must be a positive number of milliseconds")
    options = f"-c statement_timeout={int(statement_timeout_ms)} -c default_transaction_read_only=on -c TimeZone=UTC"
    parameters: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "dbname": target.dbname,
        "user": target.user,
        "password": target.password,
        "connect_timeout": connect_timeout_s,
        "sslmode": target.sslmode,
        "application_name": APPLICATION_NAME,
        "options": options,
    }
    if target.sslrootcert:
        parameters["sslrootcert"] = target.sslrootcert
    conn: connection = psycopg2.connect(**parameters)
    # autocommit: each check is its own read-only transaction, so a failed query never leaves the
    # session in an aborted transaction that would fail the checks after it.
    conn.autocommit = True
    return conn
