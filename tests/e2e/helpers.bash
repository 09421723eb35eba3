# Shared setup for the end-to-end tests: every test gets its own data
# directory and scratch directory, and drives the real binary ($PCTL).
setup() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$(mktemp -d "${BATS_TMPDIR:-/tmp}/pocketctl-e2e.XXXXXX")"
  export POCKETCTL_DATA="$T/data"
  unset POCKETCTL_SERVER
}

teardown() {
  rm -rf "$T"
}

pctl() {
  "$PCTL" "$@"
}

# Snapshot of every record's name, generation and revision, for
# "nothing was written" checks.
snapshot() {
  local k
  for k in AiPrompt AiModel AiAgent ToolPermission McpServer Container LlmKey; do
    "$PCTL" get "$k" -o json 2>/dev/null | grep -E '"(name|revision|generation)"' || true
  done
}
