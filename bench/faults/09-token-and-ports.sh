#!/usr/bin/env bash
# Case 9: a data folder (0755) and token (0644) others could read, `guild view` through
# an xdg-open that records its command line, a run with secrets in its environment, and
# requests to the dashboard's port with a rebound Host. Checked: modes tightened and the
# token replaced, no token on a command line, each code works once, no secret recorded,
# the foreign Host refused.
CASE_NAME="9 token and ports"
source "$(dirname "$0")/lib.sh"
ticker_project
chmod 0755 "$GUILD_DATA_DIR"
printf '%064d' 0 > "$GUILD_DATA_DIR/token"; chmod 0644 "$GUILD_DATA_DIR/token"
export GUILD_LISTEN=127.0.0.1:0
guild daemon start --listen 127.0.0.1:0 >/dev/null
address=$("$GUILD_BIN_DIR/guild" daemon status | sed -n 's/^  tcp: *//p')
wait_for "the new token" test "$(cat "$GUILD_DATA_DIR/token")" != "$(printf '%064d' 0)"
modes="$(stat -c %a "$GUILD_DATA_DIR") $(stat -c %a "$GUILD_DATA_DIR/token")"
token=$(cat "$GUILD_DATA_DIR/token")
mkdir -p "$CASE_DIR/bin"
printf '#!/bin/sh\nprintf "%%s\\n" "$@" > %s/xdg-open.argv\n' "$CASE_DIR" > "$CASE_DIR/bin/xdg-open"
chmod +x "$CASE_DIR/bin/xdg-open"
probe_start
printed=$(PATH="$CASE_DIR/bin:$PATH" guild view 2>/dev/null)
wait_for "xdg-open" test -s "$CASE_DIR/xdg-open.argv"
grep -q "$token" "$CASE_DIR/xdg-open.argv" && argv="token ON xdg-open's command line" || argv="no token on xdg-open's command line"
redeem() { curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"code\":\"${1##*code=}\"}" "http://$address/auth/code"; }
codes="$(redeem "$(cat "$CASE_DIR/xdg-open.argv")") $(redeem "$printed") $(redeem "$printed")"
rebound=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: rebound.example:${address##*:}" "http://$address/")
DB_PASS=hunter2 GH_PAT=ghp_x SENTRY_DSN=https://k@s/1 DATABASE_URL=postgres://u:pw9@h/db \
  AZ="DefaultEndpointsProtocol=https;AccountName=a;AccountKey=key9==" start_run
wait_for "the run to print 200 lines" bash -c "[ \$(wc -l < '$RUN_DIR/guild.d/stdout.log') -ge 200 ]"
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
probe_stop
envattr=$(sqlite3 "file:$RUN_DIR/guild.d/run.db?mode=ro" "select value from attr where name = 'env'")
leaks=0
for secret in hunter2 ghp_x https://k@s pw9 key9; do case $envattr in *"$secret"*) leaks=$((leaks + 1));; esac; done
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "modes now $modes, token replaced; $argv; code answers $codes; Host rebound.example: $rebound; $leaks of 5 secrets in env; $same"
