#!/usr/bin/env bash
# Case 4: another local user (uid 65534) opens 1,000 connections to the dashboard's port
# of a guildd limited to 1,024 descriptors and sends nothing. guildd keeps answering its
# owner (the socket, and TCP with the token), does not spin, records the run's end, and
# closes the silent connections.
CASE_NAME="4 1,000 idle TCP connections"
source "$(dirname "$0")/lib.sh"
ticker_project
export GUILD_LISTEN=127.0.0.1:0
prlimit --nofile=1024:1024 "$GUILD_BIN_DIR/guild" daemon start --listen 127.0.0.1:0 >/dev/null
daemon=$("$GUILD_BIN_DIR/guild" daemon status | sed -n 's/.* pid \([0-9]*\)$/\1/p')
address=$("$GUILD_BIN_DIR/guild" daemon status | sed -n 's/^  tcp: *//p')
start_run
wait_for "the run to print" test -s "$RUN_DIR/guild.d/stdout.log"
python=/usr/bin/python3; [ -x $python ] || python=python3
cpu() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
cpu0=$(cpu); t0=$SECONDS
probe_start
# Hold 1,000 silent connections for 12 s (past the 10 s first-request timeout), then
# count those guildd closed.
siege=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- $python -c '
import resource, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1100), hard))
socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(1000)]
time.sleep(12)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(len(socks), closed)' "$address")
read -r opened closed <<< "$siege"
fds=$(ls "/proc/$daemon/fd" | wc -l)
token=$(cat "$GUILD_DATA_DIR/token")
tcp_ms=$($python - "$address" "$token" <<'PY'
import sys, time, urllib.request
addr, token = sys.argv[1], sys.argv[2]
t = time.monotonic()
req = urllib.request.Request(f"http://{addr}/", headers={"x-guild-token": token})
urllib.request.urlopen(req, timeout=10).read()
print(int((time.monotonic() - t) * 1000))
PY
)
touch "$CASE_DIR/go"
wait_for "the run's end" run_ended
probe_stop
spent=$(( $(cpu) - cpu0 )); elapsed=$(( SECONDS - t0 ))
lines_same && same="same lines" || same="lines DIFFER"
result "$(lines_written)" "$(lines_stored)" "$opened opened, $closed closed by guildd within 12 s; $fds fds held; CPU $((spent))/$((elapsed * 100)) ticks; page over TCP in ${tcp_ms} ms; run $(attr status); $same"
