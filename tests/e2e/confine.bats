#!/usr/bin/env bats
# Rendered files cannot leave --root: a symlinked directory on the way to
# a rendered file (planted before start; swapped in while the server runs
# is confine_live.bats) is refused with a Degraded condition naming the link, and nothing
# is written where it points; paths.yaml entries that leave the root are
# refused with their position unless allow_outside_root: true says so.
#
# Every test has its own data directory, render root, outside directory
# and server (port 0).

load helpers
load confine

setup() {
  confine_setup confine
}

agent_manifest() {
  cat >"$T/agent.yaml" <<YAML
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: poco}
spec: {description: ${1:-Poco}, mode: primary}
YAML
}

approve_skill() {
  su_api POST /api/collections/proposals/records \
    '{"name":"review-code","description":"Review","content":"# Review\n","authored_by":"human","status":"approved"}'
  [ "$CODE" = 200 ] || { echo "$BODY" >&2; return 1; }
}

@test "symlinked directories planted before start: nothing written outside, Degraded naming the link" {
  mkdir -p "$OC" "$OUT/agents" "$OUT/mcp" "$OUT/skills"
  ln -s "$OUT/agents" "$OC/agents"
  ln -s "$OUT/mcp" "$R/mcp_config"
  ln -s "$OUT/skills" "$OC/skills"
  agent_manifest
  "$PCTL" apply -f "$T/agent.yaml"
  start_server
  approve_skill
  wait_for 5 degraded_naming agent-bundles "$OC/agents" || { condition agent-bundles Degraded message; condition agent-bundles Degraded; ls -la "$OC" "$OUT"; false; }
  wait_for 5 degraded_naming docker-mcp "$R/mcp_config"
  wait_for 5 degraded_naming skills "$OC/skills"
  # what is not on the way of a link is rendered as usual
  wait_for 3 test -f "$OC/opencode.json"
  test -f "$OC/llm.env"
  [ -z "$(find "$OUT" -type f)" ]
  [ -L "$OC/agents" ] && [ -L "$R/mcp_config" ] && [ -L "$OC/skills" ]
  # The link goes away: rendered in a real directory, Ready again.
  rm "$OC/agents"
  wait_for 5 test -f "$OC/agents/poco.md"
  wait_for 3 cond_is agent-bundles Degraded False
  [ -z "$(find "$OUT" -type f)" ]
}

@test "the proposals directory is not read through a symlink" {
  mkdir -p "$OC" "$OUT/props"
  printf -- '---\nname: planted\ndescription: from outside\n---\nx\n' >"$OUT/props/planted.md"
  ln -s "$OUT/props" "$OC/proposals"
  start_server
  wait_for 5 degraded_naming proposals "$OC/proposals"
  su_api GET "/api/collections/proposals/records?filter=name='planted'"
  [ "$CODE" = 200 ]
  [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])' <<<"$BODY")" = 0 ]
}

@test "paths.yaml: a path that leaves the root is refused with its position" {
  mkdir -p "$POCKETCTL_DATA"
  printf '# escape\nllm_env: ../escape/llm.env\n' >"$POCKETCTL_DATA/paths.yaml"
  run timeout 20 "$PCTL" serve --listen 127.0.0.1:0 --root "$R"
  [ "$status" -eq 2 ]
  [[ "$output" == *"paths.yaml:2:"*"llm_env"*"leaves the root"* ]]
  printf 'mcp_env: %s/mcp.env\n' "$OUT" >"$POCKETCTL_DATA/paths.yaml"
  run timeout 20 "$PCTL" serve --listen 127.0.0.1:0 --root "$R"
  [ "$status" -eq 2 ]
  [[ "$output" == *"paths.yaml:1:"*"mcp_env"*"leaves the root"* ]]
  [ ! -e "$T/escape" ]
  outside_empty
  # an absolute path inside the root, and "..", that stays inside, are fine
  printf 'mcp_env: %s/x/../secrets/mcp.env\nllm_env: workspace/../keys/llm.env\n' "$R" >"$POCKETCTL_DATA/paths.yaml"
  start_server
  wait_for 5 test -f "$R/secrets/mcp.env"
  wait_for 5 test -f "$R/keys/llm.env"
}

@test "paths.yaml: allow_outside_root: true allows a path outside" {
  mkdir -p "$POCKETCTL_DATA"
  printf 'allow_outside_root: true\nllm_env: ../escape/llm.env\n' >"$POCKETCTL_DATA/paths.yaml"
  start_server
  wait_for 5 test -f "$T/escape/llm.env"
  [ "$(stat -c %a "$T/escape/llm.env")" = 600 ]
  printf 'allow_outside_root: "yes"\n' >"$POCKETCTL_DATA/paths.yaml"
  stop_server
  run timeout 20 "$PCTL" serve --listen 127.0.0.1:0 --root "$R"
  [ "$status" -eq 2 ]
  [[ "$output" == *"paths.yaml:1:"*"allow_outside_root"* ]]
}
