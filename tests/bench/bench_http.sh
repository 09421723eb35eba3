#!/usr/bin/env bash
# bench_http.sh - the records API under wrk (Debian) on loopback, against a
# real `pocketctl serve` over BENCH_RECORDS (10,000) healthchecks records:
#   list   GET .../records?perPage=20 (with the total, then skipTotal=1)
#   list   the same as a plain user (the list rule is evaluated)
#   view   GET .../records/{id}, ids drawn at random from the store
#   create POST .../records from BENCH_CREATE_CONNS (64) connections; every
#          reply comes after its row is durable (group commit, fsync)
# Prints requests/s and the latency p50/p99 wrk measured, for
# BENCH_HTTP_SECONDS (10) each. Targets from the issue: >= 10,000 list
# req/s; >= 10,000 creates/s from 64 clients. PocketBase's published
# figures on a 2-vCPU VPS: about 1,800 creates/s, 316-1,180 list req/s.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
N="${BENCH_RECORDS:-10000}"
SECS="${BENCH_HTTP_SECONDS:-10}"
CONNS="${BENCH_CONNS:-32}"
CREATE_CONNS="${BENCH_CREATE_CONNS:-64}"
command -v wrk >/dev/null || { echo "bench_http: wrk is missing (scripts/install-deps.sh bench)" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bench_init http
export POCKETCTL_DATA="$T/data"
unset POCKETCTL_SERVER

# The records, applied offline before the server starts.
python3 - "$N" > "$T/seed.yaml" <<'PY'
import sys
n = int(sys.argv[1])
docs = []
for i in range(n):
    docs.append("apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\nmetadata:\n"
                f"  name: hc-{i:05d}\nspec:\n  status: ready\n"
                "  last_ping: 2026-11-25 10:00:00.000Z")
print("\n---\n".join(docs))
PY
"$PCTL" --offline apply -f "$T/seed.yaml" >/dev/null

POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=bench-pass-123 \
  bench_serve --bcrypt-cost 4 --max-streams 16
SU="$(cat "$T/data/cli.token")"
# A plain user, for the list with its rule evaluated.
curl -fsS -m 10 -H "Authorization: $SU" -H 'Content-Type: application/json' \
  --data '{"email":"bench@example.com","password":"bench-pass-123","passwordConfirm":"bench-pass-123","role":"user"}' \
  "$URL/api/collections/users/records" >/dev/null
USER_TOKEN="$(curl -fsS -m 10 -H 'Content-Type: application/json' \
  --data '{"identity":"bench@example.com","password":"bench-pass-123"}' \
  "$URL/api/collections/users/auth-with-password" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

# 500 ids for the view benchmark.
curl -fsS -m 10 -H "Authorization: $SU" \
  "$URL/api/collections/healthchecks/records?perPage=500&fields=id&skipTotal=1" |
  python3 -c 'import json,sys; print("ids = {" + ",".join("%r" % r["id"] for r in json.load(sys.stdin)["items"]) + "}")' >"$T/ids.lua"
total="$(curl -fsS -m 10 -H "Authorization: $SU" "$URL/api/collections/healthchecks/records?perPage=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])')"

cat >"$T/view.lua" <<EOF
$(cat "$T/ids.lua")
wrk.headers["Authorization"] = "$SU"
request = function()
  return wrk.format("GET", "/api/collections/healthchecks/records/" .. ids[math.random(#ids)])
end
EOF
cat >"$T/create.lua" <<EOF
wrk.method = "POST"
wrk.headers["Authorization"] = "$SU"
wrk.headers["Content-Type"] = "application/json"
-- setup() runs in the main state: "tid" becomes a global of each thread's
-- own state, so the names of the two threads never collide.
local nthreads, n = 0, 0
setup = function(thread) nthreads = nthreads + 1; thread:set("tid", nthreads) end
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"name":"new-%d-%d","status":"starting"}', tid, n))
end
-- non-2xx replies are counted, so a refused create is never a "request/s"
response = function(status) if status ~= 200 then errors = (errors or 0) + 1 end end
EOF
cat >"$T/auth.lua" <<EOF
wrk.headers["Authorization"] = "$SU"
EOF
cat >"$T/user.lua" <<EOF
wrk.headers["Authorization"] = "$USER_TOKEN"
EOF

# run LABEL CONNS SCRIPT PATH [BASELINE]: one wrk run, one line of figures,
# with the ratio to BASELINE req/s when one is given (PocketBase's best
# published figure for that kind of request: 1,180 list req/s, 1,800
# creates/s).
PB_LIST=1180
PB_CREATE=1800
run() {
  local label="$1" conns="$2" script="$3" path="$4" base="${5:-0}" out
  out="$(wrk -t 2 -c "$conns" -d "${SECS}s" --latency -s "$script" "$URL$path")"
  python3 - "$label" "$conns" "$base" <<PY
import re, sys
out = """$out"""
label, conns, base = sys.argv[1], sys.argv[2], float(sys.argv[3])
rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
def pct(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
    if not m: return "?"
    v, u = float(m.group(1)), m.group(2)
    return "%.2f ms" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: (.*)", out)
print("%-40s %9.0f req/s  p50 %9s  p99 %9s  (%s conns)%s%s%s" % (
    label, float(rps), pct(50), pct(99), conns,
    "  %.1fx PocketBase's %.0f" % (float(rps) / base, base) if base else "",
    "  NON-2xx: " + bad.group(1) if bad else "",
    "  socket errors: " + errs.group(1) if errs else ""))
PY
}

echo "records: $total healthchecks; wrk -t 2, ${SECS} s per run"
run "list page 1, perPage=20 (SDK getList)" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?page=1&perPage=20" "$PB_LIST"
run "list page 7, perPage=20 (with total)" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7" "$PB_LIST"
run "list page 7, skipTotal" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7&skipTotal=1" "$PB_LIST"
run "list page 7 as a user (rule)" "$CONNS" "$T/user.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7" "$PB_LIST"
run "list filter+sort perPage=20" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&sort=-name&filter=name%3E'hc-05000'" "$PB_LIST"
run "view by id" "$CONNS" "$T/view.lua" "/"
before="$total"
run "create (durable, group commit)" "$CREATE_CONNS" "$T/create.lua" \
  "/api/collections/healthchecks/records" "$PB_CREATE"
after="$(curl -fsS -m 10 -H "Authorization: $SU" "$URL/api/collections/healthchecks/records?perPage=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])')"
echo "rows created: $((after - before)) (the server's count, not wrk's)"
echo "server VmRSS after the runs: $(awk '/^VmRSS/ {print $2, $3}' /proc/$SRV_PID/status)"
echo "targets: list >= 10,000 req/s; create >= 10,000/s from 64 clients, durable"
