#!/usr/bin/env bats
# The /api/v1/watch SSE stream and `pocketctl watch`, against a real
# `pocketctl serve`: resume after a disconnect with Last-Event-ID and with
# ?since= (exactly the missed changes, in order, no duplicates), the reset
# event when the change log no longer holds them, the collection filter,
# heartbeats, access rules and masked secrets, clients that
# vanish mid-stream, the max-streams cap, and the CLI's reconnect.
#
# Every test starts its own server (the tests need different settings:
# change-log retention, heartbeat interval, stream cap) on a free loopback
# port, and stops it in teardown; a sanitizer report in its log fails the
# test. Streams are read by a small Python SSE reader that stops after a
# given number of events or a timeout, so tests wait only as long as they
# must.

load helpers

setup() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  command -v jq >/dev/null || skip "jq is needed"
  e2e_setup watch
  BG_PIDS=()
  # start_server (helpers.bash) [VAR=value...] [-- serve options...]: a
  # superuser for the tests' logins, one log across restarts, and a
  # sanitizer report in it fails the test (stop_server).
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  SERVER_LOG_APPEND=1
  SERVER_CHECK_LOG=1
  # Debian's interpreter: a version-manager shim may take seconds to start.
  PY=python3
  [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
  write_sse_reader
}

teardown() {
  local p
  for p in "${BG_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  stop_server
  rm -rf "$T"
}

# The SSE reader: sse URL COUNT TIMEOUT [EVENT_RE]. Reads the stream with
# $TOKEN (or $AUTH when set; AUTH=none sends no token) and Last-Event-ID
# $LEID when set, and stops after COUNT events matching EVENT_RE (default:
# every event but heartbeats) or TIMEOUT seconds. Prints "status CODE"
# first, then one line per event: "ID EVENT NAME REVISION" (NAME "-" for
# events without one), or the body of a non-200 reply.
write_sse_reader() {
  cat >"$T/sse.py" <<'EOF'
import http.client, json, os, re, socket, sys, time, urllib.parse
url, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pat = re.compile(sys.argv[4] if len(sys.argv) > 4 else r"^(?!heartbeat$)")
u = urllib.parse.urlsplit(url)
hdrs = {}
auth = os.environ.get("AUTH") or os.environ.get("TOKEN", "")
if auth and auth != "none":
    hdrs["Authorization"] = auth
if os.environ.get("LEID"):
    hdrs["Last-Event-ID"] = os.environ["LEID"]
deadline = time.time() + timeout
c = http.client.HTTPConnection(u.hostname, u.port, timeout=max(timeout, 1))
c.request("GET", u.path + ("?" + u.query if u.query else ""), headers=hdrs)
# The reply says "Connection: close": the response then owns the socket
# and c.sock is None, so keep it for the read timeouts.
sock = c.sock
r = c.getresponse()
print("status", r.status, flush=True)
if r.status != 200:
    print(r.read().decode(errors="replace"), flush=True)
    sys.exit(0)
n, ev = 0, {"data": []}
try:
    while n < count and time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        line = r.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line == "":
            if "event" in ev:
                try:
                    d = json.loads("\n".join(ev["data"]))
                except ValueError:
                    d = {}
                name = d.get("name") or "-"
                print(ev.get("id", "-"), ev["event"], name,
                      d.get("revision", "-"), flush=True)
                if pat.search(ev["event"]):
                    n += 1
            ev = {"data": []}
            continue
        if line.startswith(":"):
            continue
        k, _, v = line.partition(":")
        v = v[1:] if v.startswith(" ") else v
        if k == "data":
            ev["data"].append(v)
        else:
            ev[k] = v
except (socket.timeout, TimeoutError, ConnectionError, OSError):
    pass
EOF
}

sse() {
  "$PY" "$T/sse.py" "$@"
}

# sse_bg FILE ARGS...: the reader in the background, output to FILE; waits
# until the stream is open.
sse_bg() {
  local f="$1" i
  shift
  "$PY" "$T/sse.py" "$@" >"$f" 2>&1 &
  BG_PIDS+=($!)
  for i in $(seq 1 100); do
    grep -q '^status' "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "stream did not open: $(cat "$f")" >&2
  return 1
}

# wait_bg: wait for the last background reader to finish by itself.
wait_bg() {
  local p="${BG_PIDS[${#BG_PIDS[@]}-1]}"
  wait "$p" 2>/dev/null || true
}

# post COLLECTION JSON [TOKEN]: create a record, echo its id.
post() {
  local out
  out="$(curl -sS -m 10 -H "Authorization: ${3:-$TOKEN}" \
    -H 'Content-Type: application/json' --data-binary "$2" \
    -w '\n%{http_code}' "$URL/api/collections/$1/records")"
  [ "$(tail -n1 <<<"$out")" = 200 ] || { echo "POST $1: $out" >&2; return 1; }
  head -n -1 <<<"$out" | jq -r .id
}

# prompts PREFIX N: create ai_prompts PREFIX-0 .. PREFIX-(N-1).
prompts() {
  local i
  for i in $(seq 0 $(($2 - 1))); do
    post ai_prompts "{\"name\":\"$1-$i\",\"body\":\"b\"}" >/dev/null || return 1
  done
}

head_rev() {
  curl -sS -m 5 "$URL/metrics" | awk '/^pocketctl_changelog_head_revision/ {print $2}'
}

login() {   # login COLLECTION EMAIL PASSWORD -> token
  curl -sS -m 10 -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$2\",\"password\":\"$3\"}" \
    "$URL/api/collections/$1/auth-with-password" | jq -r '.token // empty'
}

# The resume check of the first test; the server is started by the caller.
resume_exactly_100() {
  # A live stream that takes one event and hangs up.
  sse_bg "$T/first" "$URL/api/v1/watch" 1 10 '^create$'
  prompts first 1
  wait_bg
  run awk '$2 == "create" {print $1, $3}' "$T/first"
  [ "${#lines[@]}" -eq 1 ]
  [ "${lines[0]##* }" = first-0 ]
  last="${lines[0]%% *}"
  [[ "$last" =~ ^[0-9]+$ ]]

  prompts missed 100
  LEID="$last" run sse "$URL/api/v1/watch" 100 10 '^create$'
  [ "${lines[0]}" = "status 200" ]
  mapfile -t creates < <(printf '%s\n' "${lines[@]}" | awk '$2 == "create"')
  [ "${#creates[@]}" -eq 100 ]
  for i in $(seq 0 99); do
    read -r id ev name rev <<<"${creates[$i]}"
    [ "$ev" = create ]
    [ "$name" = "missed-$i" ]
    [ "$id" = "$rev" ]
    [ "$id" -gt "$last" ]
  done
  # Every revision once, in order, none skipped (reconcilers' status
  # updates may sit in between the creates).
  mapfile -t revs < <(printf '%s\n' "${lines[@]}" | awk '$2 != "heartbeat" && !/^status/ {print $1}')
  for i in $(seq 1 $((${#revs[@]} - 1))); do
    [ "${revs[$i]}" -eq $((${revs[$((i - 1))]} + 1)) ]
  done
  [ "${revs[0]}" -eq $((last + 1)) ]
}

@test "disconnect, 100 writes, reconnect with Last-Event-ID: exactly those 100, in order" {
  start_server POCKETCTL_HEARTBEAT_MS=500
  resume_exactly_100
}

@test "with the stream pump off, each stream runs on its worker and resumes the same" {
  start_server POCKETCTL_HEARTBEAT_MS=500 POCKETCTL_STREAM_PUMP=0
  resume_exactly_100
}

# many.py PORT N SECONDS: open N watch streams on raw sockets, print
# "open" once all have their headers, then count, per stream, the create
# events that arrive within SECONDS and print "got MIN MAX".
write_many_streams() {
  cat >"$T/many.py" <<'EOF'
import os, select, socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
req = ("GET /api/v1/watch?collection=ai_prompts HTTP/1.1\r\nHost: x\r\n"
       "Authorization: %s\r\n\r\n" % os.environ["TOKEN"]).encode()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
bufs = {s: b"" for s in socks}
deadline = time.time() + 30
while any(b"\r\n\r\n" not in b for b in bufs.values()) and time.time() < deadline:
    r, _, _ = select.select(socks, [], [], 1)
    for s in r:
        bufs[s] += s.recv(65536)
bad = [b[:160] for b in bufs.values() if not b.startswith(b"HTTP/1.1 200")]
assert not bad, "%d not opened, such as %r" % (len(bad), bad[:3])
print("open", flush=True)
end = time.time() + secs
while time.time() < end:
    r, _, _ = select.select(socks, [], [], 0.2)
    for s in r:
        bufs[s] += s.recv(65536)
counts = [b.count(b"event: create") for b in bufs.values()]
print("got", min(counts), max(counts), flush=True)
EOF
}

# open_many N SECS: N watch streams from many.py in the background, held
# SECS seconds once open; returns when they are.
open_many() {
  "$PY" "$T/many.py" "$PORT" "$1" "$2" >"$T/many.out" 2>&1 &
  BG_PIDS+=($!)
  for i in $(seq 1 300); do
    grep -q '^open' "$T/many.out" && break
    sleep 0.1
  done
  grep -q '^open' "$T/many.out" || { cat "$T/many.out" >&2; false; }
}

@test "open streams hold no worker thread: 300 watchers, few threads, requests still served" {
  start_server POCKETCTL_HEARTBEAT_MS=60000 -- --workers 8
  write_many_streams
  open_many 300 6
  # 8 workers + the start-up reserve + the server's own threads: far
  # fewer than one per stream.
  threads=$(awk '/^Threads:/ {print $2}' /proc/"$SERVER_PID"/status)
  [ "$threads" -lt 100 ]
  run curl -sS -m 5 "$URL/metrics"
  [[ "$output" == *"pocketctl_sse_streams_open 300"* ]]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" \
    "$URL/api/collections/ai_prompts/records"
  [ "$output" = 200 ]
  prompts many 3
  wait_bg
  run grep '^got' "$T/many.out"
  [ "$output" = "got 3 3" ]
}

@test "the stream pump's lanes: 3 nicer threads share 90 watchers, each gets every change; a bad count is refused by name" {
  # One lane: the thread count to compare with.
  start_server POCKETCTL_HEARTBEAT_MS=60000 POCKETCTL_PUMP_THREADS=1 -- --workers 8
  one=$(awk '/^Threads:/ {print $2}' /proc/"$SERVER_PID"/status)
  stop_server
  start_server POCKETCTL_HEARTBEAT_MS=60000 POCKETCTL_PUMP_THREADS=3 -- --workers 8
  three=$(awk '/^Threads:/ {print $2}' /proc/"$SERVER_PID"/status)
  [ "$three" -eq $((one + 2)) ]
  # the lanes, and only they, run 5 nice steps below the server
  nicer=$(cat /proc/"$SERVER_PID"/task/*/stat | awk '{sub(/.*\) /, ""); if ($17 == 5) n++} END {print n + 0}')
  [ "$nicer" -eq 3 ]
  write_many_streams
  open_many 90 6
  run curl -sS -m 5 "$URL/metrics"
  [[ "$output" == *"pocketctl_sse_streams_open 90"* ]]
  prompts lanes 4
  wait_bg
  run grep '^got' "$T/many.out"
  [ "$output" = "got 4 4" ]
  stop_server
  # Out of range: the default, and the log says which variable it ignored.
  start_server POCKETCTL_PUMP_THREADS=0
  stop_server
  grep -q "ignoring POCKETCTL_PUMP_THREADS='0' (want 1..16)" "$T/server.log"
}

# The server's wake-ups: voluntary context switches of all its threads.
wakeups() {
  cat /proc/"$SERVER_PID"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'
}

@test "an idle server with 100 open streams does not tick: under one wake-up a second" {
  # Heartbeats every 3 s, on a 1 s grid: a second's worth of them at once.
  # All 100 come from 127.0.0.1 at once: no cap per address (while they
  # hold workers, before the pump takes them, more than 64 may be open).
  start_server POCKETCTL_HEARTBEAT_MS=3000 -- --max-conns-per-ip 0
  write_many_streams
  open_many 100 12
  sleep 1
  w0=$(wakeups)
  sleep 6
  w1=$(wakeups)
  # civetweb's own listener wakes every 2 s; the guard, the hub, the
  # push sender and the pump only for work: 2 heartbeat instants of the
  # pump, the listener's 3, a few to spare. Before: about 13 a second.
  echo "wake-ups in 6 s: $((w1 - w0))" >&3
  [ "$((w1 - w0))" -le 8 ]
  wait_bg
}

@test "a watcher that stops reading holds back no one and catches up, in order, when it reads again" {
  start_server POCKETCTL_HEARTBEAT_MS=60000
  since=$(head_rev)
  # The stalled reader: a tiny receive buffer, and it reads nothing until
  # $T/go exists.
  cat >"$T/stall.py" <<'EOF'
import os, socket, sys, time
port, since, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /api/v1/watch?collection=healthchecks&since=%s HTTP/1.1\r\n"
           "Host: x\r\nAuthorization: %s\r\n\r\n"
           % (since, os.environ["TOKEN"])).encode())
print("open", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
data, end = b"", time.time() + 30
s.settimeout(1)
while data.count(b"event: create") < 600 and time.time() < end:
    try:
        chunk = s.recv(1 << 20)
    except socket.timeout:
        continue
    if not chunk:
        break
    data += chunk
for line in data.split(b"\n"):
    if line.startswith(b"id: "):
        print(line[4:].decode().strip())
EOF
  "$PY" "$T/stall.py" "$PORT" "$since" "$T/go" >"$T/stall.out" 2>&1 &
  BG_PIDS+=($!)
  sse_bg "$T/live" "$URL/api/v1/watch?collection=healthchecks" 600 60 '^create$'
  # 600 changes of some 700 bytes each, in two applies: far more than the
  # stalled socket takes.
  pad=$(head -c 190 /dev/zero | tr '\0' x)
  for part in a b; do
    for i in $(seq 0 299); do
      printf 'apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\nmetadata:\n  name: %s-%s-%03d\nspec:\n  status: ready\n---\n' "$part" "$pad" "$i"
    done >"$T/hc.yaml"
    run curl -sS -o "$T/apply.out" -w '%{http_code}' -H "Authorization: $TOKEN" \
      -H 'Content-Type: application/yaml' --data-binary @"$T/hc.yaml" "$URL/api/v1/apply"
    [ "$output" = 200 ] || { head -c 600 "$T/apply.out"; false; }
  done
  wait_bg
  # The reading watcher got all 600 while the other one was stalled.
  [ "$(grep -c ' create ' "$T/live")" -eq 600 ]
  run curl -sS -m 5 "$URL/metrics"
  [[ "$output" == *"pocketctl_sse_streams_open 1"* ]]
  touch "$T/go"
  wait "${BG_PIDS[0]}" || true
  # The stalled one: the same 600 creates as the live one, each revision
  # once, in order. (Not "since + 1" onwards: the engine may still write a
  # status of another collection after since was read.)
  mapfile -t ids <"$T/stall.out"
  [ "${ids[0]}" = open ]
  [ "${#ids[@]}" -eq 601 ]
  [ "${ids[1]}" -gt "$since" ]
  [ "$(printf '%s\n' "${ids[@]:1}")" = "$(awk '$2 == "create" {print $1}' "$T/live")" ]
  for i in $(seq 2 600); do
    [ "${ids[$i]}" -gt "${ids[$((i - 1))]}" ]
  done
}

@test "a client that takes nothing for the stall limit is dropped; a slow one that reads is not" {
  start_server POCKETCTL_HEARTBEAT_MS=60000 POCKETCTL_STREAM_STALL_MS=1500
  # Two readers with tiny receive buffers: one never reads, one reads 2 KB
  # every 200 ms (both are killed in teardown).
  cat >"$T/stuck.py" <<'EOF'
import os, socket, sys, time
port, mode, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
go = os.environ.get("GO_FILE", "")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /api/v1/watch?collection=healthchecks HTTP/1.1\r\n"
           "Host: x\r\nAuthorization: %s\r\n\r\n" % os.environ["TOKEN"]).encode())
print("open", flush=True)
got, end = 0, time.time() + secs
s.settimeout(0.2)
while time.time() < end:
    if mode == "never" and not os.path.exists(go):
        time.sleep(0.2)
        continue
    try:
        chunk = s.recv(2048)
    except socket.timeout:
        continue
    if not chunk:
        print("closed", flush=True)
        break
    got += len(chunk)
    print("got", got, flush=True)
    if mode == "slow":
        time.sleep(0.2)
EOF
  GO_FILE="$T/go" "$PY" "$T/stuck.py" "$PORT" never 60 >"$T/never.out" 2>&1 &
  BG_PIDS+=($!)
  "$PY" "$T/stuck.py" "$PORT" slow 60 >"$T/slow.out" 2>&1 &
  BG_PIDS+=($!)
  sleep 0.5
  # 600 changes of some 700 bytes: more than a stream's send buffer
  # (2 x 128 KiB) and the client's take.
  pad=$(head -c 190 /dev/zero | tr '\0' x)
  for part in a b; do
    for i in $(seq 0 299); do
      printf 'apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\nmetadata:\n  name: %s-%s-%03d\nspec:\n  status: ready\n---\n' "$part" "$pad" "$i"
    done >"$T/hc.yaml"
    run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" \
      -H 'Content-Type: application/yaml' --data-binary @"$T/hc.yaml" "$URL/api/v1/apply"
    [ "$output" = 200 ]
  done
  # The one that never reads is dropped after 1.5 s without progress;
  # the slow one stays, however long it takes.
  dropped() { curl -sS -m 5 "$URL/metrics" | grep -q '^pocketctl_sse_streams_open 1$'; }
  for i in $(seq 1 60); do dropped && break; sleep 0.2; done
  dropped
  sleep 3
  dropped
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' "$URL/healthz"
  [ "$output" = 200 ]
  # Which one: the one that never read finds its connection closed once
  # it reads; the slow one is still open and still getting events.
  touch "$T/go"
  closed() { grep -q closed "$T/never.out"; }
  for i in $(seq 1 50); do closed && break; sleep 0.2; done
  closed
  ! grep -q closed "$T/slow.out"
  [ "$(awk '/^got/ {n = $2} END {print n + 0}' "$T/slow.out")" -gt 0 ]
}

@test "?since= replays the same way, and the stream continues live" {
  start_server POCKETCTL_HEARTBEAT_MS=500
  since=$(head_rev)
  prompts s 5
  sse_bg "$T/out" "$URL/api/v1/watch?since=$since" 7 10 '^create$'
  prompts live 2
  wait_bg
  run awk '$2 == "create" {print $3}' "$T/out"
  [ "${lines[*]}" = "s-0 s-1 s-2 s-3 s-4 live-0 live-1" ]
  # Revisions increase by one: nothing twice, nothing skipped.
  run awk '$2 != "heartbeat" && !/^status/ {print $1}' "$T/out"
  [ "${lines[0]}" -eq $((since + 1)) ]
  for i in $(seq 1 $((${#lines[@]} - 1))); do
    [ "${lines[$i]}" -eq $((${lines[$((i - 1))]} + 1)) ]
  done
}

@test "a revision older than the retained change log gets an explicit reset, then live changes" {
  start_server POCKETCTL_HEARTBEAT_MS=500 POCKETCTL_CHANGELOG_KEEP=10
  prompts r 30
  head=$(head_rev)
  LEID=1 sse_bg "$T/out2" "$URL/api/v1/watch?collection=ai_prompts" 2 10 '^(reset|create)$'
  prompts after 1
  wait_bg
  run awk '$2 == "reset" || $2 == "create"' "$T/out2"
  [ "${#lines[@]}" -eq 2 ]
  read -r id ev name rev <<<"${lines[0]}"
  [ "$ev" = reset ]
  [ "$id" = "$head" ]
  [ "$rev" = "$head" ]
  read -r id ev name rev <<<"${lines[1]}"
  [ "$ev" = create ]
  [ "$name" = after-0 ]
  [ "$id" -gt "$head" ]
  # The reason says why.
  run curl -sN -m 1 -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=2"
  [[ "$output" == *"event: reset"* ]]
  [[ "$output" == *"older than the retained change log"* ]]
  # A revision ahead of the store resets too (a replaced data directory).
  LEID=999999 run sse "$URL/api/v1/watch" 1 3
  read -r id ev name rev <<<"${lines[1]}"
  [ "$ev" = reset ]
  [ "$id" = "$(head_rev)" ]
}

@test "the collection filter: repeatable, comma lists, kinds; unknown names are 400" {
  start_server POCKETCTL_HEARTBEAT_MS=500
  sse_bg "$T/out" "$URL/api/v1/watch?collection=ai_models" 2 10 '^create$'
  sse_bg "$T/both" "$URL/api/v1/watch?collection=AiModel&collection=ai_prompts" 4 10 '^create$'
  prompts p 1
  post ai_models '{"name":"m1","identifier":"x/m1"}' >/dev/null
  prompts q 1
  post ai_models '{"name":"m2","identifier":"x/m2"}' >/dev/null
  wait "${BG_PIDS[0]}" "${BG_PIDS[1]}" 2>/dev/null || true
  run awk '$2 == "create" {print $3}' "$T/out"
  cat "$T/out" "$T/both"
  [ "${lines[*]}" = "m1 m2" ]
  run awk '$2 == "create" {print $3}' "$T/both"
  [ "${lines[*]}" = "p-0 m1 q-0 m2" ]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" \
    "$URL/api/v1/watch?collection=nope"
  [ "$output" = 400 ]
  run curl -sS -m 5 -H "Authorization: $TOKEN" "$URL/api/v1/watch?collection=ai_models,nope"
  [[ "$output" == *"unknown collection 'nope'"* ]]
}

@test "heartbeats carry the head revision at the configured interval" {
  start_server POCKETCTL_HEARTBEAT_MS=200
  prompts h 2
  head=$(head_rev)
  t0=$(date +%s%N)
  run sse "$URL/api/v1/watch" 3 5 '^heartbeat$'
  t1=$(date +%s%N)
  [ "${lines[0]}" = "status 200" ]
  mapfile -t hbs < <(printf '%s\n' "${lines[@]}" | awk '$2 == "heartbeat"')
  [ "${#hbs[@]}" -eq 3 ]
  for l in "${hbs[@]}"; do
    read -r id ev name rev <<<"$l"
    [ "$rev" -ge "$head" ]     # the head (reconcilers may still write)
    [ "$id" -le "$rev" ]       # the id is the stream's cursor
  done
  # Three 200 ms heartbeats take about 600 ms, not 15 s.
  echo "took $(( (t1 - t0) / 1000000 )) ms: $output"
  [ $(( (t1 - t0) / 1000000 )) -lt 3000 ]
}

@test "the stream needs a token; a bad resume point is a 400" {
  start_server
  AUTH=none run sse "$URL/api/v1/watch" 1 2
  [ "${lines[0]}" = "status 401" ]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=abc"
  [ "$output" = 400 ]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Last-Event-ID: -4' "$URL/api/v1/watch"
  [ "$output" = 400 ]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: nonsense" "$URL/api/v1/watch"
  [ "$output" = 401 ]
}

@test "users see only what the view rule lets them, secrets never in clear" {
  start_server POCKETCTL_HEARTBEAT_MS=500
  su="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$su" ]
  for u in alice bob; do
    post users "{\"email\":\"$u@example.com\",\"password\":\"$u-pass-123\",\"passwordConfirm\":\"$u-pass-123\",\"role\":\"user\"}" "$su" >/dev/null
  done
  alice_id="$(curl -sS -H "Authorization: $su" "$URL/api/collections/users/records?filter=email='alice@example.com'" | jq -r '.items[0].id')"
  bob_id="$(curl -sS -H "Authorization: $su" "$URL/api/collections/users/records?filter=email='bob@example.com'" | jq -r '.items[0].id')"
  alice="$(login users alice@example.com alice-pass-123)"
  [ -n "$alice" ]

  AUTH="$alice" sse_bg "$T/alice" "$URL/api/v1/watch?collection=chats,llm_keys" 3 10 '^(create|delete)$'
  bob_chat="$(post chats "{\"title\":\"bobs\",\"user\":\"$bob_id\"}")"
  alice_chat="$(post chats "{\"title\":\"alices\",\"user\":\"$alice_id\"}")"
  post llm_keys "{\"provider_id\":\"p\",\"user\":\"$bob_id\",\"env_vars\":{\"KEY\":\"bob-secret\"}}" >/dev/null
  post llm_keys "{\"provider_id\":\"p\",\"user\":\"$alice_id\",\"env_vars\":{\"KEY\":\"alice-secret\"}}" >/dev/null
  curl -sS -m 5 -X DELETE -H "Authorization: $TOKEN" "$URL/api/collections/chats/records/$bob_chat" >/dev/null
  curl -sS -m 5 -X DELETE -H "Authorization: $TOKEN" "$URL/api/collections/chats/records/$alice_chat" >/dev/null
  wait "${BG_PIDS[0]}" 2>/dev/null || true
  # alice: her chat's create and delete, her key; nothing of bob's.
  run awk '$2 == "create" || $2 == "delete" {print $2}' "$T/alice"
  [ "${lines[*]}" = "create create delete" ]
  run grep -c "$bob_id" "$T/alice"
  [ "$output" = 0 ]
  # The raw stream: alice's own secret is masked (issue 14), bob's not
  # there at all.
  run curl -sN -m 1 -H "Authorization: $alice" "$URL/api/v1/watch?since=0&collection=llm_keys"
  [[ "$output" != *alice-secret* ]]
  [[ "$output" == *'***hmac:'* ]]
  [[ "$output" != *bob-secret* ]]
  # The superuser sees both when asking for them, and never a password hash.
  run curl -sN -m 1 -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=0&showSecrets=true"
  [[ "$output" == *bob-secret* ]]
  [[ "$output" == *alice-secret* ]]
  [[ "$output" != *'$2'* ]]
  [[ "$output" != *tokenKey* ]]
}

@test "clients that vanish mid-stream do not hurt the server" {
  start_server POCKETCTL_HEARTBEAT_MS=100
  for i in 1 2 3 4 5; do
    curl -sN -m 30 -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=0" >/dev/null 2>&1 &
    BG_PIDS+=($!)
  done
  prompts v 20 &
  writer=$!
  sleep 0.3
  for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait "$writer"
  # Half-read streams are noticed at the next write (heartbeats every
  # 100 ms) and the server keeps answering.
  sleep 0.5
  run curl -sS -m 5 "$URL/healthz"
  [ "$status" -eq 0 ]
  run sse "$URL/api/v1/watch?since=0&collection=ai_prompts" 20 5 '^create$'
  [ "$(printf '%s\n' "${lines[@]}" | grep -c ' create ')" -eq 20 ]
  sleep 0.3
  run curl -sS -m 5 "$URL/metrics"
  [[ "$output" == *"pocketctl_sse_streams_open 0"* ]]
}

@test "SIGTERM ends open streams promptly and the server stops cleanly" {
  start_server
  for i in 1 2 3; do
    sse_bg "$T/s$i" "$URL/api/v1/watch" 1000 60
  done
  sse_bg "$T/rt" "$URL/api/realtime" 1000 60 '^$'
  t0=$(date +%s%N)
  kill -TERM "$SERVER_PID"
  # Heartbeats are 15 s apart here: only the stop can end the streams.
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  t1=$(date +%s%N)
  [ $(( (t1 - t0) / 1000000 )) -lt 2500 ]
  wait "$SERVER_PID"
  SERVER_PID=""
  grep -q 'Z info stopped' "$T/server.log"
  grep -q 'PB_CONNECT' "$T/rt"
}

@test "streams beyond --max-streams get 503, and their slots come back" {
  start_server POCKETCTL_HEARTBEAT_MS=100 -- --max-streams 2
  sse_bg "$T/a" "$URL/api/v1/watch" 100 30
  sse_bg "$T/b" "$URL/api/v1/watch" 100 30
  run sse "$URL/api/v1/watch" 1 2
  [ "${lines[0]}" = "status 503" ]
  # Ordinary requests still work with every stream slot taken.
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' "$URL/healthz"
  [ "$output" = 200 ]
  run curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" \
    "$URL/api/collections/ai_prompts/records"
  [ "$output" = 200 ]
  kill "${BG_PIDS[0]}"
  wait "${BG_PIDS[0]}" 2>/dev/null || true
  sleep 0.5
  run sse "$URL/api/v1/watch" 1 1 '^heartbeat$'
  [ "${lines[0]}" = "status 200" ]
}

@test "pocketctl watch prints changes and resumes across a server restart without gaps or repeats" {
  start_server POCKETCTL_HEARTBEAT_MS=200
  "$PCTL" watch AiPrompt >"$T/cli.out" 2>"$T/cli.err" &
  BG_PIDS+=($!)
  sleep 0.5
  prompts a 3
  for i in $(seq 1 100); do [ "$(grep -c create "$T/cli.out")" -ge 3 ] && break; sleep 0.05; done
  KEEP_PORT=1
  stop_server
  start_server POCKETCTL_HEARTBEAT_MS=200
  prompts b 3
  for i in $(seq 1 200); do [ "$(grep -c create "$T/cli.out")" -ge 6 ] && break; sleep 0.05; done
  run awk '$4 == "create" {print $4, $5}' "$T/cli.out"
  echo "$output"; cat "$T/cli.err"
  [ "${lines[*]}" = "create aiprompt/a-0 create aiprompt/a-1 create aiprompt/a-2 create aiprompt/b-0 create aiprompt/b-1 create aiprompt/b-2" ]
  # Every revision once, increasing (after the time of the change).
  run awk '{print $2}' "$T/cli.out"
  for i in $(seq 1 $((${#lines[@]} - 1))); do
    [ "${lines[$i]}" -gt "${lines[$((i - 1))]}" ]
  done
  run awk '$4 != "create" && $4 != "update"' "$T/cli.out"
  [ -z "$output" ]
  grep -q reconnecting "$T/cli.err"
}

@test "pocketctl watch -o json prints the event data; without a server it exits 2" {
  run "$PCTL" watch
  [ "$status" -eq 2 ]
  [[ "$output" == *"no pocketctl server is running"* ]]
  run "$PCTL" watch NoSuchKind
  [ "$status" -eq 2 ]
  start_server
  prompts j 2
  timeout 2 "$PCTL" watch --since 0 -o json AiPrompt >"$T/json.out" || true
  run jq -r 'select(.action == "create") | .name + " " + .record.data.body' "$T/json.out"
  [ "${lines[*]}" = "j-0 b j-1 b" ]
  # Every line is one JSON object with the documented members.
  run jq -r 'select((has("revision") and has("collection") and has("id") and has("name") and has("action") and has("record")) | not)' "$T/json.out"
  [ -z "$output" ]
}
