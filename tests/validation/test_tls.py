"""The validate step's connections are encrypted, as they must be when they carry the password."""

from __future__ import annotations

import pytest

from restore_runbook.common.errors import InvalidInput
from restore_runbook.settings import RunbookSettings
from restore_runbook.validation import database
from restore_runbook.validation.database import DbTarget

pytestmark = pytest.mark.validation


def test_connections_use_tls_by_default(local_pg):
    # Given a target described without any TLS choice
    target = DbTarget(local_pg.host, local_pg.port, "postgres", local_pg.user, local_pg.password)

    # When the validate step's connect opens it
    conn = database.connect(target, statement_timeout_ms=5000)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            (encrypted,) = cur.fetchone()
    finally:
        conn.close()

    # Then the session is encrypted (sslmode=require)
    assert target.sslmode == "require"
    assert encrypted is True


def test_verify_full_without_the_servers_ca_refuses_to_connect(local_pg, tmp_path):
    import psycopg2

    other_ca = tmp_path / "not-the-ca.pem"
    other_ca.write_text("")
    target = DbTarget(
        local_pg.host, local_pg.port, "postgres", local_pg.user, local_pg.password, sslmode="verify-full", sslrootcert=str(other_ca)
    )

    with pytest.raises(psycopg2.OperationalError):
        database.connect(target, statement_timeout_ms=5000)


def test_an_unknown_ssl_mode_is_a_named_setting_error():
    with pytest.raises(InvalidInput, match="DB_SSLMODE='sometimes'"):
        RunbookSettings.from_env({"SOURCE_INSTANCE": "irisx-prod-rds-postgres", "DB_SSLMODE": "sometimes"})
