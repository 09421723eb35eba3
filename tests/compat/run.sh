#!/usr/bin/env bash
# tests/compat/run.sh [TEST FILE...] - app compatibility: the official
# PocketBase JS SDK (pinned in package.json / package-lock.json) against a
# real `pocketctl serve`.
#
# Installs the SDK with `npm ci`, starts $PCTL serve on a free loopback port
# with a temporary data directory and a superuser from
# POCKETCTL_ADMIN_EMAIL / POCKETCTL_ADMIN_PASSWORD, runs every *.test.mjs
# here (or the files given) under node's built-in test runner, and always
# stops the server and removes the directory. A sanitizer report in the
# server's log fails the run. Exit status: the test runner's, or 1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
: "${PCTL:?set PCTL to the pocketctl binary}"
PCTL="$(cd "$(dirname "$PCTL")" && pwd)/$(basename "$PCTL")"
command -v node >/dev/null || { echo "compat: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "compat: npm is not installed" >&2; exit 1; }
command -v curl >/dev/null || { echo "compat: curl is not installed" >&2; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pocketctl-compat.XXXXXX")"
pid=""
stop() {
  local rc=$?
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$tmp/server.log" 2>/dev/null; then
    echo "compat: the server reported a sanitizer error:" >&2
    cat "$tmp/server.log" >&2
    rc=1
  elif [ "$rc" != 0 ] && [ -f "$tmp/server.log" ]; then
    echo "compat: last lines of the server log:" >&2
    tail -n 40 "$tmp/server.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s = require("net").createServer();
           s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

export PB_ADMIN_EMAIL="compat-admin@example.com"
export PB_ADMIN_PASSWORD="compat-admin-pass-123"
started=""
for try in 1 2 3; do
  port="$(free_port)"
  export PB_URL="http://127.0.0.1:$port"
  POCKETCTL_ADMIN_EMAIL="$PB_ADMIN_EMAIL" POCKETCTL_ADMIN_PASSWORD="$PB_ADMIN_PASSWORD" \
    "$PCTL" --data "$tmp/data" serve --listen "127.0.0.1:$port" \
    --root "$tmp/root" >"$tmp/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if curl -fsS -m 2 "$PB_URL/api/health" >/dev/null 2>&1; then
      started=1
      break 2
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if [ -z "$started" ]; then
  echo "compat: the server did not start:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

# for the tests that run the CLI against this server (accounts.test.mjs)
export PCTL POCKETCTL_DATA="$tmp/data"

if [ $# -eq 0 ]; then
  set -- ./*.test.mjs
fi
node --test --test-reporter=spec "$@"
