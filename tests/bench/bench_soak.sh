#!/usr/bin/env bash
# bench_soak.sh - memory under a steady write load: SOAK_RATE (200) creates
# a second into ai_prompts for SOAK_SECONDS (300), then SOAK_IDLE (30) s
# with no load, against a real `pocketctl serve` with the default manifests
# applied (so the agent poco and its prompt are rendered); then the same
# into healthchecks, which no reconciler reads, as the control. Prints the
# server's RSS (VmRSS of /proc/PID/status) at the start, at the end of the
# load and after the idle period, the creates wrk completed, and the
# server's CPU time. The pace comes from wrk (Debian) with a Lua delay per
# request on SOAK_CONNS (4) connections; every create is durable before
# its reply. Figures, not pass/fail; the issue's figure before the fix:
# ai_prompts 20 MB -> 79 MB over 5 minutes, not given back when idle.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
SECS="${SOAK_SECONDS:-300}"
RATE="${SOAK_RATE:-200}"
IDLE="${SOAK_IDLE:-30}"
CONNS="${SOAK_CONNS:-4}"
command -v wrk >/dev/null || { echo "bench_soak: wrk is missing (scripts/install-deps.sh bench)" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$here/../.." && pwd)"
. "$here/lib.sh"
bench_init soak
export POCKETCTL_DATA="$T/data"
unset POCKETCTL_SERVER

rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$SRV_PID/status"; }
mb() { awk "BEGIN {printf \"%.1f MB\", $1 / 1024}"; }
cpu_s() {  # utime + stime of the server, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$SRV_PID/stat"
}

soak() {  # soak COLLECTION JSON-BODY-WITH-%d
  local coll="$1" body="$2" r0 r1 r2 c0 c1 done_n
  rm -rf "$T/data" "$T/root"
  "$PCTL" --offline apply -f "$REPO/manifests" >/dev/null
  POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=bench-pass-123 \
    bench_serve --bcrypt-cost 4
  SU="$(cat "$T/data/cli.token")"
  # Per connection: one request every CONNS/RATE seconds (minus its own
  # latency, which is well under that here).
  cat >"$T/soak.lua" <<EOF
-- tid: a global, so that each thread's own value (thread:set) is seen
local n = 0
local threads = 0
local pace = math.floor(1000 * $CONNS / $RATE)
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
wrk.method = "POST"
wrk.headers["Authorization"] = "$SU"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local body = string.format('$body', tid * 100000000 + n)
  return wrk.format(nil, "/api/collections/$coll/records", nil, body)
end
delay = function() return pace end
EOF
  sleep 1
  r0=$(rss_kb); c0=$(cpu_s)
  wrk -t "$CONNS" -c "$CONNS" -d "${SECS}s" -s "$T/soak.lua" "$URL" >"$T/wrk.out" 2>&1
  r1=$(rss_kb); c1=$(cpu_s)
  sleep "$IDLE"
  r2=$(rss_kb)
  done_n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$T/wrk.out")
  non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$T/wrk.out")
  echo "$coll: ${done_n:-?} creates in ${SECS} s ($(awk "BEGIN {printf \"%.0f\", ${done_n:-0} / $SECS}")/s, ${non2xx:-0} not 2xx); server CPU $(awk "BEGIN {printf \"%.0f\", 100 * ($c1 - $c0) / $SECS}") %"
  echo "$coll: RSS start $(mb "$r0"), end $(mb "$r1"), after ${IDLE} s idle $(mb "$r2")"
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
}

soak ai_prompts '{"name":"soak-%d","body":"You are a soak-test prompt. Be brief."}'
soak healthchecks '{"name":"soak-%d","status":"ready"}'
