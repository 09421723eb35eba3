#!/usr/bin/env bats
# Managed containers converged through a real Docker-API engine: Podman,
# started by tests/engine/podman.sh (`make check` starts it before the
# end-to-end tests and stops it afterwards, pass or fail). The test
# containers bind-mount the render root and log "started <md5 of every
# file in it>" each time their process starts, so the engine's own logs
# count restarts and say which files a start saw.

load helpers
bats_require_minimum_version 1.5.0

ENGINE="$BATS_TEST_DIRNAME/../engine/podman.sh"
ST="${PODMAN_CI_DIR:-/tmp/podman-ci}"
SOCK="$ST/podman.sock"
ROOT="${PODMAN_CI_ROOT:-$ST/root}"
OC=pocketcoder-opencode
GW=pocketcoder-mcp-gateway

# The engine, the container names and the render root they mount are
# shared by the whole machine: one run of this file at a time.
setup_file() {
  if [ -d "$ST" ]; then
    exec 9>"$ST/e2e.lock"
    flock -w 900 9
  fi
}

setup() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  "$ENGINE" status >/dev/null 2>&1 ||
    skip "no container engine: run tests/engine/podman.sh start"
  e2e_setup ctr
  unset DOCKER_HOST             # the server is told with --docker
  # start_server (helpers.bash): the shared root, the engine, the default
  # manifests; extra environment as NAME=VALUE arguments.
  SERVER_ROOT="$ROOT"
  SERVER_ARGS=(--docker "unix://$SOCK" --manifests "$REPO/manifests")
  export LC_ALL=C
  mkdir -p "$ROOT"
  find "$ROOT" -mindepth 1 -delete
  "$ENGINE" ensure >/dev/null
}

teardown() {
  stop_server
  # (shown by bats only when the test failed)
  echo "--- server log"; grep -v ' GET /api/v1/manifests/' "$T/server.log" 2>/dev/null | tail -n 40 || true
  echo "--- root $(root_md5 2>/dev/null); last starts: $OC $("$ENGINE" last "$OC" 2>/dev/null), $GW $("$ENGINE" last "$GW" 2>/dev/null)"
  [ -n "$T" ] && rm -rf "$T"
  # a test that stopped the engine's service must not break the next ones
  "$ENGINE" status >/dev/null 2>&1 || "$ENGINE" start >/dev/null 2>&1 || true
  "$ENGINE" ensure >/dev/null 2>&1 || true
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s.
wait_until() {
  local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
  shift
  until "$@"; do
    [ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

starts() { "$ENGINE" starts "$1"; }
starts_is() { [ "$(starts "$1")" -eq "$2" ]; }
cond_is() { [ "$(cond "$1" "$2")" = "$3" ]; }
status_is() { [ "$(status_of "$1" | jq -r "$2")" = "$3" ]; }
socks_le() { [ "$(socks)" -le "$1" ]; }
status_of() { pctl get container "$1" -o record | jq -c '.status'; }
cond() {  # cond NAME TYPE -> "True Reason"
  pctl get container "$1" -o record |
    jq -r --arg t "$2" '.status.conditions[]? | select(.type == $t) | "\(.status) \(.reason)"'
}
root_md5() { (cd "$ROOT" && find . -type f | sort | xargs -r cat | md5sum | cut -c1-32); }
converged() {  # Ready, and the last start saw exactly the files on disk
  [ "$(cond "$1" Ready)" = "True Running" ] &&
    [ "$("$ENGINE" last "$1")" = "$(root_md5)" ]
}
both_converged() { converged "$OC" && converged "$GW"; }
running() {
  [ "$(curl -fsS --unix-socket "$SOCK" "http://d/v1.41/containers/$1/json" |
       jq -r .State.Running)" = true ]
}
api() {  # api METHOD PATH [JSON]
  if [ $# -ge 3 ]; then
    curl -sS -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: $TOKEN" \
      -H 'Content-Type: application/json' --data "$3" "$URL$2"
  else
    curl -sS -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: $TOKEN" "$URL$2"
  fi
}
record_id() {
  pctl get "$1" "$2" -o record | jq -r .id
}

@test "containers: the server converges both containers onto the rendered files" {
  start_server
  wait_until 30 both_converged
  [ "$(status_of "$OC" | jq -r .appliedHash)" = "$(status_of "$OC" | jq -r .desiredHash)" ]
  [ "$(cond "$OC" Degraded)" = "False AsExpected" ]
  [ "$(cond "$GW" Reconciling)" = "False Converged" ]
}

@test "containers: one record change restarts the container exactly once" {
  start_server
  wait_until 30 both_converged
  oc=$(starts "$OC"); gw=$(starts "$GW")
  id=$(record_id toolpermission global-bash-ls)
  [ "$(api PATCH "/api/collections/tool_permissions/records/$id" '{"action":"deny"}')" = 200 ]
  wait_until 15 starts_is "$OC" $((oc + 1))
  sleep 3
  [ "$(starts "$OC")" -eq $((oc + 1)) ]
  [ "$(starts "$GW")" -eq "$gw" ]
  wait_until 10 converged "$OC"
  [ "$(status_of "$OC" | jq -r .lastAction.reason)" = FilesChanged ]
  [ "$(status_of "$OC" | jq -r .lastAction.phase)" = Succeeded ]
}

@test "containers: 50 changes within one second restart once" {
  start_server
  wait_until 30 both_converged
  oc=$(starts "$OC")
  id=$(record_id toolpermission global-bash-ls)
  # one curl process, 50 PATCHes, 10 at a time
  args=()
  for i in $(seq 1 50); do
    args+=(-s -o /dev/null -w '%{http_code}\n' -X PATCH -H "Authorization: $TOKEN"
           -H 'Content-Type: application/json' --data "{\"pattern\":\"ls $i*\"}"
           "$URL/api/collections/tool_permissions/records/$id" --next)
  done
  t0=$(date +%s%N)
  curl -Z --parallel-max 25 "${args[@]}" -s -o /dev/null "$URL/healthz" >"$T/codes" 2>/dev/null
  elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "50 changes took ${elapsed} ms"
  [ "$(grep -c '^200$' "$T/codes")" -eq 50 ]
  # The point is the coalescing; on a loaded machine the 50 writes may
  # take a little longer than a second, still far inside the quiet period
  # from one to the next.
  [ "$elapsed" -lt 2000 ]
  wait_until 15 starts_is "$OC" $((oc + 1))
  sleep 3
  [ "$(starts "$OC")" -eq $((oc + 1)) ]
  wait_until 10 converged "$OC"
}

@test "containers: an unchanged re-apply restarts nothing" {
  start_server
  wait_until 30 both_converged
  oc=$(starts "$OC"); gw=$(starts "$GW")
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" != *configured* ]]
  sleep 3
  [ "$(starts "$OC")" -eq "$oc" ]
  [ "$(starts "$GW")" -eq "$gw" ]
}

@test "containers: an external stop is noticed and undone" {
  start_server
  wait_until 30 both_converged
  gw=$(starts "$GW")
  curl -fsS --unix-socket "$SOCK" -X POST "http://d/v1.41/containers/$GW/stop?t=2"
  t0=$(date +%s%N)
  wait_until 10 starts_is "$GW" $((gw + 1))
  echo "started again after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  wait_until 5 running "$GW"
  [ "$(status_of "$GW" | jq -r .lastAction.reason)" = NotRunning ]
  wait_until 10 converged "$GW"
}

@test "containers: engine stopped then restarted converges" {
  start_server
  wait_until 30 both_converged
  oc=$(starts "$OC")
  id=$(record_id toolpermission global-bash-ls)
  "$ENGINE" service-stop
  [ "$(api PATCH "/api/collections/tool_permissions/records/$id" '{"action":"ask"}')" = 200 ]
  # the files are still rendered while the engine is away
  wait_until 5 grep -q '"ls \*": "ask"' "$ROOT/workspace/.opencode/opencode.json"
  wait_until 10 cond_is "$OC" Degraded "True EngineUnreachable"
  "$ENGINE" start >/dev/null 2>&1
  wait_until 20 starts_is "$OC" $((oc + 1))
  wait_until 20 converged "$OC"
  [ "$(cond "$OC" Degraded)" = "False AsExpected" ]
}

@test "containers: an exhausted budget opens the breaker, the cool-down closes it" {
  start_server POCKETCTL_RESTART_QUIET_MS=200 POCKETCTL_RESTART_BUDGET=2 \
    POCKETCTL_RESTART_WINDOW_MS=300000 POCKETCTL_RESTART_COOLDOWN_MS=12000
  wait_until 30 both_converged
  id=$(record_id toolpermission global-bash-ls)
  # The root was emptied, so the start-up restart used one action of the
  # budget of 2: one more change is allowed, the next opens the breaker.
  [ "$(status_of "$OC" | jq -r .actions)" -eq 1 ]
  oc=$(starts "$OC")
  [ "$(api PATCH "/api/collections/tool_permissions/records/$id" '{"pattern":"b1*"}')" = 200 ]
  wait_until 15 starts_is "$OC" $((oc + 1))
  wait_until 10 converged "$OC"
  [ "$(api PATCH "/api/collections/tool_permissions/records/$id" '{"pattern":"b2*"}')" = 200 ]
  wait_until 10 cond_is "$OC" Degraded "True RestartBudgetExhausted"
  [ "$(status_of "$OC" | jq -r .breaker.open)" = true ]
  [ "$(cond "$OC" Reconciling)" = "True RestartBudgetExhausted" ]
  [ "$(cond "$OC" Ready)" = "False FilesChanged" ]
  sleep 2
  [ "$(starts "$OC")" -eq $((oc + 1)) ]     # nothing while it is open
  # the cool-down closes it, with a fresh budget, and the change is applied
  wait_until 25 converged "$OC"
  [ "$(starts "$OC")" -eq $((oc + 2)) ]
  [ "$(status_of "$OC" | jq -r .breaker.open)" = false ]
  [ "$(cond "$OC" Degraded)" = "False AsExpected" ]
}

@test "containers: pocketctl restart restarts once, recorded as ManualRestart" {
  start_server
  wait_until 30 both_converged
  gw=$(starts "$GW")
  run pctl restart "$GW"
  [ "$status" -eq 0 ]
  [[ "$output" == *"container/$GW restart requested"* ]]
  wait_until 15 starts_is "$GW" $((gw + 1))
  wait_until 10 status_is "$GW" .lastAction.phase Succeeded
  [ "$(status_of "$GW" | jq -r .lastAction.reason)" = ManualRestart ]
  [ "$(status_of "$GW" | jq -r .manualRestartHandled)" = \
    "$(status_of "$GW" | jq -r .restartRequest.id)" ]
  sleep 2
  [ "$(starts "$GW")" -eq $((gw + 1)) ]
}

@test "containers: a container that is not managed is refused, never touched" {
  start_server
  wait_until 30 both_converged
  before=$(curl -fsS --unix-socket "$SOCK" http://d/v1.41/containers/pc-unmanaged/json | jq -r .State.StartedAt)
  run pctl restart pc-unmanaged
  [ "$status" -eq 2 ]
  [[ "$output" == *"not managed"* ]]
  [ "$(api POST /api/v1/containers/pc-unmanaged/restart)" = 404 ]
  [ "$(api POST /api/v1/containers/..%2f..%2fetc/restart)" = 404 ]
  [ "$(api GET /api/pocketcoder/logs/pc-unmanaged?follow=0)" = 404 ]
  # not an admin: refused before anything else
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/containers/$OC/restart")" = 401 ]
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/pocketcoder/logs/$OC")" = 401 ]
  sleep 1
  [ "$(curl -fsS --unix-socket "$SOCK" http://d/v1.41/containers/pc-unmanaged/json | jq -r .State.StartedAt)" = "$before" ]
}

@test "containers: logs stream one SSE event per line and end on disconnect" {
  start_server POCKETCTL_HEARTBEAT_MS=300
  wait_until 30 both_converged
  run curl -fsS -H "Authorization: $TOKEN" "$URL/api/pocketcoder/logs/$OC?tail=5&follow=0"
  [ "$status" -eq 0 ]
  [ "$(printf '%s\n' "$output" | grep -Ec '^data: (tick|started) ')" -eq 5 ]
  [[ "$output" == *"event: end"* ]]
  socks() { find "/proc/$SERVER_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
  ticks_ge() { [ "$(grep -c '^data: tick' "$T/stream")" -ge "$1" ]; }
  base=$(socks)
  curl -sN -H "Authorization: $TOKEN" "$URL/api/pocketcoder/logs/$OC?tail=2" >"$T/stream" &
  cpid=$!
  wait_until 5 ticks_ge 4
  [ "$(socks)" -ge $((base + 2)) ]     # the client and the engine request
  kill "$cpid"; wait "$cpid" || true
  wait_until 5 socks_le "$base"
  [ "$(api GET "/api/pocketcoder/logs/$OC?tail=x")" = 400 ]
}

@test "containers: log streams keep a worker each, up to 16; beyond, 503, and requests still answer" {
  start_server POCKETCTL_HEARTBEAT_MS=300
  wait_until 30 both_converged
  pids=()
  for i in $(seq 1 16); do
    curl -sN -H "Authorization: $TOKEN" "$URL/api/pocketcoder/logs/$OC?tail=1" >"$T/log$i" &
    pids+=($!)
  done
  opened() { [ "$(grep -l '^data: ' "$T"/log* 2>/dev/null | wc -l)" -ge 16 ]; }
  wait_until 20 opened
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$URL/api/pocketcoder/logs/$OC?tail=1")" = 503 ]
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]
  [ "$(api GET /api/collections/ai_prompts/records)" = 200 ]
  kill "${pids[@]}"; wait "${pids[@]}" || true
  freed() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$URL/api/pocketcoder/logs/$OC?tail=1&follow=0")" = 200 ]; }
  wait_until 10 freed
}

@test "containers: a missing container is ContainerMissing until it exists again" {
  start_server
  wait_until 30 both_converged
  curl -fsS --unix-socket "$SOCK" -X DELETE "http://d/v1.41/containers/$GW?force=1&t=0"
  wait_until 10 cond_is "$GW" Degraded "True ContainerMissing"
  [ "$(cond "$GW" Ready)" = "False ContainerMissing" ]
  "$ENGINE" ensure >/dev/null      # created and started with the files
  wait_until 40 converged "$GW"
}

@test "containers: pocketctl logs --tail N prints the last N lines and exits 0; -f follows until stopped" {
  start_server POCKETCTL_HEARTBEAT_MS=300
  wait_until 30 both_converged
  run --separate-stderr pctl logs "$OC" --tail 3
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 3 ]
  [ "$(printf '%s\n' "$output" | grep -Ec '^(tick|started) ')" -eq 3 ]
  [ -z "$stderr" ]
  run pctl logs "$OC" --tail 0
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  ticks_ge() { [ "$(grep -c '^tick' "$T/follow")" -ge "$1" ]; }
  pctl logs -f --tail 1 "$OC" >"$T/follow" 2>"$T/follow.err" &
  lpid=$!
  wait_until 10 ticks_ge 3
  kill -0 "$lpid"          # still following
  kill "$lpid"; wait "$lpid" || true
  # > /dev/full: exit 2
  run sh -c '"$0" logs "$1" --tail 5 >/dev/full' "$PCTL" "$OC"
  [ "$status" -eq 2 ]
}

@test "containers: pocketctl restart --wait exits 0 once the container restarted" {
  start_server
  wait_until 30 both_converged
  gw=$(starts "$GW")
  run --separate-stderr pctl restart --wait --timeout 60s "$GW"
  [ "$status" -eq 0 ]
  [[ "$output" == *"container/$GW restart requested"* ]]
  [[ "$output" == *"container/$GW restarted"* ]]
  [ "$(status_of "$GW" | jq -r .lastAction.phase)" = Succeeded ]
  wait_until 10 starts_is "$GW" $((gw + 1))
}
