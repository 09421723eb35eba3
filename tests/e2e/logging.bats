#!/usr/bin/env bats
# The server's log: an RFC 3339 UTC timestamp and a level on every line,
# --log-format json (one JSON object per line: time, level, component,
# msg), and civetweb's failure to listen as one clear line with exit 2.

load helpers

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

@test "text: every line has a UTC timestamp, a level and the component" {
  start_server POCKETCTL_STREAM_PUMP=maybe
  curl -fsS -o /dev/null "$URL/healthz"
  stop_server TERM
  [ -s "$T/server.log" ]
  # every line, not just most of them
  run grep -vcE "^$TS (debug|info|warn|error) " "$T/server.log"
  [ "$output" = 0 ] || { cat "$T/server.log"; false; }
  grep -qE "^$TS info http: GET /healthz 200 " "$T/server.log"
  grep -qE "^$TS info serving on http://127\.0\.0\.1:" "$T/server.log"
  grep -qE "^$TS info engine: " "$T/server.log"
  grep -qE "^$TS info stopped$" "$T/server.log"
  grep -qE "^$TS warn ignoring POCKETCTL_STREAM_PUMP='maybe' \(want 0\.\.1\)$" "$T/server.log"
  # the time is now (UTC), within a day either way of this machine's clock
  first="$(head -n 1 "$T/server.log" | cut -d' ' -f1)"
  [ "$(( $(date -u -d "$first" +%s) - $(date -u +%s) ))" -lt 86400 ]
  [ "$(( $(date -u +%s) - $(date -u -d "$first" +%s) ))" -lt 86400 ]
}

@test "json: one object per line with time, level, component and msg" {
  start_server -- --log-format json
  curl -fsS -o /dev/null "$URL/healthz"
  stop_server TERM
  # jq reads every line as one object: a line that is not JSON fails it
  jq -e -s 'length > 0 and all(.[]; (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))
             and (.level | IN("debug","info","warn","error"))
             and (.msg | type == "string"))' "$T/server.log"
  jq -e -s 'any(.[]; .component == "http" and (.msg | startswith("GET /healthz 200 ")))' "$T/server.log"
  jq -e -s 'any(.[]; .component == "engine")' "$T/server.log"
  jq -e -s 'any(.[]; .msg == "stopped" and (has("component") | not))' "$T/server.log"
  POCKETCTL_LOG_FORMAT=json start_server
  stop_server TERM
  jq -e -s 'any(.[]; .msg == "stopped")' "$T/server.log"
}

@test "a bad --log-format is a usage error" {
  run pctl serve --log-format xml
  [ "$status" -eq 2 ]
  [[ "$output" == *"--log-format takes text or json, not 'xml'"* ]]
  POCKETCTL_LOG_FORMAT=yaml run pctl serve
  [ "$status" -eq 2 ]
  [[ "$output" == *"POCKETCTL_LOG_FORMAT takes text or json, not 'yaml'"* ]]
}

@test "a port in use: one line naming the address, exit 2" {
  port="$(free_port)"
  "${PY:-python3}" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
time.sleep(60)' "$port" >"$T/holder.out" &
  holder=$!
  wait_for 20 grep -q ready "$T/holder.out"
  run pctl serve --listen "127.0.0.1:$port" --root "$T/root"
  kill "$holder"
  [ "$status" -eq 2 ]
  [[ "$output" =~ (^|$'\n')[0-9T:.-]+Z\ error\ cannot\ listen\ on\ 127\.0\.0\.1:$port:\ address\ in\ use$ ]] || { echo "$output"; false; }
  # civetweb's own words do not come along
  [[ "$output" != *"cannot bind"* ]]
  [[ "$output" != *"Failed to setup"* ]]
  [ "$(grep -c 'cannot listen' <<<"$output")" = 1 ]
}
