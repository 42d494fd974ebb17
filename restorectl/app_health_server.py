"""The emulated IRISX API's /health endpoint, one process per emulated host (started by the `pm2` stub).

It reads DB_HOST (and DB_USER, DB_PASSWORD, DB_NAME) from the host's .env when it starts, as the
real app does through dotenv, looks DB_HOST up in the rehearsal's endpoint map (emulated DNS: RDS
endpoint -> local PostgreSQL database), and answers every GET /health after a REAL connection:
{"database": "connected"} (200) or {"database": "error", "error": "..."} (503).

    python -m restorectl.app_health_server ENV_FILE MAP_FILE PORT
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def check(env: dict[str, str], map_file: Path) -> tuple[int, dict[str, str]]:
    import psycopg2

    host = env.get("DB_HOST", "")
    routes = json.loads(map_file.read_text(encoding="utf-8")) if map_file.exists() else {}
    route = routes.get(host)
    if route is None:
        return 503, {"database": "error", "error": f"could not translate host name {host!r} to address: Name or service not known"}
    try:
        conn = psycopg2.connect(
            host=route["host"],
            port=route["port"],
            dbname=route["dbname"],
            user=env.get("DB_USER", ""),
            password=env.get("DB_PASSWORD", ""),
            connect_timeout=2,
        )
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()
    except psycopg2.Error as exc:
        return 503, {"database": "error", "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}
    return 200, {"status": "ok", "database": "connected"}


def main(argv: list[str]) -> None:
    env_file, map_file, port = Path(argv[0]), Path(argv[1]), int(argv[2])
    env = read_env(env_file)  # read once at start, like the app: a new DB_HOST needs a restart

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                status, body = 404, {"error": "not found"}
            else:
                status, body = check(env, map_file)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
