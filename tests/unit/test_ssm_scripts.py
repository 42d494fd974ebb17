"""The set-db-host SSM document on its own: its parameters' allowedPatterns, and its script under a real shell.

Each case renders the document exactly as SSM would (checked parameters substituted into the
runCommand lines) and runs the text with /bin/sh, as the SSM agent runs `_script.sh`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from restorectl.app_hosts import ParameterRefused, check_and_render
from stacks.ssm_documents import APP_CONTROL, DB_HOST_PATTERN, ENV_FILE_PATTERN, SCRIPTS, SET_DB_HOST

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


# ---------------------------------------------------------------------- hardening: what the scripts refuse

ENV_FILE_PATTERN_REFUSED = [
    "/home/ubuntu/../etc/.env",
    "/..",
    "/home/ubuntu/..",
    "/../etc/.env",
    "/home/ubuntu/irisx-backend/.env/..",
    "/home//ubuntu/.env",
    "//home/ubuntu/.env",
    "/home/ubuntu/./.env",
    "/.",
    "/home/ubuntu/",
    "/",
    "",
    "home/ubuntu/.env",
    "./.env",
    "/home/ubuntu/.env\n",
    "/home/ubuntu/.e nv",
    "/home/$(id)/.env",
    "/home/ubuntu/-rf",
    "/" + "a" * 65,
    "/a" * 17,
]
ENV_FILE_PATTERN_ACCEPTED = [
    "/home/ubuntu/irisx-backend/.env",
    "/x/.env",
    "/srv/irisx_api-2/.env.production",
    "/a/...",
    "/a/..b/.env",
    "/a/.-x",
    "/_private/.env",
    "/tmp/irisx-app-hosts-k3_x9a/i-0123456789abcdef0/home/ubuntu/irisx-backend/.env",
    "/" + "a" * 64,
    "/a" * 16,
]


def script_text(name: str) -> str:
    return (SCRIPTS / name).read_text(encoding="utf-8")


def keep_backups() -> int:
    match = re.search(r"^KEEP_BACKUPS=(\d+)$", script_text("set_db_host.sh"), re.MULTILINE)
    assert match, "set_db_host.sh defines KEEP_BACKUPS"
    return int(match.group(1))


def backups(box: Path) -> list[Path]:
    return sorted(p for p in (box / "app").iterdir() if p.name.startswith(".env.bak."))


def pm2_calls(box: Path) -> str:
    calls = box / "bin" / "calls"
    return calls.read_text() if calls.exists() else ""


def run_raw(box: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script on its own, without the document's allowedPattern in front of it."""
    return subprocess.run(
        ["/bin/bash", str(SCRIPTS / script)],
        capture_output=True,
        text=True,
        cwd=box,
        env={"PATH": f"{box / 'bin'}:/usr/bin:/bin", **env},
        timeout=20,
        check=False,
    )


def app_control(box: Path, action: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    curl = box / "bin" / "curl"
    if not curl.exists():
        curl.write_text('#!/bin/sh\nprintf \'{"database": "connected"}\\n200\'\n')
        curl.chmod(0o755)
    params = {"Action": [action], "AppName": ["irisx-api"], "HealthUrl": ["http://localhost:3000/health"], "EnvFile": [str(env_file)]}
    script = box / "_app_control.sh"
    script.write_text(check_and_render(APP_CONTROL.content(), params))
    return subprocess.run(
        ["/bin/sh", str(script)],
        capture_output=True,
        text=True,
        cwd=box,
        env={"PATH": f"{box / 'bin'}:/usr/bin:/bin"},
        timeout=20,
        check=False,
    )


def assert_refused_and_untouched(
    result: subprocess.CompletedProcess[str], box: Path, env_file: Path, original: bytes, message: str
) -> None:
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.strip().endswith("nothing was changed"), result.stderr
    assert "previous_db_host" not in result.stdout  # the rollback then counts this host as unchanged
    assert env_file.read_bytes() == original
    assert backups(box) == []
    assert leftovers(box) == []
    assert pm2_calls(box) == ""


# 1. A symlinked .env is never followed.


def test_a_symlinked_env_file_is_refused_and_stays_the_same_symlink(box):
    target = box / "root-owned.env"
    target.write_bytes(b"DB_HOST=old\nDB_PASSWORD=x\n")
    env_file = box / "app" / ".env"
    env_file.symlink_to(target)

    result, _ = run(box, None)

    assert result.returncode != 0
    assert "is a symbolic link" in result.stderr
    assert result.stderr.strip().endswith("nothing was changed"), result.stderr
    assert "previous_db_host" not in result.stdout
    assert env_file.is_symlink() and os.readlink(env_file) == str(target)
    assert target.read_bytes() == b"DB_HOST=old\nDB_PASSWORD=x\n"
    assert sorted(p.name for p in (box / "app").iterdir()) == [".env"]
    assert pm2_calls(box) == ""


def test_a_dangling_symlink_is_refused_as_a_symlink_and_creates_nothing(box):
    env_file = box / "app" / ".env"
    env_file.symlink_to(box / "nowhere.env")

    result, _ = run(box, None)

    assert result.returncode != 0
    assert "is a symbolic link" in result.stderr and "nothing was changed" in result.stderr
    assert env_file.is_symlink() and not (box / "nowhere.env").exists()
    assert sorted(p.name for p in (box / "app").iterdir()) == [".env"]


def test_app_control_does_not_follow_a_symlinked_env_file_for_its_db_host_report(box):
    target = box / "elsewhere.env"
    target.write_bytes(f"DB_HOST={OLD}\n".encode())
    env_file = box / "app" / ".env"
    env_file.symlink_to(target)

    result = app_control(box, "health", env_file)

    assert result.returncode == 0, result.stderr
    assert "db_host=\n" in result.stdout  # unknown, not the symlink target's value
    assert OLD not in result.stdout
    assert "symbolic link" in result.stderr
    assert "health_status=200" in result.stdout
    assert env_file.is_symlink()


# 2. ENV_FILE: an absolute path without "." or ".." segments, in the document and in the scripts.


@pytest.mark.parametrize("value", ENV_FILE_PATTERN_REFUSED)
def test_the_env_file_pattern_refuses_dot_dot_double_slash_and_relative_paths(value):
    assert not re.fullmatch(ENV_FILE_PATTERN, value)
    assert SET_DB_HOST.check_parameters({"DbHost": [NEW], "EnvFile": [value], "AppName": ["irisx-api"]})


@pytest.mark.parametrize("value", ENV_FILE_PATTERN_ACCEPTED)
def test_the_env_file_pattern_accepts_the_default_and_ordinary_paths(value):
    assert re.fullmatch(ENV_FILE_PATTERN, value)
    assert SET_DB_HOST.check_parameters({"DbHost": [NEW], "EnvFile": [value], "AppName": ["irisx-api"]}) == []


def test_the_default_env_file_passes_and_a_dot_dot_path_is_refused_before_anything_runs(box):
    assert re.fullmatch(ENV_FILE_PATTERN, "/home/ubuntu/irisx-backend/.env")
    assert not re.fullmatch(ENV_FILE_PATTERN, "/home/ubuntu/../etc/.env")
    with pytest.raises(ParameterRefused):
        check_and_render(SET_DB_HOST.content(), {"DbHost": [NEW], "EnvFile": ["/home/ubuntu/../etc/.env"], "AppName": ["irisx-api"]})


def test_the_env_file_pattern_uses_only_constructs_every_engine_reads_alike():
    # No lookaround or other (?...) group, no class shorthands, no lazy/possessive quantifiers, no backreferences.
    for construct in ("(?", "\\d", "\\w", "\\s", "\\b", "*?", "+?", "}?", "*+", "++", "\\1"):
        assert construct not in ENV_FILE_PATTERN
    assert ENV_FILE_PATTERN.startswith("^") and ENV_FILE_PATTERN.endswith("$")


def test_both_scripts_recheck_env_file_with_the_documents_pattern_verbatim():
    for name in ("set_db_host.sh", "app_control.sh"):
        assert f"ENV_FILE_RE='{ENV_FILE_PATTERN}'" in script_text(name), name
        assert '[[ "$ENV_FILE" =~ $ENV_FILE_RE ]]' in script_text(name), name


def test_python_bash_and_ecmascript_agree_on_the_env_file_pattern():
    samples = [s for s in ENV_FILE_PATTERN_REFUSED + ENV_FILE_PATTERN_ACCEPTED if "\n" not in s]
    python = [bool(re.fullmatch(ENV_FILE_PATTERN, s)) for s in samples]
    bash = subprocess.run(
        ["/bin/bash", "-c", 'for s in "${@:2}"; do if [[ $s =~ $1 ]]; then echo 1; else echo 0; fi; done', "-", ENV_FILE_PATTERN, *samples],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [b == "1" for b in bash] == python
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: ECMAScript RegExp not compared")
    script = "const [p, ...s] = process.argv.slice(1); console.log(JSON.stringify(s.map((x) => new RegExp(p).test(x))));"
    ecmascript = subprocess.run([node, "-e", script, "--", ENV_FILE_PATTERN, *samples], capture_output=True, text=True, check=True).stdout
    assert json.loads(ecmascript) == python


@pytest.mark.parametrize("script", ["set_db_host.sh", "app_control.sh"])
def test_the_scripts_on_their_own_refuse_a_dot_dot_env_file(box, script):
    env_file = box / "app" / ".env"
    env_file.write_bytes(b"DB_HOST=old\n")
    sneaky = f"{box}/app/../app/.env"

    result = run_raw(box, script, {"DB_HOST": NEW, "ENV_FILE": sneaky, "APP_NAME": "irisx-api", "ACTION": "restart"})

    assert result.returncode != 0
    assert "ENV_FILE is not an absolute path of plain segments" in result.stderr
    assert env_file.read_bytes() == b"DB_HOST=old\n"
    assert sorted(p.name for p in (box / "app").iterdir()) == [".env"]
    assert pm2_calls(box) == ""


# 3. The current DB_HOST is read exactly as dotenv reads it, or the swap is refused.

PARSED = [
    # (the DB_HOST line as found, what previous_db_host says, the line after the swap)
    (b"DB_HOST=old # primary", "old", b"DB_HOST=@ # primary"),
    (b'DB_HOST="old" # primary', "old", b'DB_HOST="@" # primary'),
    (b"DB_HOST='old'#primary", "old", b"DB_HOST='@'#primary"),
    (b"export DB_HOST=old   ", "old", b"export DB_HOST=@   "),
    (b"  DB_HOST = old\t# the writer", "old", b"  DB_HOST = @\t# the writer"),
    (b"DB_HOST=old # it's 'quoted' #twice", "old", b"DB_HOST=@ # it's 'quoted' #twice"),
    (b"DB_HOST=  # not set yet", "", b"DB_HOST=@  # not set yet"),
    (b"DB_HOST=   ", "", b"DB_HOST=@   "),
    (b"DB_HOST=", "", b"DB_HOST=@"),
]


@pytest.mark.parametrize(("line", "previous", "rewritten"), PARSED)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_previous_db_host_is_the_value_without_comment_quotes_or_blanks_and_only_the_value_changes(box, line, previous, rewritten, eol):
    before = b"# IRISX" + eol + b"DB_PASSWORD=s3cr=t #x" + eol
    after = b"PORT=3000" + eol + b"LAST=1"
    result, env_file = run(box, before + line + eol + after)

    assert result.returncode == 0, result.stderr
    assert f"previous_db_host={previous}\n" in result.stdout
    assert env_file.read_bytes() == before + rewritten.replace(b"@", NEW.encode()) + eol + after


def test_a_revert_with_the_recorded_previous_db_host_gives_back_the_file_byte_for_byte(box):
    original = f"A=1\r\nexport DB_HOST='{OLD}'  # primary, since 2023\r\nB=2".encode()
    result, env_file = run(box, original)
    assert result.returncode == 0, result.stderr
    previous = re.search(r"^previous_db_host=(.*)$", result.stdout, re.MULTILINE).group(1)
    assert previous == OLD

    # The revert goes through the document's allowedPattern, as the rollback's command does.
    result, env_file = run(box, None, db_host=previous)

    assert result.returncode == 0, result.stderr
    assert env_file.read_bytes() == original


NOT_PLAIN = [
    b"DB_HOST=old primary",
    b"DB_HOST=old#primary",
    b'DB_HOST="old',
    b'DB_HOST="old"x',
    b'DB_HOST="old primary"',
    b"DB_HOST=${PRIMARY_HOST}",
    b"DB_HOST=$(cat /etc/db)",
    b"DB_HOST=`hostname`",
    b"DB_HOST=-old",
    b"DB_HOST=old\\",
    b"DB_HOST=" + b"a" * 254,
]


@pytest.mark.parametrize("line", NOT_PLAIN)
def test_a_db_host_line_that_is_not_a_plain_host_is_refused_and_nothing_changes(box, line):
    original = b"NODE_ENV=production\n" + line + b"\nDB_PASSWORD=x\n"
    result, env_file = run(box, original)

    assert_refused_and_untouched(result, box, env_file, original, "the current DB_HOST line")
    assert "is not a plain host name" in result.stderr


def test_only_the_last_db_host_line_is_the_previous_one_and_must_be_plain(box):
    result, env_file = run(box, b"DB_HOST=old # primary\nDB_HOST=$(other)\n")
    assert result.returncode != 0 and "not a plain host name" in result.stderr

    result, env_file = run(box, b"DB_HOST=not a host\nDB_HOST=old # primary\n")
    assert result.returncode == 0, result.stderr
    assert "previous_db_host=old\n" in result.stdout
    assert env_file.read_bytes() == f"DB_HOST={NEW}\nDB_HOST={NEW} # primary\n".encode()


@pytest.mark.parametrize(("line", "previous", "_rewritten"), PARSED)
def test_app_control_reports_db_host_parsed_the_same_way(box, line, previous, _rewritten):
    env_file = box / "app" / ".env"
    env_file.write_bytes(b"A=1\r\n" + line + b"\r\nB=2")

    result = app_control(box, "restart", env_file)

    assert result.returncode == 0, result.stderr
    assert f"db_host={previous}\n" in result.stdout
    assert pm2_calls(box) == "pm2 restart irisx-api --update-env\n"


@pytest.mark.parametrize("line", NOT_PLAIN)
def test_app_control_reports_an_unplain_db_host_as_unknown(box, line):
    env_file = box / "app" / ".env"
    env_file.write_bytes(line + b"\n")

    result = app_control(box, "stop", env_file)

    assert result.returncode == 0, result.stderr
    assert "db_host=\n" in result.stdout
    assert "not a plain host name" in result.stderr
    assert "stopped=irisx-api" in result.stdout


def test_both_scripts_parse_db_host_with_the_same_code():
    def parser(name: str) -> str:
        text = script_text(name)
        start = text.index("PARSE_DB_HOST='")
        return text[start : text.index("\n'\n", start)]

    assert parser("set_db_host.sh") == parser("app_control.sh")


# 4. Backups: private, with the file's owner, and only the newest few.


def test_a_backup_is_private_and_keeps_the_owner_and_the_env_file_keeps_its_mode(box):
    env_file = box / "app" / ".env"
    env_file.write_bytes(b"DB_HOST=old\nDB_PASSWORD=s3cret\n")
    env_file.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(env_file, 65534, 65534)
    owner = (env_file.stat().st_uid, env_file.stat().st_gid)

    result, _ = run(box, None)

    assert result.returncode == 0, result.stderr
    (backup,) = backups(box)
    assert f"backup={backup}\n" in result.stdout
    assert backup.read_bytes() == b"DB_HOST=old\nDB_PASSWORD=s3cret\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert (backup.stat().st_uid, backup.stat().st_gid) == owner
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o644
    assert (env_file.stat().st_uid, env_file.stat().st_gid) == owner
    assert leftovers(box) == []


def test_only_the_newest_backups_are_kept_and_only_the_scripts_own_are_pruned(box):
    app = box / "app"
    old = [app / f".env.bak.2024010{day}T000000Z" for day in range(1, 7)]  # six from earlier cutovers
    for path in old:
        path.write_bytes(f"DB_HOST=from-{path.name[-16:]}\n".encode())
        path.chmod(0o644)
    foreign = [app / ".env.bak.manual", app / ".env.bak.20240101T000000Z.old", app / ".env.bak.20200101T000000Z"]
    foreign[0].write_bytes(b"DB_HOST=kept by hand\n")
    foreign[1].write_bytes(b"DB_HOST=kept by hand too\n")
    foreign[0].chmod(0o644)
    foreign[2].symlink_to(box / "app" / ".env.bak.manual")  # a symlink is never the script's own

    result, _ = run(box, b"DB_HOST=current\n")

    assert result.returncode == 0, result.stderr
    new = Path(re.search(r"^backup=(.*)$", result.stdout, re.MULTILINE).group(1))
    kept = keep_backups()
    assert kept == 5
    ours = [p for p in backups(box) if p not in foreign]
    assert ours == sorted([*old[-(kept - 1) :], new])
    assert new.read_bytes() == b"DB_HOST=current\n"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in ours)  # older backups kept are made private too
    assert all(p.exists() or p.is_symlink() for p in foreign)
    assert stat.S_IMODE(foreign[0].stat().st_mode) == 0o644
    assert foreign[2].is_symlink()


def test_repeated_cutovers_keep_the_newest_backups_in_order_even_within_one_second(box):
    kept = keep_backups()
    date = box / "bin" / "date"  # every run in the same second: the names need a sequence that sorts
    date.write_text("#!/bin/sh\necho 20250101T000000Z\n")
    date.chmod(0o755)
    env_file = box / "app" / ".env"
    env_file.write_bytes(b"DB_HOST=host-0\n")
    for n in range(1, kept + 3):
        result, _ = run(box, None, db_host=f"host-{n}")
        assert result.returncode == 0, result.stderr

    contents = sorted(p.read_bytes() for p in backups(box))
    # Each backup is the file before one swap; the newest `kept` swaps were from host-2 .. host-(kept+1).
    assert contents == sorted(f"DB_HOST=host-{n}\n".encode() for n in range(2, kept + 2))
    assert len(backups(box)) == kept
    assert [p.name for p in backups(box)] == [f".env.bak.20250101T000000Z.{n}" for n in range(2, kept + 2)]
    assert leftovers(box) == []
