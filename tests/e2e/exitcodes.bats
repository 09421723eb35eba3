#!/usr/bin/env bats
# The exit codes scripts rely on (README.md's table, cli_exit_codes in
# controller/cli/commands.c): 0 ok, 1 differences, 2 error (incl. a write
# error on stdout and an unreachable or killed server), 3 Degraded,
# 4 timeout. The container engine here is a socket nobody listens on, so
# the containers reconciler is Degraded with EngineUnreachable; the engine
# itself is exercised in containers.bats.

load helpers
bats_require_minimum_version 1.5.0

setup() {
  e2e_setup exit
  SERVER_ARGS=(--docker "unix://$T/no-engine.sock" --manifests "$REPO/manifests")
}

degraded() {
  "$PCTL" status "$1" -o json | jq -e '.conditions[] | select(.type == "Degraded" and .status == "True")' >/dev/null
}

@test "0 and 1: diff with nothing to change, and with a change" {
  pctl apply -f "$REPO/manifests" >/dev/null
  run pctl diff -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  sed 's/action: ask/action: deny/' "$REPO/manifests/tool-permissions.yaml" >"$T/tp.yaml"
  cmp -s "$T/tp.yaml" "$REPO/manifests/tool-permissions.yaml" && skip "no 'action: ask' in the manifests"
  run pctl diff -f "$T/tp.yaml"
  [ "$status" -eq 1 ]
}

@test "2: a write error on standard output, for every kind of command, offline and through a server" {
  pctl apply -f "$REPO/manifests" >/dev/null
  run --separate-stderr sh -c '"$0" get toolpermission >/dev/full' "$PCTL"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"cannot write to standard output"* ]]
  for args in "help" "version" "help apply" "apply --help" "get aiagent -o yaml" "status" "apply -f $REPO/manifests --dry-run"; do
    # shellcheck disable=SC2086
    run sh -c '"$0" "$@" >/dev/full' "$PCTL" $args
    [ "$status" -eq 2 ] || { echo "$args > /dev/full: exit $status"; return 1; }
  done
  start_server
  run sh -c '"$0" get toolpermission -o json >/dev/full' "$PCTL"
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot write to standard output"* ]]
  # watch stops at its first line that cannot be written
  run timeout 20 sh -c '"$0" watch --since 0 >/dev/full' "$PCTL"
  [ "$status" -eq 2 ]
  # and the same commands to a working stdout are fine
  run pctl get toolpermission -o json
  [ "$status" -eq 0 ]
}

@test "3: status with a Degraded reconciler (the whole table, and that one); 0 for a Ready one" {
  start_server
  wait_for 10 degraded containers
  run pctl status
  [ "$status" -eq 3 ]
  [[ "$output" == *containers*True* ]]
  run pctl status containers -o json
  [ "$status" -eq 3 ]
  run pctl status llm-env
  [ "$status" -eq 0 ]
  # offline, from the stored status, the same
  stop_server
  run pctl status
  [ "$status" -eq 3 ]
  [[ "$output" == *offline* ]]
}

@test "3: reconcile --wait ends Degraded; 0 once every reconciler is Ready" {
  start_server
  run --separate-stderr pctl reconcile --wait --timeout 20s
  [ "$status" -eq 3 ]
  [[ "$output" == *containers* ]]
  stop_server
  # a data directory without containers: every reconciler Ready
  export POCKETCTL_DATA="$T/data2"
  SERVER_ARGS=()
  start_server
  run pctl reconcile --wait
  [ "$status" -eq 0 ]
  run pctl reconcile --wait -o json
  [ "$status" -eq 0 ]
  jq -e '.completed == true' <<<"$output"
}

@test "3: restart with the container engine unreachable says so (with and without --wait)" {
  start_server
  wait_for 10 degraded containers
  run --separate-stderr pctl restart pocketcoder-opencode
  [ "$status" -eq 3 ]
  [[ "$output" == *"restart requested"* ]]
  [[ "$stderr" == *"container engine is unreachable"* ]]
  run --separate-stderr pctl restart --wait --timeout 5s pocketcoder-opencode
  [ "$status" -eq 3 ]
  [[ "$stderr" == *"container engine is unreachable"* ]]
}

@test "2: restart and logs of a container that is not managed, and logs with the engine unreachable" {
  start_server
  run pctl restart pc-unmanaged
  [ "$status" -eq 2 ]
  [[ "$output" == *"not managed"* ]]
  run pctl logs pc-unmanaged
  [ "$status" -eq 2 ]
  [[ "$output" == *"'pc-unmanaged' is not managed"* ]]
  run pctl logs pocketcoder-opencode --tail 5
  [ "$status" -eq 2 ]
  [[ "$output" == *"unreachable"* ]]
  run pctl logs pocketcoder-opencode --tail lots
  [ "$status" -eq 2 ]
  [[ "$output" == *"--tail needs a number of lines"* ]]
  run pctl logs
  [ "$status" -eq 2 ]
  [[ "$output" == *"usage: pocketctl logs CONTAINER"* ]]
  run pctl restart --timeout 3s pocketcoder-opencode
  [ "$status" -eq 2 ]
  [[ "$output" == *"--timeout needs --wait"* ]]
}

@test "4: reconcile --wait against a server that stopped answering (SIGSTOP)" {
  start_server
  kill -STOP "$SERVER_PID"
  start=$(date +%s)
  run --separate-stderr pctl reconcile --wait --timeout 2s
  kill -CONT "$SERVER_PID"
  [ "$status" -eq 4 ]
  [[ "$stderr" == *"did not complete within --timeout"* ]]
  [ $(( $(date +%s) - start )) -lt 30 ]
  run pctl reconcile --wait --timeout soon
  [ "$status" -eq 2 ]
  [[ "$output" == *"--timeout needs a duration"* ]]
}

@test "2: a killed server (SIGKILL): status, reconcile, restart, logs and get exit 2 and say why" {
  start_server
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  for args in "status" "reconcile --wait" "restart pocketcoder-opencode" "logs pocketcoder-opencode" "get aiagent"; do
    # shellcheck disable=SC2086
    run pctl $args
    [ "$status" -eq 2 ] || { echo "$args: exit $status: $output"; return 1; }
    [[ "$output" == *"nothing answers"* ]] || { echo "$args: $output"; return 1; }
  done
}
