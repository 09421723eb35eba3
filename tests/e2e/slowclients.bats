#!/usr/bin/env bats
# Slow and idle clients cannot starve the server (issue 20, item 3): a few
# hundred loopback connections trickling header lines, POST bodies at a
# byte a second and idle keep-alives (tests/e2e/slowflood.py) while
# /api/health and /healthz keep answering on new connections and an
# already-open /api/v1/watch stream keeps receiving events; the header and
# body deadlines (--header-timeout, --body-timeout) and the per-address cap
# (--max-conns-per-ip). The bounds are generous on purpose (a loaded
# machine); tests/bench/bench_slow.sh measures the latency.

load helpers

setup() {
  e2e_setup slowclients
  command -v jq >/dev/null || skip "jq is needed"
  # the flood, the server and the probes need a few descriptors each
  ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  FLOOD="$BATS_TEST_DIRNAME/slowflood.py"
}

# metric NAME: its value from /metrics (as the superuser)
metric() {
  su_api GET /metrics
  [ "$CODE" = 200 ] || return 1
  awk -v n="$1" '$1 == n { print $2 }' <<<"$BODY"
}

# writer SECONDS: create a healthchecks record every 0.2 s in the
# background, so that a watch stream has something to receive
writer() {
  (
    end=$(( $(date +%s) + $1 ))
    i=0
    while [ "$(date +%s)" -lt "$end" ]; do
      i=$((i + 1))
      curl -sS -m 5 -o /dev/null -H "Authorization: $TOKEN" -H 'Content-Type: application/json' \
        --data-binary "{\"name\":\"w-$i\",\"status\":\"ready\"}" \
        "$URL/api/collections/healthchecks/records" || true
      sleep 0.2
    done
  ) 3>&- &
  WRITER_PID=$!
}

@test "a few hundred slow and idle connections: health answers, an open watch stream keeps receiving" {
  # 96 workers (64 + 32 kept for streams) for 320 connections: the guard
  # must cut idle and slow ones to keep workers free
  start_server -- --workers 64
  writer 12
  run python3 "$FLOOD" --port "$PORT" --slow-headers 120 --slow-body 80 --idle 120 \
    --sources 8 --warmup 2 --seconds 6 --probe-every 50 --probe-timeout 3 --reopen-ms 100 \
    --stream /api/v1/watch?collection=healthchecks --token "$TOKEN"
  kill "$WRITER_PID" 2>/dev/null || true
  wait "$WRITER_PID" 2>/dev/null || true
  echo "$output"
  [ "$status" -eq 0 ]
  # the probes answered, each within the probe's 3 s, half within 1 s
  # (bench_slow.sh measures the real figures; this must hold on a loaded
  # machine under the sanitizers too, where one probe in 41 was once seen
  # to get no 200: at most one in twenty may miss)
  for p in /api/health /healthz; do
    n="$(jq -r ".probes[\"$p\"].n" <<<"$output")"
    ok="$(jq -r ".probes[\"$p\"].ok" <<<"$output")"
    p50="$(jq -r ".probes[\"$p\"].p50_ms" <<<"$output")"
    [ "$n" -ge 3 ]
    [ $(( (n - ok) * 20 )) -le "$n" ] || { echo "$p: $ok of $n probes answered"; return 1; }
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1000 else 1)" "$p50"
  done
  # the flood was there: every connection opened, at least as many as the
  # 64 request workers held open while probing (a snapshot: the guard cuts
  # them and the flood opens them again, slower on a loaded machine: 83 of
  # 320 seen there), and the guard cut some to make room
  [ "$(jq -r .flood.opened <<<"$output")" -ge 320 ]
  [ "$(jq -r .flood.open_when_probing <<<"$output")" -ge 64 ]
  [ "$(jq -r .flood.closed_by_server <<<"$output")" -gt 0 ]
  # the stream opened before the flood got events during it, and lives
  [ "$(jq -r .stream.events_during_flood <<<"$output")" -ge 2 ]
  [ "$(jq -r .stream.error <<<"$output")" = null ]
  curl -fsS -m 5 "$URL/api/health" >/dev/null
  [ "$(metric 'pocketctl_connections_cut_total{reason="pressure"}')" -gt 0 ]
}

@test "connections beyond --max-conns-per-ip get 503 naming the limit; other addresses are served" {
  start_server -- --max-conns-per-ip 8
  cat >"$T/cap.py" <<'PY'
import socket, sys
port = int(sys.argv[1])
def request(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    head, body = got.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(4096)
    return s, head.split(b"\r\n")[0].decode(), body.decode()
held = [request("127.0.0.9") for _ in range(8)]      # kept open, idle
assert all(" 200 " in h for _, h, _ in held), [h for _, h, _ in held]
s, head, body = request("127.0.0.9")
print(head)
print(body)
assert s.recv(4096) == b"", "the refused connection stays open"
_, head, _ = request("127.0.0.10")
print(head)
PY
  run python3 "$T/cap.py" "$PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "HTTP/1.1 503 Service Unavailable" ]
  [ "$(jq -r .message <<<"${lines[1]}")" = "too many connections from 127.0.0.9 (the limit is 8 per client address); try again later" ]
  [ "${lines[2]}" = "HTTP/1.1 200 OK" ]
  curl -fsS -m 5 "$URL/healthz" >/dev/null
  [ "$(metric pocketctl_connections_over_cap_total)" = 1 ]
}

@test "headers trickled past --header-timeout are cut; a body past --body-timeout gets 400 naming it" {
  start_server -- --header-timeout 2 --body-timeout 2
  cat >"$T/slow.py" <<'PY'
import socket, sys, time
port, kind = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(0.05)
t0 = time.monotonic()
if kind == "headers":
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
else:
    s.sendall(b"POST /api/collections/healthchecks/records HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
got = b""
while time.monotonic() - t0 < 20:
    try:
        d = s.recv(4096)
        if not d:
            break
        got += d
    except socket.timeout:
        pass
    except OSError:
        break
    try:
        s.send(b"X-Slow: x\r\n" if kind == "headers" else b" ")
    except OSError:
        break
    time.sleep(0.5)
print("%.1f" % (time.monotonic() - t0))
print(got.decode(errors="replace").replace("\r\n", "|"))
PY
  run python3 "$T/slow.py" "$PORT" headers
  echo "$output"
  [ "$status" -eq 0 ]
  # cut at 2 s, by the guard's next round: well before civetweb's own
  # per-read timeout would have let it go on
  python3 -c "import sys; t = float(sys.argv[1]); sys.exit(0 if 1.5 <= t <= 8 else 1)" "${lines[0]}"
  run python3 "$T/slow.py" "$PORT" body
  echo "$output"
  [ "$status" -eq 0 ]
  python3 -c "import sys; t = float(sys.argv[1]); sys.exit(0 if 1.5 <= t <= 8 else 1)" "${lines[0]}"
  [[ "${lines[1]}" == "HTTP/1.1 400 Bad Request|"* ]]
  [[ "${lines[1]}" == *'"message":"the request body did not arrive within 2 s ('*' bytes came)"'* ]]
  # nothing was created from the cut body
  su_api GET /api/collections/healthchecks/records
  [ "$CODE" = 200 ]
  [ "$(jq -r .totalItems <<<"$BODY")" = 0 ]
  [ "$(metric 'pocketctl_connections_cut_total{reason="deadline"}')" = 2 ]
}

@test "bad values of the new serve options exit 2 naming the option" {
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --header-timeout 0
  [ "$status" -eq 2 ]
  [[ "$output" == *"--header-timeout needs a whole number from 1 to 3600, not '0'"* ]]
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --body-timeout 2s
  [ "$status" -eq 2 ]
  [[ "$output" == *"--body-timeout needs a whole number"* ]]
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --max-conns-per-ip -1
  [ "$status" -eq 2 ]
  [[ "$output" == *"--max-conns-per-ip needs a whole number from 0 to 65536, not '-1'"* ]]
}
