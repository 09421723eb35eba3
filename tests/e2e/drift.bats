#!/usr/bin/env bats
# Drift without races: opencode.json written by hand in place, in two steps
# (truncated, then written), is not taken for a missing file - the keys
# pocketctl does not own survive; hand overwrites of an agent file are
# each restored.

load helpers

setup() {
  e2e_setup drift
  R="$T/root"
  OC="$R/workspace/.opencode"
}



@test "opencode.json truncated, then written a moment later: the unowned key survives" {
  start_server
  wait_for 5 has "$OC/opencode.json" '"permission"'
  for i in 1 2 3; do
    # one writer, one descriptor: truncated at open, written 0.2 s later
    exec 4>"$OC/opencode.json"
    sleep 0.2
    printf '{"theme": "dark-%s"}\n' "$i" >&4
    exec 4>&-
    wait_for 5 has "$OC/opencode.json" '"permission"'
    sleep 0.3
    has "$OC/opencode.json" "\"theme\": \"dark-$i\""
  done
}

@test "20 hand overwrites of agents/poco.md are each restored within 2 s" {
  cat >"$T/agent.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: poco}
spec: {description: Poco, mode: primary}
YAML
  "$PCTL" apply -f "$T/agent.yaml"
  start_server
  wait_for 5 test -f "$OC/agents/poco.md"
  cp "$OC/agents/poco.md" "$T/orig.md"
  for i in $(seq 1 20); do
    echo "hand edit $i" >"$OC/agents/poco.md"
    wait_for 2 cmp -s "$OC/agents/poco.md" "$T/orig.md"
  done
}
