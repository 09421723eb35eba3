#!/usr/bin/env bats
# Rendered directories swapped for a symlink to outside the root WHILE the
# server runs (confine.bats has the links planted before start): removed
# and replaced, exchanged atomically with renameat2(RENAME_EXCHANGE)
# (python3 ctypes), and a directory higher up the path (workspace/)
# exchanged. Each must be detected by the drift watch within a few seconds
# (Degraded naming the link; the periodic resync is 10 minutes away), and
# later changes of the records must write nothing where the link points.
#
# Every test has its own data directory, render root, outside directory
# and server (port 0).

load helpers
load confine

setup() {
  confine_setup confine-live
  unset POCKETCTL_RESYNC_MS
}

# exchange A B: swap the two names atomically (renameat2 RENAME_EXCHANGE).
exchange() {
  python3 - "$1" "$2" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, os.fsencode(sys.argv[1]), AT_FDCWD,
                  os.fsencode(sys.argv[2]), RENAME_EXCHANGE):
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
PY
}

# replace_with_link DIR: rename DIR away (to DIR.old) and put a symlink to
# OUT in its place, back to back. Not atomic: should the engine render DIR
# again in between, that directory is moved away too and the link tried
# again.
replace_with_link() {
  python3 - "$1" "$OUT" <<'PY'
import os, sys
d, out = sys.argv[1], sys.argv[2]
for i in range(50):
    os.rename(d, "%s.old%d" % (d, i))
    try:
        os.symlink(out, d)
        sys.exit(0)
    except FileExistsError:
        pass
sys.exit("could not replace %s with a link" % d)
PY
}

# A digest of every file under OUT (names, modes and bytes).
out_digest() {
  (cd "$OUT" && find . -print0 | sort -z | xargs -0 stat -c '%n %a %s' &&
    find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum
}

agent() {  # agent DESCRIPTION: the agent poco, applied through the server
  cat >"$T/agent.yaml" <<YAML
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: poco}
spec: {description: $1, mode: primary}
YAML
  "$PCTL" apply -f "$T/agent.yaml" >/dev/null
}

mcp() {  # mcp IMAGE: an approved MCP server with a secret, through the server
  cat >"$T/mcp.yaml" <<YAML
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: github}
spec: {status: approved, catalog: docker-mcp, image: $1, config: {GITHUB_TOKEN: live-secret}}
YAML
  "$PCTL" apply -f "$T/mcp.yaml" >/dev/null
}

@test "agents/ renamed away and replaced by a symlink while running: detected at once, nothing written outside" {
  start_server
  agent First
  wait_for 5 has "$OC/agents/poco.md" First
  replace_with_link "$OC/agents"
  wait_for 5 degraded_naming agent-bundles "$OC/agents"
  agent Second
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  outside_empty
  [ -L "$OC/agents" ]
  # the link goes: rendered in a real directory again, Ready
  rm "$OC/agents"
  wait_for 5 has "$OC/agents/poco.md" Second
  wait_for 5 cond_is agent-bundles Degraded False
  outside_empty
}

@test "agents/ exchanged with a symlink (renameat2 RENAME_EXCHANGE): detected at once, nothing written outside" {
  start_server
  agent First
  wait_for 5 has "$OC/agents/poco.md" First
  ln -s "$OUT" "$OC/agents.link"
  exchange "$OC/agents" "$OC/agents.link"
  [ -L "$OC/agents" ] && [ -d "$OC/agents.link" ] && [ ! -L "$OC/agents.link" ]
  wait_for 5 degraded_naming agent-bundles "$OC/agents"
  agent Second
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  outside_empty
  # the real directory, now under the other name, is not written either
  has "$OC/agents.link/poco.md" First
}

@test "mcp_config exchanged with a symlink while running: the MCP secrets stay inside" {
  start_server
  mcp mcp/github:1
  wait_for 5 has "$R/mcp_config/mcp.env" live-secret
  ln -s "$OUT" "$R/mcp_config.link"
  exchange "$R/mcp_config" "$R/mcp_config.link"
  wait_for 5 degraded_naming docker-mcp "$R/mcp_config"
  mcp mcp/github:2
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  outside_empty
  ! grep -rqs live-secret "$OUT"
}

@test "workspace/ exchanged with a symlink to a copy outside: detected without waiting for the resync, the copy untouched" {
  start_server
  agent First
  wait_for 5 has "$OC/agents/poco.md" First
  wait_for 5 test -f "$OC/opencode.json"
  # outside: a copy of the workspace as it is, so that every rendered path
  # resolves through the link
  cp -a "$R/workspace" "$OUT/workspace"
  before="$(out_digest)"
  ln -s "$OUT/workspace" "$R/workspace.link"
  exchange "$R/workspace" "$R/workspace.link"
  # the watches of agents/ and .opencode/ followed the old directories:
  # only the watch of the path sees this
  wait_for 5 degraded_naming agent-bundles "$R/workspace"
  wait_for 5 degraded_naming opencode-json "$R/workspace"
  agent Second
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  [ "$(out_digest)" = "$before" ]
  ! grep -rqs Second "$OUT"
}

@test "skills/ replaced by a symlink while running: detected, the skill not written outside" {
  start_server
  su_api POST /api/collections/proposals/records \
    '{"name":"review-code","description":"Review","content":"# Review\n","authored_by":"human","status":"approved"}'
  [ "$CODE" = 200 ] || { echo "$BODY" >&2; false; }
  wait_for 5 test -f "$OC/skills/review-code/SKILL.md"
  replace_with_link "$OC/skills"
  wait_for 5 degraded_naming skills "$OC/skills"
  su_api POST /api/v1/reconcile '{}'
  sleep 1
  outside_empty
}
