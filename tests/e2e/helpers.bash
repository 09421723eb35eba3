# Shared setup for the end-to-end tests: every test gets its own data
# directory and scratch directory, and drives the real binary ($PCTL); a
# file that needs a server starts it with start_server and stops it with
# stop_server (both below), whatever its own setup adds.

# e2e_setup [TAG]: $PCTL checked, REPO, a fresh scratch directory T
# ($BATS_TMPDIR/pocketctl-TAG.XXXXXX) with the data directory T/data as
# POCKETCTL_DATA, and no server, token or admin account from the caller's
# environment.
e2e_setup() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
  T="$(mktemp -d "${BATS_TMPDIR:-/tmp}/pocketctl-${1:-e2e}.XXXXXX")"
  export POCKETCTL_DATA="$T/data"
  unset POCKETCTL_SERVER POCKETCTL_TOKEN POCKETCTL_TIMEOUT \
    POCKETCTL_ADMIN_EMAIL POCKETCTL_ADMIN_PASSWORD
  SERVER_PID=""
}

setup() {
  e2e_setup e2e
}

teardown() {
  stop_server
  rm -rf "$T"
}

pctl() {
  "$PCTL" "$@"
}

# A free loopback TCP port (a race with other processes, as any such probe).
free_port() {
  "${PY:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server [VAR=value...] [--] [serve options...]: run `pocketctl serve`
# for $POCKETCTL_DATA in the background with those environment variables
# and options, and wait (up to 30 s) until it has written server.json and
# answers /healthz. Sets SERVER_PID, URL, PORT and TOKEN (the CLI token,
# exported); on failure prints the server's log and returns 1.
#
# The file's setup may set, for all its starts:
#   SERVER_ROOT        --root (default $T/root)
#   SERVER_ARGS=(...)  options before the call's own (--docker ...)
#   SERVER_ENV=(...)   environment variables (POCKETCTL_ADMIN_EMAIL=...)
#   SERVER_LOG         the log (default $T/server.log), truncated at each
#                      start unless SERVER_LOG_APPEND=1
#   SERVER_CHECK_LOG=1 stop_server fails on a sanitizer report in the log
# The server listens on a port of its own choosing (read back from
# server.json), unless KEEP_PORT is set: then again on $PORT, so that a
# restarted server keeps its address.
start_server() {
  local envs=() log="${SERVER_LOG:-$T/server.log}" listen i try
  while [ $# -gt 0 ] && [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    envs+=("$1")
    shift
  done
  [ "${1:-}" = "--" ] && shift
  [ "${SERVER_LOG_APPEND:-}" = 1 ] || : >"$log"
  for try in 1 2 3; do
    listen="127.0.0.1:0"
    [ -n "${KEEP_PORT:-}" ] && [ -n "${PORT:-}" ] && listen="127.0.0.1:$PORT"
    rm -f "$POCKETCTL_DATA/server.json"
    env ${SERVER_ENV[@]+"${SERVER_ENV[@]}"} ${envs[@]+"${envs[@]}"} \
      "$PCTL" serve --listen "$listen" --root "${SERVER_ROOT:-$T/root}" \
      --bcrypt-cost 4 ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"} "$@" \
      >>"$log" 2>&1 3>&- &
    SERVER_PID=$!
    for i in $(seq 1 600); do
      if [ -s "$POCKETCTL_DATA/server.json" ]; then
        URL="$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' "$POCKETCTL_DATA/server.json")"
        if [ -n "$URL" ] && curl -fsS -m 2 "$URL/healthz" >/dev/null 2>&1; then
          PORT="${URL##*:}"
          export TOKEN="$(cat "$POCKETCTL_DATA/cli.token")"
          return 0
        fi
      fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    stop_server KILL || true
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  return 1
}

# stop_server [SIGNAL]: send SIGNAL (default TERM) to the server, give it
# 10 s to exit, then kill it; SERVER_STATUS is its exit status. Nothing to
# do without a server. With SERVER_CHECK_LOG=1, a sanitizer report in the
# log prints the log and returns 1.
stop_server() {
  local i log="${SERVER_LOG:-$T/server.log}"
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -"${1:-TERM}" "$SERVER_PID" 2>/dev/null || true
  for i in $(seq 1 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  SERVER_STATUS=0
  wait "$SERVER_PID" 2>/dev/null || SERVER_STATUS=$?
  SERVER_PID=""
  if [ "${SERVER_CHECK_LOG:-}" = 1 ] && [ -f "$log" ] &&
     grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$log"; then
    cat "$log" >&2
    return 1
  fi
}

# Snapshot of every record's name, generation and desired state (its
# manifest), for "nothing was written" checks. Revisions are left out on
# purpose: a reconciler's status write bumps them (the containers reconciler
# retrying an unreachable engine, at its own pace), and that is not the
# write these checks look for.
snapshot() {
  local k
  for k in AiPrompt AiModel AiAgent ToolPermission McpServer Container LlmKey; do
    "$PCTL" get "$k" -o record 2>/dev/null | grep -E '"(name|generation)"' || true
    "$PCTL" get "$k" -o yaml 2>/dev/null || true
  done
}

# wait_for SECONDS CMD...: poll CMD every 10 ms until it succeeds; on a
# timeout say what was waited for and return 1.
wait_for() {
  local limit=$(( $1 * 100 )) i
  shift
  for i in $(seq 1 "$limit"); do
    "$@" 2>/dev/null && return 0
    sleep 0.01
  done
  echo "timed out waiting for: $*" >&2
  return 1
}

# su_api METHOD PATH [JSON]: as the local superuser ($TOKEN); sets CODE and
# BODY.
su_api() {
  local args=(-sS -m 30 -o - -w '\n%{http_code}' -X "$1" -H "Authorization: $TOKEN")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  BODY="$(curl "${args[@]}" "$URL$2")"
  CODE="${BODY##*$'\n'}"
  BODY="${BODY%$'\n'*}"
  BODY="${BODY%$'\n'}"   # a JSON body's own final newline, as $(...) drops it
}

COND_PY='
import json, sys
s = json.load(sys.stdin)
items = s["reconcilers"] + ([s["manifests"]] if "manifests" in s else [])
for r in items:
    if r["name"] == sys.argv[1]:
        for c in r["conditions"]:
            if c["type"] == sys.argv[2]:
                print(c[sys.argv[3]])
'
# condition NAME TYPE [FIELD]: a condition field (default: status) of a
# reconciler, or of the manifests source, from GET /api/v1/status.
condition() {
  su_api GET /api/v1/status
  python3 -c "$COND_PY" "$1" "$2" "${3:-status}" <<<"$BODY"
}

# has FILE TEXT: FILE holds TEXT (a fixed string).
has() { grep -qF -- "$2" "$1"; }
