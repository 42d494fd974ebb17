"""The set-db-host SSM document on its own: its parameters' allowedPatterns, and its script under a real shell.

Each case renders the document exactly as SSM would (checked parameters substituted into the
runCommand lines) and runs the text with /bin/sh, as the SSM agent runs `_script.sh`.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from restorectl.app_hosts import ParameterRefused, check_and_render
from stacks.ssm_documents import APP_CONTROL, DB_HOST_PATTERN, SET_DB_HOST

pytestmark = pytest.mark.unit

NEW = "irisx-prod-rds-postgres-restored-20251102-120000.abc.us-east-1.rds.amazonaws.com"
OLD = "irisx-prod-rds-postgres.abc.us-east-1.rds.amazonaws.com"
HOSTILE = [
    "x'; touch PWNED; echo '",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a b",
    "a\nb",
    "host;reboot",
    "host|sh",
    "host&&id",
    "-rf",
    "",
    "a" * 300,
    "${IFS}",
    "host'",
    'host"',
    "../../etc/passwd",
]


@pytest.fixture
def box():
    # World-readable, so the same box works for a run as `nobody`.
    path = Path(tempfile.mkdtemp(prefix="ssm-script-"))
    path.chmod(0o755)
    (path / "app").mkdir()
    (path / "app").chmod(0o755)
    bin_dir = path / "bin"
    bin_dir.mkdir()
    pm2 = bin_dir / "pm2"
    # reads stdin on purpose: it must not be able to swallow the rest of the script
    pm2.write_text('#!/bin/sh\ncat >/dev/null\necho "pm2 $*" >> "$(dirname "$0")/calls"\nexit "${PM2_EXIT:-0}"\n')
    pm2.chmod(0o755)
    bin_dir.chmod(0o777)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def run(box: Path, env_text: bytes | None, *, db_host: str = NEW, pm2_exit: int = 0, as_nobody: bool = False):
    env_file = box / "app" / ".env"
    if env_text is not None:
        env_file.write_bytes(env_text)
    script = box / "_script.sh"
    script.write_text(check_and_render(SET_DB_HOST.content(), {"DbHost": [db_host], "EnvFile": [str(env_file)], "AppName": ["irisx-api"]}))
    script.chmod(0o644)
    command = ["/bin/sh", str(script)]
    if as_nobody:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=box,
        env={"PATH": f"{box / 'bin'}:/usr/bin:/bin", "PM2_EXIT": str(pm2_exit)},
        timeout=20,
        check=False,
    )
    return result, env_file


def leftovers(box: Path) -> list[str]:
    return sorted(p.name for p in (box / "app").iterdir() if p.name.startswith(".set_db_host"))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_db_host_values_are_refused_by_the_pattern_before_anything_runs(box, value):
    assert not re.fullmatch(DB_HOST_PATTERN, value)
    assert SET_DB_HOST.check_parameters({"DbHost": [value], "EnvFile": ["/x/.env"], "AppName": ["irisx-api"]})
    with pytest.raises(ParameterRefused):
        run(box, b"DB_HOST=old\n", db_host=value)
    assert not (box / "PWNED").exists()
    assert (box / "app" / ".env").read_bytes() == b"DB_HOST=old\n"


def test_real_host_names_pass_the_pattern():
    for value in (NEW, OLD, "10.0.1.25", "db.internal"):
        assert re.fullmatch(DB_HOST_PATTERN, value)


def test_unknown_parameters_and_actions_are_refused_like_ssm_does():
    with pytest.raises(ParameterRefused):
        check_and_render(SET_DB_HOST.content(), {"DbHost": [NEW], "EnvFile": ["/x/.env"], "AppName": ["irisx-api"], "Extra": ["1"]})
    params = {"AppName": ["irisx-api"], "HealthUrl": ["http://localhost:3000/health"], "EnvFile": ["/x/.env"]}
    with pytest.raises(ParameterRefused):
        check_and_render(APP_CONTROL.content(), {**params, "Action": ["reboot"]})
    with pytest.raises(ParameterRefused):
        check_and_render(APP_CONTROL.content(), {**params, "Action": ["health"], "HealthUrl": ["http://x/$(id)"]})


def test_only_the_db_host_line_changes_and_a_backup_keeps_the_original(box):
    original = b"# IRISX\nNODE_ENV=production\n\nDB_HOST=" + OLD.encode() + b"\nDB_PORT=5432\nDB_PASSWORD=s3cr=t#x\nLAST=1"
    result, env_file = run(box, original)
    assert result.returncode == 0, result.stderr
    assert env_file.read_bytes() == original.replace(OLD.encode(), NEW.encode())  # no newline added at the end
    assert f"previous_db_host={OLD}" in result.stdout
    (backup,) = [p for p in (box / "app").iterdir() if p.name.startswith(".env.bak.")]
    assert backup.read_bytes() == original
    assert "restarted=irisx-api" in result.stdout  # the script ran to its end although pm2 read stdin
    assert (box / "bin" / "calls").read_text() == "pm2 restart irisx-api --update-env\n"
    assert leftovers(box) == []


def test_a_missing_db_host_line_is_added_after_a_last_line_without_newline(box):
    result, env_file = run(box, b"A=1\nB=2")
    assert result.returncode == 0, result.stderr
    assert env_file.read_bytes() == f"A=1\nB=2\nDB_HOST={NEW}\n".encode()
    assert "previous_db_host=\n" in result.stdout


def test_duplicates_all_point_at_the_new_host_and_the_last_one_is_the_previous(box):
    result, env_file = run(box, b'DB_HOST=first\nX=1\nexport DB_HOST="second"\n')
    assert result.returncode == 0, result.stderr
    assert env_file.read_bytes() == f'DB_HOST={NEW}\nX=1\nexport DB_HOST="{NEW}"\n'.encode()
    assert "previous_db_host=second" in result.stdout


def test_crlf_line_endings_are_kept(box):
    result, env_file = run(box, b"A=1\r\nDB_HOST=old\r\nB=2\r\n")
    assert result.returncode == 0, result.stderr
    assert env_file.read_bytes() == f"A=1\r\nDB_HOST={NEW}\r\nB=2\r\n".encode()
    assert "previous_db_host=old" in result.stdout
    result, env_file = run(box, b"A=1\r\nB=2\r\n")
    assert env_file.read_bytes() == f"A=1\r\nB=2\r\nDB_HOST={NEW}\r\n".encode()


def test_a_missing_file_fails_with_a_message_and_creates_nothing(box):
    result, env_file = run(box, None)
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "nothing was changed" in result.stderr
    assert not env_file.exists()
    assert list((box / "app").iterdir()) == []
    assert not (box / "bin" / "calls").exists()


def test_an_unwritable_file_fails_with_a_message_and_is_left_as_it_was(box):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the script as another user")
    original = b"DB_HOST=old\nA=1\n"
    result, env_file = run(box, original, as_nobody=True)
    assert result.returncode != 0
    assert "not writable" in result.stderr
    assert env_file.read_bytes() == original
    assert sorted(p.name for p in (box / "app").iterdir()) == [".env"]


def test_a_pm2_failure_exits_non_zero_saying_where_the_file_stands(box):
    result, env_file = run(box, b"DB_HOST=old\n", pm2_exit=3)
    assert result.returncode != 0
    assert "pm2 restart irisx-api failed (exit 3)" in result.stderr
    assert f"already points at {NEW}" in result.stderr and "previous: old" in result.stderr
    assert env_file.read_bytes() == f"DB_HOST={NEW}\n".encode()  # whole file, never partial
    assert leftovers(box) == []
