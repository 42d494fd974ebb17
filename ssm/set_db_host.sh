#!/usr/bin/env bash
# Point the IRISX API at a database host: rewrite the DB_HOST= line of the app's env file and
# restart the app with pm2. Run by the project's own SSM Command document, nothing generic.
#
# Inputs (environment variables, set by the document from its allowedPattern-checked parameters):
#   DB_HOST   the new database host name
#   ENV_FILE  absolute path of the app's .env file (no "." or ".." segment, no "//"; not a symlink)
#   APP_NAME  the pm2 process name
#
# Guarantees: every line but DB_HOST= is kept byte for byte (CRLF endings, comments, a last line
# without a newline); on a DB_HOST= line only the value changes (its quotes, spacing and an inline
# " # comment" stay); DB_HOST= is added when absent; the new file replaces the old one atomically
# (rename), so no partial file is ever left behind. A timestamped backup (mode 0600, the file's
# owner) is kept next to the file, and only the newest KEEP_BACKUPS of them: each holds the
# database password.
# Refuses, changing nothing: a symlinked ENV_FILE (following it would rewrite, and hand the app
# the owner of, whatever it points at) and a current DB_HOST value that is not a plain host name
# (the rollback sends previous_db_host back through the document's allowedPattern).
# Output lines the workflow reads: previous_db_host=..., backup=..., db_host=...
set -euo pipefail

# How many $ENV_FILE.bak.<UTC timestamp>[.N] files (this script's own) are kept; older ones are deleted.
KEEP_BACKUPS=5
# The document's ENV_FILE_PATTERN (stacks/ssm_documents.py), verbatim: 1 to 16 "/segment"s of at
# most 64 characters from [A-Za-z0-9._-], none of them "." or "..", none empty.
ENV_FILE_RE='^(/([A-Za-z0-9_][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})){1,16}$'

fail() {
  echo "set_db_host: $*" >&2
  exit 1
}

[ -n "${DB_HOST:-}" ] || fail "DB_HOST is empty; nothing was changed"
[ -n "${ENV_FILE:-}" ] || fail "ENV_FILE is empty; nothing was changed"
[ -n "${APP_NAME:-}" ] || fail "APP_NAME is empty; nothing was changed"
# The document's allowedPattern already checked these; checked again so the script is safe on its own.
[[ "$DB_HOST" =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$ ]] || fail "DB_HOST '$DB_HOST' is not a host name; nothing was changed"
[[ "$ENV_FILE" =~ $ENV_FILE_RE ]] || fail "ENV_FILE is not an absolute path of plain segments (no '.', '..' or '//'); nothing was changed"
[[ "$APP_NAME" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || fail "APP_NAME is not a pm2 process name; nothing was changed"

if [ -L "$ENV_FILE" ]; then
  fail "$ENV_FILE is a symbolic link (to $(readlink -- "$ENV_FILE" || echo '?')), not the app's own file; refusing to follow it, nothing was changed"
fi
[ -e "$ENV_FILE" ] || fail "env file $ENV_FILE does not exist on $(hostname); nothing was changed"
[ -f "$ENV_FILE" ] || fail "$ENV_FILE is not a regular file; nothing was changed"
[ -r "$ENV_FILE" ] || fail "$ENV_FILE is not readable by $(id -un); nothing was changed"
[ -w "$ENV_FILE" ] || fail "$ENV_FILE is not writable by $(id -un); nothing was changed"
dir=$(dirname -- "$ENV_FILE")

# The text after "DB_HOST=", split the way dotenv reads it: lead (blanks before the value), q (its
# quote, " or ', if any), val (the value), tail (what follows it: blanks, an inline comment, which
# starts at a "#" after a blank outside the quotes), ok (0 when a quote is never closed or
# something other than a comment follows the closing quote). The line has no CR any more.
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

# The value the app uses today (the last DB_HOST= line wins, as with dotenv), for the rollback.
# Printed as one flag character and the value: "-" no DB_HOST= line, "1" parsed, "0" malformed.
parsed=$(LC_ALL=C awk -v sq="'" "$PARSE_DB_HOST"'
  {
    line = $0
    sub(/\r$/, "", line)
    if ((n = key_length(line)) > 0) {
      parse(substr(line, n + 1))
      flag = ok; last = val
    }
  }
  END { printf "%s%s", (flag == "" ? "-" : flag), last }' "$ENV_FILE") || fail "could not read $ENV_FILE; nothing was changed"
previous=${parsed:1}
# An empty value counts as no DB_HOST at all: the rollback then sends the source's endpoint.
if [ "${parsed:0:1}" = 0 ] || { [ -n "$previous" ] && ! [[ "$previous" =~ ^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$ ]]; }; then
  fail "the current DB_HOST line of $ENV_FILE is not a plain host name ('$previous'); a rollback could not send it back, so nothing was changed"
fi
echo "previous_db_host=${previous}"

# Does the file end without a newline? ($(...) strips a trailing newline, so a newline reads as empty.)
no_final_newline=0
if [ -s "$ENV_FILE" ] && [ -n "$(tail -c1 -- "$ENV_FILE")" ]; then
  no_final_newline=1
fi

tmp=""
bak_tmp=""
trap 'rm -f -- ${tmp:+"$tmp"} ${bak_tmp:+"$bak_tmp"}' EXIT
tmp=$(mktemp "$dir/.set_db_host.XXXXXX" 2>/dev/null) || fail "cannot create a temporary file in $dir; nothing was changed"

LC_ALL=C awk -v sq="'" -v host="$DB_HOST" -v nofinal="$no_final_newline" "$PARSE_DB_HOST"'
  { lines[NR] = $0 }
  END {
    found = 0
    crlf = (NR > 0 && lines[1] ~ /\r$/)
    for (i = 1; i <= NR; i++) {
      line = lines[i]
      cr = ""
      if (line ~ /\r$/) { cr = "\r"; line = substr(line, 1, length(line) - 1) }
      if ((n = key_length(line)) > 0) {
        parse(substr(line, n + 1))
        # A malformed earlier duplicate (the last one was checked above) loses its remainder.
        line = substr(line, 1, n) lead q host q (ok ? tail : "")
        found = 1
      }
      if (i < NR || !nofinal) printf "%s%s\n", line, cr
      else printf "%s%s", line, cr
    }
    if (!found) {
      if (NR > 0 && nofinal) printf "%s", (crlf ? "\r\n" : "\n")
      printf "DB_HOST=%s%s\n", host, (crlf ? "\r" : "")
    }
  }' "$ENV_FILE" >"$tmp" || fail "could not write the new $ENV_FILE; nothing was changed"

# Same owner and mode as the original, then the atomic switch.
chmod --reference="$ENV_FILE" -- "$tmp" || fail "could not copy the mode of $ENV_FILE; nothing was changed"
chown --reference="$ENV_FILE" -- "$tmp" 2>/dev/null || true

# The backup: made under a mktemp name (created 0600, never through an existing path) and renamed
# into place, so a file or symlink already at the backup's name is replaced, never written through.
# Within one second the names go on as <stamp>.1, <stamp>.2, ... after the highest one taken (not
# into a gap pruning left), so they always sort in the order they were made.
backup="$ENV_FILE.bak.$(date -u +%Y%m%dT%H%M%SZ)"
seq=0
for f in "$backup" "$backup".*; do
  suffix=${f#"$backup"}
  if [ -z "$suffix" ]; then # the plain name comes first in the list
    if [ -e "$f" ] || [ -L "$f" ]; then seq=1; fi
  elif [[ "$suffix" =~ ^\.([0-9]{1,9})$ ]] && [ $((10#${BASH_REMATCH[1]})) -ge "$seq" ]; then
    seq=$((10#${BASH_REMATCH[1]} + 1))
  fi
done
[ "$seq" = 0 ] || backup="$backup.$seq"
bak_tmp=$(mktemp "$dir/.set_db_host.bak.XXXXXX" 2>/dev/null) || fail "cannot create a temporary file in $dir; nothing was changed"
cat -- "$ENV_FILE" >"$bak_tmp" || fail "could not back up $ENV_FILE; nothing was changed"
chmod 600 -- "$bak_tmp" || fail "could not make the backup of $ENV_FILE private; nothing was changed"
chown --reference="$ENV_FILE" -- "$bak_tmp" 2>/dev/null || true
touch -r "$ENV_FILE" -- "$bak_tmp" 2>/dev/null || true
mv -f -T -- "$bak_tmp" "$backup" || fail "could not back up $ENV_FILE to $backup; nothing was changed"
bak_tmp=""
echo "backup=$backup"

mv -f -T -- "$tmp" "$ENV_FILE" || fail "could not replace $ENV_FILE; it is unchanged (backup: $backup)"
tmp=""
echo "db_host=$DB_HOST"

# Only the newest KEEP_BACKUPS of this script's backups stay (they hold the database password);
# those kept are made private too (backups from before this script made them 0600). A failure
# here is reported, never fatal: the switch itself is done.
prune_backups() {
  local f suffix
  local -a ours=()
  for f in "$ENV_FILE".bak.*; do
    suffix=${f#"$ENV_FILE.bak."}
    [[ "$suffix" =~ ^[0-9]{8}T[0-9]{6}Z(\.[0-9]{1,9})?$ ]] || continue
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    ours+=("$f")
  done
  [ "${#ours[@]}" -gt 0 ] || return 0
  local -a sorted
  mapfile -t sorted < <(printf '%s\n' "${ours[@]}" | LC_ALL=C sort -V)
  local count=${#sorted[@]} i
  for ((i = 0; i < count; i++)); do
    if [ "$i" -lt $((count - KEEP_BACKUPS)) ]; then
      rm -f -- "${sorted[i]}" || echo "set_db_host: could not delete the old backup ${sorted[i]}" >&2
    else
      chmod 600 -- "${sorted[i]}" || echo "set_db_host: could not make ${sorted[i]} private" >&2
    fi
  done
}
prune_backups || echo "set_db_host: could not prune the old backups of $ENV_FILE" >&2

# pm2 belongs to the user who owns the app; when run as root (as SSM does), act as that user.
owner=$(stat -c %U -- "$ENV_FILE")
if [ "$(id -u)" = 0 ] && [ "$owner" != root ] && command -v sudo >/dev/null 2>&1; then
  pm2_out=$(sudo -H -i -u "$owner" -- pm2 restart "$APP_NAME" --update-env 2>&1) && pm2_rc=0 || pm2_rc=$?
else
  pm2_out=$(pm2 restart "$APP_NAME" --update-env 2>&1) && pm2_rc=0 || pm2_rc=$?
fi
echo "$pm2_out"
if [ "$pm2_rc" -ne 0 ]; then
  fail "pm2 restart $APP_NAME failed (exit $pm2_rc): $ENV_FILE already points at $DB_HOST (previous: ${previous:-none}, backup: $backup) but the app was not restarted"
fi
echo "restarted=$APP_NAME"
