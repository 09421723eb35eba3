#!/usr/bin/env bats
# pocketctl watch as an operator reads it: one line per real change with
# the time of the change (RFC 3339, UTC) and the fields it changed (OLD →
# NEW), status-only events only with --status, and an unreachable server
# retried with backoff and given up after --timeout (exit 4).

load helpers
bats_require_minimum_version 1.5.0

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

# tp ACTION [LABELS]: the ToolPermission p1 manifest in $T/tp.yaml
tp() {
  local labels=""
  [ -n "${2:-}" ] && labels=", labels: {$2}"
  cat >"$T/tp.yaml" <<EOF
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata: {name: p1$labels}
spec: {agent: null, tool: bash, pattern: "*", action: $1}
EOF
  pctl apply -f "$T/tp.yaml" >/dev/null
}

# watch_bg OUT ARGS...: pocketctl watch ARGS in the background into OUT
watch_bg() {
  local out="$1"
  shift
  "$PCTL" watch "$@" >"$out" 2>"$out.err" &
  WATCH_PID=$!
}

stop_watch() {
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
}

lines_ge() { [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ]; }

teardown() {
  [ -n "${WATCH_PID:-}" ] && stop_watch
  stop_server
  rm -rf "$T"
}

@test "a live watch prints the changed fields with their old and new values, and the time" {
  start_server
  tp ask
  watch_bg "$T/w" ToolPermission
  sleep 1        # primed with the current records, then live
  tp deny
  tp deny "team: core"
  wait_for 10 lines_ge "$T/w" ' update ' 2
  stop_watch
  cat "$T/w" "$T/w.err"
  run grep ' update toolpermission/p1 ' "$T/w"
  [[ "${lines[0]}" == *" update toolpermission/p1 spec.action: ask → deny" ]]
  [[ "${lines[1]}" == *" update toolpermission/p1 metadata.labels.team: (unset) → core" ]]
  # every line starts with the time of the change, in RFC 3339 UTC, today
  while read -r when rev _; do
    [[ "$when" =~ $RFC3339 ]] || { echo "not RFC 3339: $when"; return 1; }
    [[ "$rev" =~ ^[0-9]+$ ]]
    [ "${when:0:10}" = "$(date -u +%F)" ] || [ "${when:0:10}" = "$(date -u -d '-1 min' +%F)" ]
  done <"$T/w"
}

@test "a replay (--since 0) shows the fields each update changed, from the create on" {
  start_server
  tp ask
  tp allow
  run timeout 3 "$PCTL" watch --since 0 ToolPermission
  [[ "$output" == *" create toolpermission/p1"* ]]
  [[ "$output" == *" update toolpermission/p1 spec.action: ask → allow"* ]]
  run timeout 3 "$PCTL" watch --since 0 ToolPermission -o json
  jq -e 'select(.action == "update") | .record.data.action == "allow"' <<<"$output" >/dev/null
}

@test "status-only events are hidden unless --status, in text and in json" {
  start_server
  tp ask
  "$PCTL" reconcile --wait >/dev/null || true
  watch_bg "$T/plain"
  "$PCTL" watch --status >"$T/status" 2>"$T/status.err" &
  spid=$!
  "$PCTL" watch -o json >"$T/json" 2>/dev/null &
  jpid=$!
  sleep 1
  tp deny
  # the change makes the reconcilers report: status events
  wait_for 10 lines_ge "$T/status" ' status ' 1
  wait_for 10 lines_ge "$T/plain" ' update toolpermission/p1 ' 1
  sleep 1
  stop_watch
  kill "$spid" "$jpid"; wait "$spid" "$jpid" 2>/dev/null || true
  cat "$T/plain"
  run grep -c ' status ' "$T/plain"
  [ "$output" = 0 ]
  [ "$(grep -c ' update toolpermission/p1 ' "$T/plain")" -eq 1 ]
  grep -q ' update toolpermission/p1 ' "$T/status"
  # json: the real change, no statusOnly event
  [ "$(jq -s '[.[] | select(.statusOnly)] | length' "$T/json")" = 0 ]
  [ "$(jq -s '[.[] | select(.name == "p1")] | length' "$T/json")" -ge 1 ]
}

@test "an unreachable server: retried with backoff, then exit 4 after --timeout; exit 2 at once without --timeout" {
  port=$(free_port)
  start=$(date +%s)
  run --separate-stderr "$PCTL" --server "http://127.0.0.1:$port" watch --timeout 2s
  [ "$status" -eq 4 ]
  [[ "$stderr" == *"server unreachable at http://127.0.0.1:$port"*"retrying in 0.2 s"* ]]
  [[ "$stderr" == *"retrying in 0.4 s"* ]]       # backoff doubles
  [[ "$stderr" == *"giving up"* ]]
  [ $(( $(date +%s) - start )) -lt 30 ]
  run --separate-stderr "$PCTL" --server "http://127.0.0.1:$port" watch
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"no pocketctl server answers"* ]]
  run "$PCTL" watch --timeout never
  [ "$status" -eq 2 ]
  [[ "$output" == *"--timeout needs a duration"* ]]
}

@test "a server that goes away while watched: stream ended, retrying, exit 4 after --timeout" {
  start_server
  watch_bg "$T/w" --timeout 2s
  sleep 1
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  for _ in $(seq 1 300); do kill -0 "$WATCH_PID" 2>/dev/null || break; sleep 0.1; done
  run wait "$WATCH_PID"
  WATCH_PID=""
  cat "$T/w.err"
  [ "$status" -eq 4 ]
  grep -q "server unreachable" "$T/w.err"
  grep -q "giving up" "$T/w.err"
}
