#!/usr/bin/env bash
# bench_files.sh - streaming through the server: a 512 MiB workspace file
# fetched whole from /api/pocketcoder/files, and 512 MiB up and down
# through the observability proxy to a local upstream
# (tests/e2e/proxy_upstream.py). Prints MB/s and the server's peak
# resident memory (VmHWM) before and after, which stays flat when nothing
# is held whole.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bench_init files
SIZE=$((512 * 1048576))
UP_PID=""
trap 'kill "$UP_PID" 2>/dev/null || true; bench_cleanup' EXIT

python3 "$here/../e2e/proxy_upstream.py" "$T/up.port" &
UP_PID=$!
for _ in $(seq 1 100); do [ -s "$T/up.port" ] && break; sleep 0.05; done
mkdir -p "$T/root/workspace"
head -c "$SIZE" /dev/urandom >"$T/root/workspace/big.bin"
bench_serve --observability-url "http://127.0.0.1:$(cat "$T/up.port")"
TOK="$(cat "$T/data/cli.token")"

hwm() { awk '/VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$SRV_PID/status"; }
rate() {  # label seconds
  awk -v l="$1" -v s="$2" -v b="$SIZE" 'BEGIN { printf "%-34s %6.2f s  %7.1f MB/s\n", l, s, b / s / 1e6 }'
}
timed() {  # label curl-args...
  local l="$1" t
  shift
  t="$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: $TOK" "$@")"
  rate "$l" "$t"
}

echo "server peak RSS at start: $(hwm)"
timed "files: 512 MiB whole" "$URL/api/pocketcoder/files/big.bin"
echo "server peak RSS after:    $(hwm)"
timed "proxy: 512 MiB upload" -X POST --data-binary @"$T/root/workspace/big.bin" \
  "$URL/api/pocketcoder/proxy/observability/echo"
timed "proxy: 512 MiB download (chunked)" "$URL/api/pocketcoder/proxy/observability/big?n=$SIZE"
echo "server peak RSS after:    $(hwm)"
