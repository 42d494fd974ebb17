"""A throwaway PostgreSQL cluster for the rehearsal, the tests and the benchmarks.

`LocalPostgres` runs `initdb` into a fresh temporary directory, starts the server on a free
127.0.0.1 port with durability switched off (nothing here must survive a crash), and removes
everything on `stop()`. Host connections use a real password (scram-sha-256), so the password a
step reads from its secret is actually checked; only the Unix socket, which the tool itself does
not use, trusts local users.

The rehearsal maps emulated RDS objects onto it:

- an instance endpoint is a database in this cluster,
- a snapshot is a template database (`create_database(name, template=...)`),
- a point-in-time restore is a copy of the source plus `delete_rows_after(...)`.

PostgreSQL refuses to run as root. When this process is root, the cluster runs as the
unprivileged `postgres` system user (or `nobody` when there is none): the temp directory is
chowned to it and `initdb`/`pg_ctl` run with that uid and gid.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection, cursor

SUPERUSER = "postgres"
MISSING_BINARIES = (
    "PostgreSQL server binaries were not found: install PostgreSQL 15 server binaries (initdb, pg_ctl) "
    "and put them on PATH (Debian/Ubuntu: apt-get install postgresql-15, then add /usr/lib/postgresql/15/bin; "
    "macOS: brew install postgresql@15), or point IRISX_PG_BINDIR at the directory that holds them"
)

# Speed over safety: the cluster is deleted when the run ends.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "max_connections": "100",
    "log_min_messages": "warning",
    # every copy (CREATE DATABASE ... STRATEGY FILE_COPY) checkpoints; a line each says nothing here
    "log_checkpoints": "off",
    "logging_collector": "off",
    # Nothing replays this cluster's WAL: with `minimal`, a table created and filled in one
    # transaction (the seed) is written once, not also logged row by row.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "password_encryption": "'scram-sha-256'",
    "timezone": "'UTC'",
}


class LocalPostgresError(RuntimeError):
    """The throwaway cluster could not be created, started or used."""


def find_bindir() -> str:
    """The directory holding initdb and pg_ctl: IRISX_PG_BINDIR, then PATH, then Debian's layout."""
    candidates: list[str] = []
    if os.environ.get("IRISX_PG_BINDIR"):
        candidates.append(os.environ["IRISX_PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += sorted(glob.glob("/opt/homebrew/opt/postgresql@*/bin"), reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in ("initdb", "pg_ctl")):
            return directory
    raise LocalPostgresError(MISSING_BINARIES)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _unprivileged_account() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LocalPostgresError(
        "running as root, PostgreSQL needs an unprivileged user to run as, and neither `postgres` nor "
        "`nobody` exists; create one (useradd postgres) or run as a normal user"
    )


class LocalPostgres:
    """A PostgreSQL cluster that lives as long as this object (use it as a context manager)."""

    def __init__(self, *, bindir: str | None = None, password: str | None = None) -> None:
        self.bindir = bindir
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.user = SUPERUSER
        self.password = password or secrets.token_urlsafe(18)
        self.base_dir: str | None = None
        self.data_dir: str | None = None
        self.socket_dir: str | None = None
        self.log_file: str | None = None
        self.startup_seconds: float | None = None
        self._run_as: pwd.struct_passwd | None = None

    def __repr__(self) -> str:  # never shows the password
        state = f"{self.host}:{self.port}" if self.running else "stopped"
        return f"LocalPostgres({state}, data_dir={self.data_dir!r})"

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self.port is not None and self.data_dir is not None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LocalPostgres:
        if self.running:
            return self
        began = time.monotonic()
        self.bindir = self.bindir or find_bindir()
        self._run_as = _unprivileged_account() if os.geteuid() == 0 else None
        self.base_dir = tempfile.mkdtemp(prefix="irisx-localpg-")
        self.data_dir = os.path.join(self.base_dir, "data")
        self.socket_dir = os.path.join(self.base_dir, "sock")
        self.log_file = os.path.join(self.base_dir, "server.log")
        try:
            os.mkdir(self.socket_dir, 0o700)
            pwfile = os.path.join(self.base_dir, "pwfile")
            with open(pwfile, "w") as handle:
                handle.write(self.password + "\n")
            os.chmod(pwfile, 0o600)
            os.chmod(self.base_dir, 0o700)
            if self._run_as is not None:
                for path in (self.base_dir, self.socket_dir, pwfile):
                    os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
            self._run(
                "initdb",
                "-D",
                self.data_dir,
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            )
            os.unlink(pwfile)
            self._enable_tls()
            self._start_server()
        except BaseException:
            self._remove_dir()
            self.port = None
            raise
        self.startup_seconds = time.monotonic() - began
        atexit.register(self.stop)  # an interrupted run must not leave a server behind
        return self

    def _enable_tls(self) -> None:
        """Serve TLS with a throwaway self-signed certificate, as RDS serves TLS.

        The validate step connects with sslmode=require by default; the rehearsal exercises that
        same setting instead of switching encryption off for local runs.
        """
        assert self.data_dir
        key, cert = os.path.join(self.data_dir, "server.key"), os.path.join(self.data_dir, "server.crt")
        made = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            raise LocalPostgresError(f"openssl could not make a certificate for the local cluster: {made.stderr.strip()}")
        os.chmod(key, 0o600)
        if self._run_as is not None:
            for path in (key, cert):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        with open(os.path.join(self.data_dir, "postgresql.auto.conf"), "a") as conf:
            conf.write("ssl = on\n")

    def _start_server(self) -> None:
        assert self.data_dir and self.socket_dir and self.log_file
        last_error: Exception | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = _free_port()
            settings = dict(SERVER_SETTINGS, port=str(port), unix_socket_directories=f"'{self.socket_dir}'")
            with open(os.path.join(self.data_dir, "postgresql.auto.conf"), "a") as conf:
                conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))
            try:
                self._run("pg_ctl", "start", "-w", "-t", "60", "-D", self.data_dir, "-l", self.log_file)
            except LocalPostgresError as exc:
                last_error = exc
                continue
            self.port = port
            return
        raise LocalPostgresError(f"PostgreSQL did not start: {last_error}; server log:\n{self._log_tail()}")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.data_dir and os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            with contextlib.suppress(LocalPostgresError, OSError):
                self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", self.data_dir)
        self._remove_dir()
        self.port = None

    def _remove_dir(self) -> None:
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = self.data_dir = self.socket_dir = self.log_file = None

    def _run(self, tool: str, *args: str) -> None:
        assert self.bindir and self.base_dir
        command = [os.path.join(self.bindir, tool), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        extra: dict[str, Any] = {}
        if self._run_as is not None:
            extra = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
            env["HOME"] = self.base_dir
        try:
            result = subprocess.run(command, cwd=self.base_dir, env=env, capture_output=True, text=True, timeout=120, **extra)
        except FileNotFoundError as exc:
            raise LocalPostgresError(MISSING_BINARIES) from exc
        except subprocess.TimeoutExpired as exc:
            raise LocalPostgresError(f"{tool} did not finish within 120 s") from exc
        if result.returncode != 0:
            raise LocalPostgresError(f"{tool} failed with exit code {result.returncode}: {(result.stderr or result.stdout).strip()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_file or "", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    # ----------------------------------------------------------------- connections

    def _require_running(self) -> None:
        if not self.running:
            raise LocalPostgresError("the local PostgreSQL cluster is not running; call start() first")

    def connect(self, dbname: str = "postgres", *, autocommit: bool = False, **kwargs: Any) -> connection:
        """A psycopg2 connection over TCP with the superuser's password."""
        self._require_running()
        parameters: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname,
            "connect_timeout": 10,
            **kwargs,
        }
        conn: connection = psycopg2.connect(**parameters)
        conn.autocommit = autocommit
        return conn

    @contextlib.contextmanager
    def _admin(self) -> Iterator[cursor]:
        conn = self.connect("postgres", autocommit=True)
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    # ----------------------------------------------------------------- databases

    def database_exists(self, name: str) -> bool:
        with self._admin() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE name [TEMPLATE template]; sessions on the template are ended first.

        A copy uses STRATEGY FILE_COPY: PostgreSQL 15's default (WAL_LOG) writes the whole copied
        database into the write-ahead log, which here nobody replays.
        """
        with self._admin() as cur:
            if template is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return
            for _attempt in range(5):
                self._terminate_backends(cur, template)
                try:
                    cur.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(name), sql.Identifier(template))
                    )
                    return
                except psycopg2.errors.ObjectInUse:
                    time.sleep(0.05)  # a backend was still exiting; it is gone in a moment
            raise LocalPostgresError(f"database {template!r} stayed in use; could not copy it to {name!r}")

    def drop_database(self, name: str, *, missing_ok: bool = True) -> None:
        self.drop_databases([name], missing_ok=missing_ok)

    def drop_databases(self, names: Iterable[str], *, missing_ok: bool = True) -> None:
        """Drop each database over one connection; FORCE ends their sessions, so nothing waits for them."""
        names = list(names)
        if not names or not self.running:
            return
        with self._admin() as cur:
            for name in names:
                cur.execute(
                    sql.SQL("DROP DATABASE {} {} WITH (FORCE)").format(
                        sql.SQL("IF EXISTS") if missing_ok else sql.SQL(""), sql.Identifier(name)
                    )
                )

    def rename_database(self, old: str, new: str) -> None:
        with self._admin() as cur:
            for _attempt in range(5):
                self._terminate_backends(cur, old)
                try:
                    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))
                    return
                except psycopg2.errors.ObjectInUse:
                    time.sleep(0.05)
            raise LocalPostgresError(f"database {old!r} stayed in use; could not rename it to {new!r}")

    @staticmethod
    def _terminate_backends(cur: cursor, dbname: str) -> None:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        # pg_terminate_backend only signals; wait (briefly) until the sessions are really gone
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            if (cur.fetchone() or (0,))[0] == 0:
                return
            time.sleep(0.01)

    # ----------------------------------------------------------------- point in time

    def delete_rows_after(self, dbname: str, tables: Sequence[str], column: str, moment: datetime) -> dict[str, int]:
        """Make `dbname` look like a point-in-time restore to `moment`: delete rows created after it.

        Tables that reference others are emptied first, so foreign keys never block the delete.
        Returns the number of rows deleted per table.
        """
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware (UTC), like the restore time RDS takes")
        conn = self.connect(dbname)
        try:
            with conn, conn.cursor() as cur:
                deleted: dict[str, int] = {}
                for table in _referencing_first(cur, tables):
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE {} > %s").format(sql.Identifier(table), sql.Identifier(column)),
                        (moment,),
                    )
                    deleted[table] = cur.rowcount
            return {table: deleted[table] for table in tables}
        finally:
            conn.close()


def _referencing_first(cur: cursor, tables: Iterable[str]) -> list[str]:
    """Order tables so that a table comes before every table it references by foreign key."""
    tables = list(tables)
    cur.execute(
        """
        SELECT child.relname, parent.relname
          FROM pg_constraint con
          JOIN pg_class child ON child.oid = con.conrelid
          JOIN pg_class parent ON parent.oid = con.confrelid
         WHERE con.contype = 'f' AND child.relname = ANY(%s) AND parent.relname = ANY(%s)
           AND child.oid <> parent.oid
        """,
        (tables, tables),
    )
    references: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in cur.fetchall():
        references[child].add(parent)
    referenced_by: dict[str, set[str]] = {table: set() for table in tables}
    for child, parents in references.items():
        for parent in parents:
            referenced_by[parent].add(child)
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in placed and referenced_by[t] <= placed]
        if not ready:  # a reference cycle: fall back to the given order for the rest
            ready = [t for t in tables if t not in placed]
        for table in ready:
            ordered.append(table)
            placed.add(table)
    return ordered
