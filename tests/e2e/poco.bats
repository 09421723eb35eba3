#!/usr/bin/env bats
# Notify Poco end to end: the real server and its poco reconciler against
# a real OpenCode server (`opencode serve`, offline on loopback; the
# binary pinned in tests/opencode/package.json, installed by `npm ci` on
# first use). A session is created through OpenCode's API, a chat of
# pocketctl carries it, an MCP server is approved, revoked or denied
# through the records API as the app does, and the system message is
# looked for in the session through OpenCode's own API.

load helpers
load api

setup_file() {
  local dir="$BATS_TEST_DIRNAME/../opencode"
  OC_BIN="$dir/node_modules/opencode-linux-x64/bin/opencode"
  if ! [ -x "$OC_BIN" ] ||
     ! grep -q '"version": "1.2.6"' "$dir/node_modules/opencode-linux-x64/package.json"; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  export OC_BIN
  export OC_HOME="$BATS_FILE_TMPDIR/oc"
  mkdir -p "$OC_HOME/project"
  export OC_PORT="$(free_port)"
  export OC_URL="http://127.0.0.1:$OC_PORT"
  oc_start
}

teardown_file() {
  oc_stop
}

# oc_start / oc_stop: OpenCode on $OC_PORT with a home of its own (its
# sessions survive a stop); OC_PID in $OC_HOME/pid.
oc_start() {
  (cd "$OC_HOME/project" &&
   HOME="$OC_HOME" XDG_DATA_HOME="$OC_HOME/data" XDG_CONFIG_HOME="$OC_HOME/config" \
   XDG_CACHE_HOME="$OC_HOME/cache" XDG_STATE_HOME="$OC_HOME/state" \
   exec "$OC_BIN" serve --port "$OC_PORT" --hostname 127.0.0.1 \
     >>"$OC_HOME/serve.log" 2>&1 3>&-) &
  echo $! >"$OC_HOME/pid"
  wait_for 120 curl -fsS -m 2 -o /dev/null "$OC_URL/session" ||
    { cat "$OC_HOME/serve.log" >&2; return 1; }
}

oc_stop() {
  local pid
  pid="$(cat "$OC_HOME/pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
  wait_for 20 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$OC_HOME/pid"
}

setup() {
  e2e_setup poco
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123
              POCKETCTL_POCO_BACKOFF_MS=200 POCKETCTL_POCO_TIMEOUT_MS=3000)
  SERVER_CHECK_LOG=1
  declare -gA UID_OF TOK_OF
}

teardown() {
  stop_server
  rm -rf "$T"
}

# serve [serve options...]: the server told about OpenCode, a superuser
# token $SU, the human alice (role admin) and the agent poco.
serve() {
  start_server -- --opencode-url "$OC_URL" "$@"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  new_user alice admin
  new_user poco agent
  ALICE="${TOK_OF[alice]}"
  POCO="${TOK_OF[poco]}"
}

# session: a new OpenCode session; sets SES.
session() {
  SES="$(curl -fsS -m 10 -X POST -H 'Content-Type: application/json' -d '{}' \
    "$OC_URL/session" | jq -r .id)"
  [[ "$SES" == ses_* ]]
}

# chat SESSION: a chat of alice's carrying SESSION; sets CHAT.
chat() {
  api POST /api/collections/chats/records "$ALICE" \
    "{\"title\":\"t\",\"ai_engine_session_id\":\"$1\"}"
  [ "$code" = 200 ] || { echo "chat: $code $body" >&2; return 1; }
  CHAT="$(jq -r .id <<<"$body")"
}

# request NAME: the agent asks for MCP server NAME (pending); sets MCP.
request() {
  api POST /api/pocketcoder/mcp_request "$POCO" \
    "{\"server_name\":\"$1\",\"reason\":\"tests\",\"image\":\"mcp/$1\"}"
  [ "$code" = 200 ] || { echo "request: $code $body" >&2; return 1; }
  MCP="$(jq -r .id <<<"$body")"
}

# decide ID STATUS: alice sets the server's status, as the app does.
decide() {
  api PATCH "/api/collections/mcp_servers/records/$1" "$ALICE" \
    "{\"status\":\"$2\"}"
  [ "$code" = 200 ] || { echo "decide: $code $body" >&2; return 1; }
}

# texts SESSION: the text parts of the session's user messages, one a line.
texts() {
  curl -fsS -m 10 "$OC_URL/session/$1/message" |
    jq -r '.[] | select(.info.role == "user") | .parts[] | select(.type == "text") | .text'
}
# told SESSION TEXT [N]: the session holds TEXT exactly N (1) times.
told() { [ "$(texts "$1" | grep -cxF -- "$2")" = "${3:-1}" ]; }

# poco ID [JQ]: the server's poco status (or a field of it).
poco() {
  pctl get McpServer -o record |
    jq -r --arg id "$1" "(if type == \"array\" then .[] else . end) | select(.id == \$id) | .status.poco${2:-}"
}
phase_is() { [ "$(poco "$1" .phase)" = "$2" ]; }
# tried ID N: the first chat of the server's delivery had N attempts or more.
tried() { [ "$(poco "$1" '.chats[0].attempts // 0')" -ge "$2" ]; }

avail() { echo "[SYSTEM] MCP server '$1' is now available. Sandbox agents can connect to the gateway at http://mcp-gateway:8811/sse."; }

@test "approval: the system message lands in the session, once, after the files are rendered" {
  serve
  session
  chat "$SES"
  local mine="$CHAT"
  chat "$SES"                          # the same session: told once
  chat ""                              # no session: nobody to tell
  request github
  phase_is "$MCP" none
  decide "$MCP" approved
  wait_for 30 told "$SES" "$(avail github)"
  wait_for 10 phase_is "$MCP" sent
  [ "$(poco "$MCP" .state)" = approved ]
  [ "$(poco "$MCP" '.chats | length')" = 1 ]
  [ "$(poco "$MCP" '.chats[0].chat')" = "$mine" ]
  [ "$(poco "$MCP" '.chats[0].code')" = 204 ]
  grep -q 'mcp/github' "$T/root/mcp_config/docker-mcp.yaml"
  su_api GET /api/v1/status
  [ "$(jq -r '.reconcilers[] | select(.name == "poco") | .poco.sent' <<<"$BODY")" = 1 ]
  run "$PCTL" status poco -o json
  [ "$status" = 0 ]
  [[ "$output" == *'"changesSettled": 1'* ]] || [[ "$output" == *'"changesSettled":1'* ]]

  # another save while approved, and a restart: nothing is told again
  api PATCH "/api/collections/mcp_servers/records/$MCP" "$ALICE" '{"reason":"more PRs"}'
  [ "$code" = 200 ]
  KEEP_PORT=1 stop_server
  KEEP_PORT=1 start_server -- --opencode-url "$OC_URL"
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  told "$SES" "$(avail github)" 1
  phase_is "$MCP" sent
}

@test "revoked and denied: the original's words, each once" {
  serve
  session
  chat "$SES"
  request github
  decide "$MCP" approved
  wait_for 30 told "$SES" "$(avail github)"
  decide "$MCP" revoked
  wait_for 30 told "$SES" "[SYSTEM] MCP server 'github' has been revoked and is no longer available to sandbox agents."
  wait_for 10 phase_is "$MCP" sent
  [ "$(poco "$MCP" .state)" = revoked ]
  ! grep -q 'mcp/github' "$T/root/mcp_config/docker-mcp.yaml"

  request brave
  decide "$MCP" denied
  wait_for 30 told "$SES" "[SYSTEM] MCP server 'brave' request was denied by the user."
  # approved again after the revocation: a new change, told again
  api GET "/api/collections/mcp_servers/records?filter=name='github'" "$ALICE"
  decide "$(jq -r '.items[0].id' <<<"$body")" approved
  wait_for 30 told "$SES" "$(avail github)" 2
  told "$SES" "[SYSTEM] MCP server 'brave' request was denied by the user." 1
}

@test "only chats active within --poco-notify-window; a session id that is not one is refused" {
  serve --poco-notify-window 2s
  session
  chat "$SES"
  sleep 3                              # older than the window
  session
  local fresh="$SES"
  chat "$fresh"
  chat "../../config?x=1"
  local bad="$CHAT"
  request github
  decide "$MCP" approved
  wait_for 30 told "$fresh" "$(avail github)"
  wait_for 10 phase_is "$MCP" partial
  [ "$(poco "$MCP" '.chats | length')" = 2 ]
  [ "$(poco "$MCP" "$(printf '.chats[] | select(.chat == "%s") | .state' "$bad")")" = failed ]
}

@test "not before the gateway runs with the new config" {
  SERVER_ARGS=(--docker "unix://$BATS_FILE_TMPDIR/no-engine.sock")
  serve
  session
  chat "$SES"
  printf '%s\n' 'apiVersion: pocketcoder.dev/v1' 'kind: Container' \
    'metadata: {name: pocketcoder-mcp-gateway}' \
    'spec: {files: [mcp_config/docker-mcp.yaml, mcp_config/mcp.env], running: true}' \
    >"$T/gw.yaml"
  pctl apply -f "$T/gw.yaml"
  request github
  decide "$MCP" approved
  wait_for 30 bash -c "grep -q mcp/github '$T/root/mcp_config/docker-mcp.yaml'"
  wait_for 10 phase_is "$MCP" waiting
  wait_for 10 bash -c "[[ \"\$(\"$PCTL\" get McpServer github -o record | jq -r .status.poco.reason)\" == *\"container 'pocketcoder-mcp-gateway' does not yet run with the new config\"* ]]"
  sleep 1
  told "$SES" "$(avail github)" 0
  # without the gateway container the rendered files are enough
  pctl delete Container pocketcoder-mcp-gateway
  wait_for 30 told "$SES" "$(avail github)"
}

@test "OpenCode down: the failure shows, the engine goes on, a restart resumes, delivery when it is back" {
  serve
  session
  chat "$SES"
  request github
  oc_stop
  decide "$MCP" approved
  wait_for 30 tried "$MCP" 2
  [ "$(poco "$MCP" .phase)" = delivering ]
  # one read: between two, inflight may turn retrying (and back)
  st="$(poco "$MCP" '.chats[0].state')"
  [ "$st" = retrying ] || [ "$st" = inflight ] || { echo "state: $st" >&2; false; }
  [ -n "$(poco "$MCP" '.chats[0].error')" ]
  su_api GET /api/v1/status
  [ -n "$(jq -r '.reconcilers[] | select(.name == "poco") | .poco.lastError' <<<"$BODY")" ]
  [ "$(condition poco Delivered)" = False ]
  [ "$(condition poco Delivered reason)" = Retrying ]
  # the engine keeps converging: the gateway's file and another change
  grep -q 'mcp/github' "$T/root/mcp_config/docker-mcp.yaml"
  api POST /api/collections/llm_keys/records "$ALICE" '{"provider_id":"openai","env_vars":{"OPENAI_API_KEY":"sk-1"}}'
  [ "$code" = 200 ]
  wait_for 30 grep -q OPENAI_API_KEY "$T/root/workspace/.opencode/llm.env"
  # a restart while retrying resumes the same delivery
  KEEP_PORT=1 stop_server
  KEEP_PORT=1 start_server -- --opencode-url "$OC_URL"
  oc_start
  wait_for 60 told "$SES" "$(avail github)"
  wait_for 10 phase_is "$MCP" sent
  sleep 1
  told "$SES" "$(avail github)" 1
  [ "$(poco "$MCP" '.chats | length')" = 1 ]
}

@test "--opencode-url and --poco-notify-window: bad values are usage errors" {
  run "$PCTL" serve --opencode-url ftp://x
  [ "$status" = 2 ]
  [[ "$output" == *"--opencode-url"* ]]
  run "$PCTL" serve --opencode-url "$OC_URL" --poco-notify-window soon
  [ "$status" = 2 ]
  [[ "$output" == *"--poco-notify-window needs a duration"* ]]
  run env OPENCODE_URL=nope "$PCTL" serve
  [ "$status" = 2 ]
  [[ "$output" == *"OPENCODE_URL"* ]]
}

@test "nothing listening and POCKETCTL_POCO_ATTEMPTS=2: the chat fails with the reason, once" {
  local dead="http://127.0.0.1:$(free_port)"
  start_server POCKETCTL_POCO_ATTEMPTS=2 -- --opencode-url "$dead/"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  new_user alice admin
  new_user poco agent
  ALICE="${TOK_OF[alice]}"
  POCO="${TOK_OF[poco]}"
  chat "ses_gone"
  request github
  decide "$MCP" approved
  wait_for 30 phase_is "$MCP" failed
  [ "$(poco "$MCP" '.chats[0].attempts')" = 2 ]
  [[ "$(poco "$MCP" '.chats[0].error')" == *"gave up after 2 attempts"* ]]
  # settled: the reconciler is not Degraded by it and retries no more
  [ "$(condition poco Delivered)" = True ]
  sleep 1
  [ "$(poco "$MCP" '.chats[0].attempts')" = 2 ]
}
