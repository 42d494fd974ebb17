"""The IRISX sample schema and a fast, deterministic data generator.

The rehearsal backs every emulated RDS instance with a real database holding this schema, so the
validate step counts real rows and compares real `created_at` values. `seed()` fills an empty
database entirely on the server (`INSERT ... SELECT generate_series(...)` with hash-based
pseudo-random expressions), so a million calls take seconds, and the same arguments always give
the same rows.

The data is consistent in time, which is what makes a point-in-time copy meaningful: every row's
parents were created before it (a tenant before its users and keys, a user before their calls), so
deleting everything created after a moment never breaks a foreign key. `created_at` is spread over
the retention window ending at `now`; the newest call is within `window / calls_rows` of `now`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection

TABLES: tuple[str, ...] = ("tenants", "users", "calls", "api_keys")
"""In dependency order: a table only references tables before it."""

SCHEMA_SQL = """
CREATE TABLE tenants (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    plan        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    email       text NOT NULL,
    role        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE TABLE calls (
    id                bigserial PRIMARY KEY,
    tenant_id         bigint NOT NULL,
    user_id           bigint,
    direction         text NOT NULL,
    status            text NOT NULL,
    duration_seconds  integer NOT NULL,
    recording_key     text,
    created_at        timestamptz NOT NULL
);
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL
);
"""

# Added after the bulk load: checking a foreign key once over a finished table is far cheaper
# than a trigger per inserted row. Every referencing column is indexed, or deleting a parent row
# (a point-in-time copy deletes thousands) scans the whole child table once per row.
CONSTRAINTS_SQL = """
ALTER TABLE users    ADD CONSTRAINT users_tenant_id_fkey    FOREIGN KEY (tenant_id) REFERENCES tenants(id);
ALTER TABLE calls    ADD CONSTRAINT calls_tenant_id_fkey    FOREIGN KEY (tenant_id) REFERENCES tenants(id);
ALTER TABLE calls    ADD CONSTRAINT calls_user_id_fkey      FOREIGN KEY (user_id)   REFERENCES users(id);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants(id);
CREATE INDEX calls_created_at_idx    ON calls (created_at);
CREATE INDEX users_created_at_idx    ON users (created_at);
CREATE INDEX tenants_created_at_idx  ON tenants (created_at);
CREATE INDEX api_keys_created_at_idx ON api_keys (created_at);
CREATE INDEX calls_tenant_id_idx     ON calls (tenant_id);
CREATE INDEX calls_user_id_idx       ON calls (user_id);
CREATE INDEX users_tenant_id_idx     ON users (tenant_id);
CREATE INDEX api_keys_tenant_id_idx  ON api_keys (tenant_id);
"""


def _rand(expr: str, salt: int) -> str:
    """SQL for a deterministic pseudo-random float in [0, 1) from a bigint expression and a salt."""
    return f"((hashint8extended(({expr})::bigint, {salt}) & 4503599627370495)::float8 / 4503599627370496.0)"


def _pick(expr: str, salt: int, n: str) -> str:
    """SQL for a deterministic pseudo-random integer in [0, n)."""
    return f"floor({_rand(expr, salt)} * ({n}))::bigint"


def plan_counts(calls_rows: int) -> dict[str, int]:
    """How many rows of each table `seed(calls_rows=...)` writes."""
    if calls_rows < 0:
        raise ValueError("calls_rows must be zero or more")
    tenants = max(3, calls_rows // 1000)
    users = max(tenants, calls_rows // 50)
    return {"tenants": tenants, "users": users, "calls": calls_rows, "api_keys": tenants * 2}


def seed(conn: connection, calls_rows: int, now: datetime, retention_days: int = 7, seed: int = 42) -> dict[str, Any]:
    """Create the schema in an empty database and fill it; return counts and newest `created_at`.

    `conn` is a psycopg2 connection to the target database (committed on success, rolled back on
    failure). Rows are spread over `[now - retention_days, now]`; the result is fully determined
    by the arguments.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    counts = plan_counts(calls_rows)
    window = timedelta(days=retention_days).total_seconds()
    start = now - timedelta(days=retention_days)
    n_t, n_u, n_c, n_k = (str(counts[t]) for t in ("tenants", "users", "calls", "api_keys"))
    s = seed * 16  # salts: each generated column gets its own
    began = time.monotonic()
    params = {"start": start, "window": window}

    # tenant i (1..T) is created at start + window*(i-1)/T: tenant 1 exists from the start
    tenant_at = f"(%(start)s::timestamptz + make_interval(secs => %(window)s * ((g - 1)::float8 / {n_t})))"
    # user k (1..U) at start + window*(k - jitter)/U; its tenant existed by then
    user_tenant = f"(1 + {_pick('g', s + 1, f'floor((g - 1) * {n_t}::float8 / {n_u}) + 1')})"
    user_at = f"(%(start)s::timestamptz + make_interval(secs => %(window)s * ((g - {_rand('g', s + 2)}) / {n_u})))"
    # call j (1..C) at start + window*(j - jitter)/C, strictly increasing with id; its user (if any)
    # is one created by then: users 1..floor((j-1)*U/C)
    users_by_call = f"floor((g - 1) * {n_u}::float8 / {n_c})::bigint"
    call_user = f"CASE WHEN {users_by_call} = 0 OR {_rand('g', s + 3)} < 0.05 THEN NULL ELSE 1 + {_pick('g', s + 4, users_by_call)} END"
    call_at = f"(%(start)s::timestamptz + make_interval(secs => %(window)s * ((g - {_rand('g', s + 5)}) / {n_c})))"
    # the user's tenant, recomputed from the user id with the same expression users used
    tenant_of_user = f"(1 + {_pick('u.user_id', s + 1, f'floor((u.user_id - 1) * {n_t}::float8 / {n_u}) + 1')})"
    tenant_by_call = f"(1 + {_pick('u.g', s + 6, f'floor((u.g - 1) * {n_t}::float8 / {n_c}) + 1')})"
    completed = f"{_rand('u.g', s + 7)}"

    statements = [
        (
            f"""INSERT INTO tenants (id, name, plan, created_at)
                SELECT g, 'tenant-' || g,
                       (ARRAY['starter','growth','enterprise'])[1 + {_pick("g", s + 8, "3")}],
                       {tenant_at}
                  FROM generate_series(1, {n_t}) AS g"""  # noqa: S608 - only integers and our own SQL fragments are interpolated
        ),
        (
            f"""INSERT INTO users (id, tenant_id, email, role, created_at)
                SELECT g, {user_tenant}, 'user' || g || '@tenant-' || {user_tenant} || '.example',
                       (ARRAY['agent','agent','agent','supervisor','admin'])[1 + {_pick("g", s + 9, "5")}],
                       {user_at}
                  FROM generate_series(1, {n_u}) AS g"""  # noqa: S608 - only integers and our own SQL fragments are interpolated
        ),
        (
            # recording_key is where the recording lives in S3: recordings/<tenant>/<call id>.wav, the keys
            # restorectl/emulated_recordings.py writes (the tenant is computed once, one level down).
            f"""INSERT INTO calls (id, tenant_id, user_id, direction, status, duration_seconds, recording_key, created_at)
                SELECT c.g, c.tenant_id, c.user_id, c.direction, c.status, c.duration_seconds,
                       CASE WHEN c.recorded THEN 'recordings/' || c.tenant_id || '/' || c.g || '.wav' END,
                       c.created_at
                  FROM (SELECT u.g,
                               CASE WHEN u.user_id IS NULL THEN {tenant_by_call} ELSE {tenant_of_user} END AS tenant_id,
                               u.user_id,
                               CASE WHEN {_rand("u.g", s + 10)} < 0.6 THEN 'inbound' ELSE 'outbound' END AS direction,
                               CASE WHEN {completed} < 0.78 THEN 'completed'
                                    WHEN {completed} < 0.90 THEN 'no-answer'
                                    WHEN {completed} < 0.97 THEN 'busy' ELSE 'failed' END AS status,
                               CASE WHEN {completed} < 0.78 THEN 5 + {_pick("u.g", s + 11, "1800")} ELSE 0 END AS duration_seconds,
                               ({completed} < 0.78 AND {_rand("u.g", s + 12)} < 0.7) AS recorded,
                               u.created_at
                          FROM (SELECT g, {call_user} AS user_id, {call_at} AS created_at
                                  FROM generate_series(1, {n_c}) AS g) AS u) AS c"""  # noqa: S608 - only integers and our own SQL fragments are interpolated
        ),
        (
            # key k belongs to tenant ((k-1) mod T)+1 and is created between its tenant and now
            f"""INSERT INTO api_keys (id, tenant_id, key_hash, created_at)
                SELECT g, t.id, md5('{seed}:' || g), t.created_at + ({_rand("g", s + 13)} * (%(now)s::timestamptz - t.created_at))
                  FROM generate_series(1, {n_k}) AS g
                  JOIN tenants t ON t.id = mod(g - 1, {n_t}) + 1"""  # noqa: S608 - only integers and our own SQL fragments are interpolated
        ),
    ]
    params["now"] = now
    try:
        with conn.cursor() as cur:
            cur.execute(SCHEMA_SQL)
            for statement in statements:
                cur.execute(statement, params)
            cur.execute(CONSTRAINTS_SQL)
            for table in TABLES:
                cur.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST((SELECT max(id) FROM {}), 1))").format(
                        sql.Identifier(table)
                    ),
                    (table,),
                )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    _analyze(conn)
    extensions = install_extensions(conn)
    summary = summarize(conn)
    summary["extensions"] = extensions
    summary["seconds"] = round(time.monotonic() - began, 3)
    return summary


# amcheck verifies the copy's indexes, pg_prewarm warms it before cutover. Both are created here, in
# the source, because a copy inherits its source's extensions and the validate session is read-only.
EXTENSIONS = ("amcheck", "pg_prewarm")


def install_extensions(conn: connection) -> list[str]:
    """Create EXTENSIONS where this server ships them; return the ones installed."""
    installed = []
    previous = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in EXTENSIONS:
                try:
                    cur.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
                except psycopg2.errors.UndefinedFile:
                    continue  # a server built without contrib: validation reports the check as not available
                installed.append(name)
    finally:
        conn.autocommit = previous
    return installed


def _analyze(conn: connection) -> None:
    previous = conn.autocommit
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
    finally:
        conn.autocommit = previous


def summarize(conn: connection, tables: tuple[str, ...] = TABLES) -> dict[str, Any]:
    """Row count and newest `created_at` per table: `{"tables": {name: {"rows": n, "newest": dt}}}`."""
    out: dict[str, dict[str, Any]] = {}
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(sql.SQL("SELECT count(*), max(created_at), min(created_at) FROM {}").format(sql.Identifier(table)))
            rows, newest, oldest = cur.fetchone() or (0, None, None)
            out[table] = {"rows": rows, "newest": _utc(newest), "oldest": _utc(oldest)}
    conn.rollback()
    return {"tables": out}


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(timezone.utc) if value is not None else None
