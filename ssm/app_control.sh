#!/usr/bin/env bash
# Stop, restart or health-check the IRISX API on this host. Run by the project's SSM Command document.
#
# Inputs (environment variables, set by the document from its allowedValues/allowedPattern-checked parameters):
#   ACTION      stop | restart | health
#   APP_NAME    the pm2 process name
#   HEALTH_URL  the app's health endpoint (health only)
#   ENV_FILE    absolute path of the app's .env file (health reports the DB_HOST it holds); no "." or
#               ".." segment, no "//"
#
# Output lines the workflow reads: db_host=... and, for health, health_status=<HTTP code> and
# health=<the JSON body>. Exits non-zero when the action fails or the app answers anything but 200.
# db_host is the value read the way dotenv (and set_db_host.sh) reads it: quotes, an inline
# " # comment", blanks, "export " and CR removed. It is left empty (unknown), with a note on stderr,
# when ENV_FILE is a symlink (never followed) or the value is not a plain host name.
set -euo pipefail

# The document's ENV_FILE_PATTERN (stacks/ssm_documents.py), verbatim: 1 to 16 "/segment"s of at
# most 64 characters from [A-Za-z0-9._-], none of them "." or "..", none empty.
ENV_FILE_RE='^(/([A-Za-z0-9_][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})){1,16}$'

fail() {
  echo "app_control: $*" >&2
  exit 1
}

[[ "${APP_NAME:-}" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || fail "APP_NAME is not a pm2 process name"

if [ -n "${ENV_FILE:-}" ] && ! [[ "$ENV_FILE" =~ $ENV_FILE_RE ]]; then
  fail "ENV_FILE is not an absolute path of plain segments (no '.', '..' or '//')"
fi

# The same reading as set_db_host.sh's (see there): the last DB_HOST= line, parsed like dotenv.
# Printed as one flag character and the value: "-" no DB_HOST= line, "1" parsed, "0" malformed.
PARSE_DB_HOST='
  function parse(rest,   c, i) {
    lead = ""; q = ""; val = ""; tail = ""; ok = 1
    match(rest, /^[ \t]*/)
    lead = substr(rest, 1, RLENGTH)
    rest = substr(rest, RLENGTH + 1)
    c = substr(rest, 1, 1)
    if (c == "\"" || c == sq) {
      q = c
      i = index(substr(rest, 2), q)
      if (i == 0) { ok = 0; val = substr(rest, 2); return }
      val = substr(rest, 2, i - 1)
      tail = substr(rest, i + 2)
      if (tail !~ /^[ \t]*(#.*)?$/) ok = 0
      return
    }
    if (c == "#" && lead != "") { tail = lead rest; lead = ""; return }
    if (match(rest, /[ \t]#/)) { val = substr(rest, 1, RSTART - 1); tail = substr(rest, RSTART) }
    else val = rest
    if (match(val, /[ \t]+$/)) { tail = substr(val, RSTART) tail; val = substr(val, 1, RSTART - 1) }
    if (val == "") { tail = lead tail; lead = "" }
  }
  function key_length(line) {
    return match(line, /^[ \t]*(export[ \t]+)?DB_HOST[ \t]*=/) ? RLENGTH : 0
  }
'

db_host=""
if [ -n "${ENV_FILE:-}" ] && [ -L "$ENV_FILE" ]; then
  echo "app_control: $ENV_FILE is a symbolic link; not following it, db_host unknown" >&2
elif [ -n "${ENV_FILE:-}" ] && [ -f "$ENV_FILE" ] && [ -r "$ENV_FILE" ]; then
  parsed=$(LC_ALL=C awk -v sq="'" "$PARSE_DB_HOST"'
    {
      line = $0
      sub(/\r$/, "", line)
      if ((n = key_length(line)) > 0) {
        parse(substr(line, n + 1))
        flag = ok; last = val
      }
    }
    END { printf "%s%s", (flag == "" ? "-" : flag), last }' "$ENV_FILE") || parsed="-"
  if [ "${parsed:0:1}" = 0 ] || { [ -n "${parsed:1}" ] && ! [[ "${parsed:1}" =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$ ]]; }; then
    echo "app_control: the DB_HOST line of $ENV_FILE is not a plain host name ('${parsed:1}'); db_host unknown" >&2
  else
    db_host=${parsed:1}
  fi
fi
echo "db_host=$db_host"

pm2_as_owner() {
  local owner
  owner=$(stat -c %U -- "${ENV_FILE:-/}" 2>/dev/null || echo root)
  if [ "$(id -u)" = 0 ] && [ "$owner" != root ] && command -v sudo >/dev/null 2>&1; then
    sudo -H -i -u "$owner" -- pm2 "$@"
  else
    pm2 "$@"
  fi
}

case "${ACTION:-}" in
  stop)
    pm2_as_owner stop "$APP_NAME" || fail "pm2 stop $APP_NAME failed"
    echo "stopped=$APP_NAME"
    ;;
  restart)
    pm2_as_owner restart "$APP_NAME" --update-env || fail "pm2 restart $APP_NAME failed"
    echo "restarted=$APP_NAME"
    ;;
  health)
    [[ "${HEALTH_URL:-}" =~ ^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$ ]] || fail "HEALTH_URL is not an http(s) URL"
    response=$(curl -sS --max-time 5 -w '\n%{http_code}' -- "$HEALTH_URL" 2>&1) || fail "GET $HEALTH_URL failed: $response"
    status=${response##*$'\n'}
    body=${response%$'\n'*}
    echo "health_status=$status"
    echo "health=$(printf '%s' "$body" | tr -d '\r\n')"
    [ "$status" = 200 ] || fail "GET $HEALTH_URL answered HTTP $status"
    ;;
  *)
    fail "ACTION must be stop, restart or health, got '${ACTION:-}'"
    ;;
esac
