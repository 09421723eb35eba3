# What confine.bats and confine_live.bats share: a render root R (OC its
# OpenCode directory) and a directory OUT outside it where nothing may be
# written, and the condition checks.

# confine_setup TAG: e2e_setup TAG, R, OC and an empty OUT; retries capped
# at 400 ms so that a Degraded reconciler recovers quickly.
confine_setup() {
  e2e_setup "$1"
  export POCKETCTL_BACKOFF_MAX_MS=400
  R="$T/root"
  OC="$R/workspace/.opencode"
  OUT="$T/outside"
  mkdir -p "$OUT"
  SERVER_LOG_APPEND=1
}

# outside_empty: nothing at all in OUT.
outside_empty() { [ -z "$(find "$OUT" -mindepth 1 -print -quit)" ]; }

cond_is() { [ "$(condition "$1" "$2")" = "$3" ]; }

# degraded_naming NAME PATH: NAME is Degraded, its message naming PATH as
# the symbolic link refused.
degraded_naming() {
  cond_is "$1" Degraded True &&
    [[ "$(condition "$1" Degraded message)" == *"'$2' is a symbolic link"* ]]
}
