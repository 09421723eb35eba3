#!/usr/bin/env bats
# Signals as daemons take them: SIGHUP re-reads paths.yaml (the rendered
# files move; a bad file leaves the old paths and a Degraded condition) and
# re-applies the manifests directory; SIGTERM and SIGINT drain and exit,
# removing server.json; the server.json a SIGKILLed server leaves behind is
# reported by the CLI instead of being silently ignored.

load helpers

setup() {
  e2e_setup signals
  R="$T/root"
  OC="$R/workspace/.opencode"
  cp -r "$REPO/manifests" "$T/m"
}

alive() { kill -0 "$SERVER_PID" 2>/dev/null; }

@test "SIGHUP with a changed paths.yaml moves the rendered files and removes the old ones" {
  start_server -- --manifests "$T/m"
  wait_for 30 test -f "$OC/llm.env"
  wait_for 30 test -f "$OC/agents/poco.md"
  printf 'llm_env: moved/llm.env\nagents_dir: moved/agents\n' >"$POCKETCTL_DATA/paths.yaml"
  kill -HUP "$SERVER_PID"
  wait_for 30 test -f "$R/moved/llm.env"
  wait_for 30 test -f "$R/moved/agents/poco.md"
  wait_for 30 test ! -e "$OC/llm.env"
  wait_for 30 test ! -e "$OC/agents/poco.md"
  alive
  # Untouched keys stay where they were.
  [ -f "$OC/opencode.json" ]
  su_api GET /api/v1/status
  [ "$(jq -r .paths.llm_env <<<"$BODY")" = "$R/moved/llm.env" ]
  has "$T/server.log" "paths: reloaded"
  # And the files are still managed where they are now: drift is put back.
  echo tampered >"$R/moved/llm.env"
  wait_for 30 sh -c "! grep -q tampered '$R/moved/llm.env'"
}

@test "a bad paths.yaml on SIGHUP is logged and Degraded; the old paths stay until a good one" {
  start_server
  wait_for 30 test -f "$OC/llm.env"
  printf 'llm_env: [not, a, path]\n' >"$POCKETCTL_DATA/paths.yaml"
  kill -HUP "$SERVER_PID"
  wait_for 30 has "$T/server.log" "paths: reload refused"
  # The condition is written at the end of the pass that follows the log line.
  wait_for 30 eval '[ "$(condition llm-env Degraded reason)" = PathsInvalid ]'
  [[ "$(condition llm-env Degraded message)" == *"paths.yaml:1:"*"llm_env"* ]]
  su_api GET /api/v1/status
  [[ "$(jq -r .pathsError <<<"$BODY")" == *paths.yaml* ]]
  [ -f "$OC/llm.env" ]
  alive
  printf 'llm_env: again/llm.env\n' >"$POCKETCTL_DATA/paths.yaml"
  kill -HUP "$SERVER_PID"
  wait_for 30 test -f "$R/again/llm.env"
  wait_for 30 test ! -e "$OC/llm.env"
  # The file moves before the pass that moved it writes its condition.
  wait_for 30 eval '[ "$(condition llm-env Degraded)" = False ]'
  su_api GET /api/v1/status
  [ "$(jq -r '.pathsError // "none"' <<<"$BODY")" = none ]
}

@test "SIGHUP re-applies a changed manifests directory; a broken one is logged and changes nothing" {
  start_server -- --manifests "$T/m"
  [[ "$("$PCTL" get AiAgent poco -o yaml)" != *"temperature: 0.9"* ]]
  sed -i 's/temperature: [0-9.]*/temperature: 0.9/' "$T/m/agents.yaml"
  grep -q 'temperature: 0.9' "$T/m/agents.yaml"
  kill -HUP "$SERVER_PID"
  wait_for 30 sh -c '"$0" get AiAgent poco -o yaml | grep -q "temperature: 0.9"' "$PCTL"
  has "$T/server.log" "SIGHUP: re-reading the paths and re-applying the manifests"
  before="$("$PCTL" get AiAgent poco -o record | jq .revision)"
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata: {name: broken}\nspec: {mode: nonsense}\n' >"$T/m/broken.yaml"
  kill -HUP "$SERVER_PID"
  wait_for 30 has "$T/server.log" "not applied"
  alive
  [ "$("$PCTL" get AiAgent poco -o record | jq .revision)" = "$before" ]
  run "$PCTL" get AiAgent broken
  [ "$status" -eq 2 ]
}

@test "SIGTERM and SIGINT drain and exit 0, removing server.json; the CLI then goes offline" {
  for sig in TERM INT; do
    start_server
    [ -f "$POCKETCTL_DATA/server.json" ]
    start=$(date +%s%N)
    stop_server "$sig"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "SIG$sig: exited in $ms ms" >&3
    [ "$SERVER_STATUS" -eq 0 ]
    [ ! -e "$POCKETCTL_DATA/server.json" ]
    has "$T/server.log" "Z info stopped"
    # Generous bound (a loaded machine): the point is "not the 10 s kill".
    [ "$ms" -lt 8000 ]
    run "$PCTL" get AiAgent
    [ "$status" -eq 0 ]
  done
}

@test "a SIGKILLed server's server.json: the CLI says so and writes nothing; --offline goes on with a warning" {
  start_server
  stop_server KILL
  [ -f "$POCKETCTL_DATA/server.json" ]
  pid="$(jq -r .pid "$POCKETCTL_DATA/server.json")"
  url="$(jq -r .url "$POCKETCTL_DATA/server.json")"
  run "$PCTL" get AiAgent
  [ "$status" -eq 2 ]
  [[ "$output" == *"server.json' names pid $pid at $url but nothing answers"*"remove it or start the server"* ]]
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 2 ]
  [[ "$output" == *"names pid $pid at $url but nothing answers"* ]]
  run "$PCTL" --offline get AiAgent -o record
  [ "$status" -eq 0 ]
  [[ "$output" == *"warning: '$POCKETCTL_DATA/server.json' names pid $pid"*"going offline as asked"* ]]
  [[ "$output" == *"[]"* ]]
  # A new server replaces the file, and the CLI goes through it again.
  start_server
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created"* ]]
  # Removed by hand, the CLI goes offline without a word.
  stop_server KILL
  rm "$POCKETCTL_DATA/server.json"
  run "$PCTL" get AiAgent poco
  [ "$status" -eq 0 ]
  [[ "$output" != *warning* ]]
}
