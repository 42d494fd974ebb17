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
# db_host is left empty (unknown), with a note on stderr, when ENV_FILE is a symlink (never followed).
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

db_host=""
if [ -n "${ENV_FILE:-}" ] && [ -L "$ENV_FILE" ]; then
  echo "app_control: $ENV_FILE is a symbolic link; not following it, db_host unknown" >&2
elif [ -n "${ENV_FILE:-}" ] && [ -f "$ENV_FILE" ] && [ -r "$ENV_FILE" ]; then
  db_host=$(LC_ALL=C awk '
    {
      line = $0
      sub(/\r$/, "", line)
      if (match(line, /^[ \t]*(export[ \t]+)?DB_HOST[ \t]*=/)) {
        value = substr(line, RLENGTH + 1)
        gsub(/^[ \t"'"'"']+|[ \t"'"'"']+$/, "", value)
        last = value
      }
    }
    END { printf "%s", last }' "$ENV_FILE")
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
