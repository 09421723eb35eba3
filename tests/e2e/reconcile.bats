#!/usr/bin/env bats
# The reconcile engine end to end, against a real `pocketctl serve`: files
# rendered at start; records changed through the API and the CLI reach the
# files; the llm.env shell round trip; a second pass writes nothing;
# drift (edit, delete) restored within a second with a DriftCorrected
# event on /api/v1/watch; opencode.json keys we do not own preserved;
# Degraded on an unwritable root, then recovery; `pocketctl status` and
# `pocketctl reconcile`; --manifests DIR --watch with git revision, dirty
# flag and a bad manifest.
#
# Every test has its own data directory, render root and server (port 0).

load helpers

setup() {
  e2e_setup reconcile
  # Quick retries so that recovery tests do not wait for long backoffs.
  export POCKETCTL_BACKOFF_MAX_MS=400
  R="$T/root"
  OC="$R/workspace/.opencode"
  WATCH_PID=""
  SERVER_LOG_APPEND=1
}

teardown() {
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  stop_server
  rm -rf "$T"
}



# The id of a new user (the relation target of llm_keys).
new_user() {
  su_api POST /api/collections/users/records \
    '{"email":"u@example.com","password":"password123","passwordConfirm":"password123"}'
  [ "$CODE" = 200 ] || { echo "$BODY" >&2; return 1; }
  USER_ID="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$BODY")"
}

cond_is() { [ "$(condition "$1" "$2")" = "$3" ]; }

stat_all() {
  find "$R" -type f ! -name '*.tmp.*' -printf '%p %i %T@ %m\n' | sort
}

@test "every file is rendered at start, at its path and mode" {
  start_server
  "$PCTL" reconcile --wait >/dev/null
  for f in "$OC/llm.env" "$R/llm_keys/llm.env" "$R/mcp_config/mcp.env"; do
    [ "$(stat -c %a "$f")" = 600 ]
  done
  for f in "$OC/opencode.json" "$R/mcp_config/docker-mcp.yaml" "$R/ssh_keys/authorized_keys"; do
    [ "$(stat -c %a "$f")" = 644 ]
  done
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["permission"]["*"] == "ask", d' "$OC/opencode.json"
  has "$R/mcp_config/docker-mcp.yaml" "name: docker-mcp"
  run "$PCTL" status
  [ "$status" -eq 0 ]
  [[ "$output" == *"llm-env"*"True"* ]]
  [[ "$output" == *"authorized-keys"* ]]
}

@test "an API change reaches both llm.env copies; the shell reads back the exact value" {
  start_server
  new_user
  local value=$'it\'s a "test" $HOME `id` \\back \xc3\xa9 tab\there\nINJECTED=1'
  local body
  body="$(python3 -c 'import json,sys; print(json.dumps({"provider_id":"openai","user":sys.argv[1],"env_vars":{"OPENAI_API_KEY":sys.argv[2],"NUM":1000000.0,"FLAG":True}}))' "$USER_ID" "$value")"
  su_api POST /api/collections/llm_keys/records "$body"
  [ "$CODE" = 200 ]
  wait_for 2 has "$OC/llm.env" OPENAI_API_KEY=
  wait_for 2 has "$R/llm_keys/llm.env" OPENAI_API_KEY=
  cmp "$OC/llm.env" "$R/llm_keys/llm.env"
  cd "$OC"
  run sh -c '. ./llm.env; printf %s "$OPENAI_API_KEY"'
  [ "$output" = "$value" ]
  run sh -c '. ./llm.env; printf "%s|%s|%s" "${INJECTED-unset}" "$NUM" "$FLAG"'
  [ "$output" = "unset|1000000.0|true" ]
  [ "$(stat -c %a ./llm.env)" = 600 ]
}

@test "a CLI apply reaches opencode.json, agent bundles and the MCP files" {
  start_server
  cat >"$T/m.yaml" <<'EOF'
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata: {name: helper}
spec: {body: "You help. Say \"hi\"."}
---
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: helper}
spec: {description: A helper, mode: subagent, prompt: helper}
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata: {name: bash-ls}
spec: {tool: bash, pattern: "ls *", action: allow, priority: 5}
---
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: github}
spec: {status: approved, config: {GITHUB_TOKEN: "ghp x"}}
EOF
  "$PCTL" apply -f "$T/m.yaml"
  wait_for 2 has "$OC/agents/helper.md" "description: A helper"
  has "$OC/agents/helper.md" 'You help. Say "hi".'
  wait_for 2 has "$OC/opencode.json" '"ls *": "allow"'
  wait_for 2 has "$R/mcp_config/docker-mcp.yaml" "image: mcp/github:latest"
  wait_for 2 has "$R/mcp_config/mcp.env" "GITHUB_TOKEN=ghp x"
  # Deleting the agent removes its bundle and its opencode.json entry.
  "$PCTL" delete AiAgent helper
  wait_for 2 test ! -e "$OC/agents/helper.md"
  wait_for 2 sh -c "! grep -q '\"helper\"' '$OC/opencode.json'"
}

@test "a second pass writes nothing (same inode, mtime and mode)" {
  start_server
  new_user
  su_api POST /api/collections/llm_keys/records "{\"provider_id\":\"p\",\"user\":\"$USER_ID\",\"env_vars\":{\"A\":\"1\"}}"
  wait_for 2 has "$OC/llm.env" "A='1'"
  "$PCTL" reconcile --wait >/dev/null
  before="$(stat_all)"
  sleep 0.05
  "$PCTL" reconcile --wait >/dev/null
  "$PCTL" reconcile --wait >/dev/null
  [ "$(stat_all)" = "$before" ]
}

@test "drift: an edited or deleted file is restored within 1 s, with DriftCorrected on /api/v1/watch" {
  start_server
  "$PCTL" reconcile --wait >/dev/null
  cp "$OC/opencode.json" "$T/orig.json"
  curl -sN -m 20 -H "Authorization: $TOKEN" \
    "$URL/api/v1/watch?collection=reconcile_status" >"$T/watch.out" 2>/dev/null &
  WATCH_PID=$!
  sleep 0.3
  echo '{"permission": {"*": "allow"}}' >"$OC/opencode.json"
  wait_for 1 cmp -s "$OC/opencode.json" "$T/orig.json"
  rm "$R/mcp_config/mcp.env"
  wait_for 1 test -f "$R/mcp_config/mcp.env"
  chmod 644 "$OC/llm.env"
  wait_for 1 sh -c "[ \"\$(stat -c %a '$OC/llm.env')\" = 600 ]"
  wait_for 3 has "$T/watch.out" "\"reason\":\"Deleted\",\"file\":\"$R/mcp_config/mcp.env\""
  has "$T/watch.out" "\"type\":\"DriftCorrected\",\"reason\":\"Modified\",\"file\":\"$OC/opencode.json\""
  wait_for 3 has "$T/watch.out" "\"reason\":\"ModeChanged\",\"file\":\"$OC/llm.env\""
  run "$PCTL" status opencode-json
  [[ "$output" == *"DriftCorrected"* ]]
}

@test "opencode.json: keys pocketctl does not own are preserved; invalid JSON is left untouched" {
  mkdir -p "$OC"
  cat >"$OC/opencode.json" <<'EOF'
{
  "$schema": "https://opencode.ai/config.json",
  "mcp": {"cao": {"type": "remote", "url": "http://sandbox:9888/sse", "enabled": true}},
  "plugin": ["./.opencode/plugins/session_env.ts"],
  "agent": {"poco": {"tools": {"bash": true}}}
}
EOF
  # The agent exists before the first render (agents missing from the
  # store are removed from the file: the store is the source of truth).
  cat >"$T/agent.yaml" <<'EOF'
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: poco}
spec: {description: Poco, mode: primary}
EOF
  "$PCTL" apply -f "$T/agent.yaml"
  start_server
  cat >"$T/m.yaml" <<'EOF'
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata: {name: edit}
spec: {tool: edit, pattern: "*", action: ask}
EOF
  "$PCTL" apply -f "$T/m.yaml"
  wait_for 2 has "$OC/opencode.json" '"edit": "ask"'
  python3 - "$OC/opencode.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["$schema"] == "https://opencode.ai/config.json"
assert d["mcp"]["cao"] == {"type": "remote", "url": "http://sandbox:9888/sse", "enabled": True}
assert d["plugin"] == ["./.opencode/plugins/session_env.ts"]
assert d["agent"]["poco"]["tools"] == {"bash": True}
assert d["agent"]["poco"]["description"] == "Poco"
assert list(d)[:3] == ["$schema", "mcp", "plugin"], list(d)
PY
  printf '{\n  "a": 1,\n  oops\n}\n' >"$T/bad.json"
  mv "$T/bad.json" "$OC/opencode.json"
  wait_for 3 cond_is opencode-json Degraded True
  [[ "$(condition opencode-json Degraded message)" == *"opencode.json:3:"* ]]
  [ "$(cat "$OC/opencode.json")" = "$(printf '{\n  "a": 1,\n  oops\n}')" ]
  # Fixed by hand: picked up by inotify, Ready again.
  echo '{"theme": "dark"}' >"$T/good.json"
  mv "$T/good.json" "$OC/opencode.json"
  wait_for 3 has "$OC/opencode.json" '"edit": "ask"'
  has "$OC/opencode.json" '"theme": "dark"'
  wait_for 3 cond_is opencode-json Ready True
}

@test "Degraded on an unwritable root with a precise message, others keep working, then recovery" {
  mkdir -p "$R"
  echo "not a directory" >"$R/mcp_config"     # the parent cannot be created
  mkdir -p "$R/llm_keys/llm.env"              # a directory where the file goes
  start_server
  wait_for 3 cond_is docker-mcp Degraded True
  [[ "$(condition docker-mcp Degraded message)" == *"$R/mcp_config"*"not a directory"* ]]
  wait_for 3 cond_is llm-env Degraded True
  [[ "$(condition llm-env Degraded message)" == *"$R/llm_keys/llm.env"*"a directory is in the way"* ]]
  # Everything else is fine, and llm.env's other copy is written.
  cond_is opencode-json Ready True
  test -f "$OC/llm.env"
  su_api GET /api/v1/status
  python3 -c 'import json,sys; s=json.load(sys.stdin); r=[x for x in s["reconcilers"] if x["name"]=="docker-mcp"][0]; assert r["failures"] >= 1 and r["nextRetryTime"], r' <<<"$BODY"
  # The faults go away: retried with backoff, converges.
  rm "$R/mcp_config"
  rmdir "$R/llm_keys/llm.env"
  wait_for 5 test -f "$R/mcp_config/docker-mcp.yaml"
  wait_for 5 test -f "$R/llm_keys/llm.env"
  wait_for 3 cond_is docker-mcp Ready True
  wait_for 3 cond_is llm-env Degraded False
  run "$PCTL" reconcile --wait
  [ "$status" -eq 0 ]
}

@test "unwritable directory (non-root only): Degraded, old file intact, recovery" {
  [ "$(id -u)" != 0 ] || skip "root ignores directory permissions"
  start_server
  "$PCTL" reconcile --wait >/dev/null
  new_user
  cp "$OC/llm.env" "$T/old.env"
  chmod 555 "$OC"
  su_api POST /api/collections/llm_keys/records "{\"provider_id\":\"p\",\"user\":\"$USER_ID\",\"env_vars\":{\"A\":\"1\"}}"
  wait_for 3 cond_is llm-env Degraded True
  cmp "$OC/llm.env" "$T/old.env"
  chmod 755 "$OC"
  wait_for 5 has "$OC/llm.env" "A='1'"
}

@test "status and reconcile need an admin" {
  start_server
  run curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/status"
  [ "$output" = 401 ]
  run curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/reconcile"
  [ "$output" = 401 ]
  su_api POST "/api/v1/reconcile?wait=true"
  [ "$CODE" = 200 ]
  [[ "$BODY" == *'"completed": true'* || "$BODY" == *'"completed":true'* ]]
  run "$PCTL" status -o json
  [ "$status" -eq 0 ]
  python3 -c 'import json,sys; s=json.load(sys.stdin); assert {r["name"] for r in s["reconcilers"]} >= {"llm-env","opencode-json","agent-bundles","docker-mcp","authorized-keys"}' <<<"$output"
}

@test "status works offline from the stored status" {
  start_server
  "$PCTL" reconcile --wait >/dev/null
  stop_server
  run "$PCTL" status
  [ "$status" -eq 0 ]
  [[ "$output" == *offline* ]]
  [[ "$output" == *"llm-env"*"True"* ]]
  run "$PCTL" reconcile
  [ "$status" -eq 2 ]
  [[ "$output" == *"needs a running server"* ]]
}

@test "--manifests DIR --watch: re-applied on change, git revision and dirty flag, bad manifest refused" {
  command -v git >/dev/null || skip "git not installed"
  cp -r "$REPO/manifests" "$T/m"
  git -C "$T/m" init -q
  git -C "$T/m" -c user.email=t@e -c user.name=t add -A
  git -C "$T/m" -c user.email=t@e -c user.name=t commit -qm init
  rev="$(git -C "$T/m" rev-parse HEAD)"
  start_server --manifests "$T/m" --watch
  wait_for 5 cond_is manifests Ready True
  su_api GET /api/v1/status
  python3 -c '
import json, sys
m = json.load(sys.stdin)["manifests"]
assert m["lastAppliedRevision"] == sys.argv[1], m
assert m["dirty"] is False, m
' "$rev" <<<"$BODY"
  cat >"$T/m/extra.yaml" <<'EOF'
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: watched}
spec: {status: approved}
EOF
  wait_for 5 has "$R/mcp_config/docker-mcp.yaml" "image: mcp/watched:latest"
  wait_for 3 sh -c "curl -s -H 'Authorization: $TOKEN' '$URL/api/v1/status' | grep -q '\"dirty\": *true'"
  # A bad manifest: Degraded with file:line:col, nothing applied.
  cat >"$T/m/bad.yaml" <<'EOF'
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: never}
spec: {status: maybe}
EOF
  wait_for 5 cond_is manifests Degraded True
  [[ "$(condition manifests Degraded message)" == *"bad.yaml:4:"* ]]
  run "$PCTL" get McpServer never
  [ "$status" -ne 0 ]
  rm "$T/m/bad.yaml"
  git -C "$T/m" -c user.email=t@e -c user.name=t add -A
  git -C "$T/m" -c user.email=t@e -c user.name=t commit -qm more
  rev="$(git -C "$T/m" rev-parse HEAD)"
  wait_for 5 sh -c "curl -s -H 'Authorization: $TOKEN' '$URL/api/v1/status' | grep -q '\"lastAppliedRevision\": *\"$rev\"'"
  wait_for 3 cond_is manifests Ready True
}
