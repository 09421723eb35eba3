#!/usr/bin/env bash
# bench_http.sh - the records API under wrk (Debian) on loopback, against a
# real `pocketctl serve` over BENCH_RECORDS (10,000) healthchecks records:
#   list   GET .../records?perPage=20 (with the total, then skipTotal=1)
#   list   the same as a plain user (the list rule is evaluated)
#   view   GET .../records/{id}, ids drawn at random from the store
#   mixed  the page-7 list while BENCH_MIXED_WRITERS (8) more connections
#          create records all along, so the store head keeps moving (what
#          the reply cache is worth under change); prints the creates/s
#          and how many list replies came per create
#   create POST .../records from BENCH_CREATE_CONNS (64) connections; every
#          reply comes after its row is durable (group commit, fsync)
# and two anchors measured in the same run on the same machine:
#   floor  GET /api/health with the same connections: the server's own
#          ceiling for a request that does no work; list and view print
#          their ratio to it (target >= 80 %)
#   etcd   Debian's etcd-server on loopback in a temp dir, its v3 JSON
#          gateway (POST /v3/kv/put, base64 key and value) from the same
#          64 connections, every write fsync'd (etcd's default); create
#          prints its ratio to it (target >= 2.5x). BENCH_ETCD=0 skips it.
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

# run LABEL CONNS SCRIPT PATH [BASE NAME]: one wrk run, one line of figures;
# sets RPS. With BASE (req/s) and NAME, the line ends with the ratio to it:
# PocketBase's best published figure for that kind of request (1,180 list
# req/s, 1,800 creates/s), or the floor measured in this run.
PB_LIST=1180
PB_CREATE=1800
RPS=0
run() {
  local label="$1" conns="$2" script="$3" path="$4" base="${5:-0}" name="${6:-}" out line
  out="$(wrk -t 2 -c "$conns" -d "${SECS}s" --latency -s "$script" "$URL$path")"
  line="$(python3 - "$label" "$conns" "$base" "$name" <<PY
import re, sys
out = """$out"""
label, conns, base, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
def pct(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, out, re.M)
    if not m: return "?"
    v, u = float(m.group(1)), m.group(2)
    return "%.2f ms" % (v / 1000 if u == "us" else v * 1000 if u == "s" else v)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: (.*)", out)
ratio = ""
if base and name == "floor":
    ratio = "  %.0f %% of the floor" % (100 * rps / base)
elif base:
    ratio = "  %.1fx %s's %.0f" % (rps / base, name, base)
print("%-40s %9.0f req/s  p50 %9s  p99 %9s  (%s conns)%s%s%s" % (
    label, rps, pct(50), pct(99), conns, ratio,
    "  NON-2xx: " + bad.group(1) if bad else "",
    "  socket errors: " + errs.group(1) if errs else ""))
print("%.0f" % rps)
PY
)"
  echo "${line%$'\n'*}"
  RPS="${line##*$'\n'}"
}

echo "records: $total healthchecks; wrk -t 2, ${SECS} s per run"
run "floor: GET /api/health" "$CONNS" "$T/auth.lua" "/api/health"
FLOOR="$RPS"
run "list page 1, perPage=20 (SDK getList)" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?page=1&perPage=20" "$PB_LIST" PocketBase
run "list page 7, perPage=20 (with total)" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7" "$FLOOR" floor
run "list page 7, skipTotal" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7&skipTotal=1" "$FLOOR" floor
run "list page 7 as a user (rule)" "$CONNS" "$T/user.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7" "$FLOOR" floor
run "list page 7 as a user, skipTotal" "$CONNS" "$T/user.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7&skipTotal=1" "$FLOOR" floor
run "list filter+sort perPage=20" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&sort=-name&filter=name%3E'hc-05000'" "$PB_LIST" PocketBase
run "view by id" "$CONNS" "$T/view.lua" "/" "$FLOOR" floor
sed 's/new-%d-%d/mix-%d-%d/' "$T/create.lua" >"$T/mixed.lua"
wrk -t 1 -c "${BENCH_MIXED_WRITERS:-8}" -d "${SECS}s" -s "$T/mixed.lua" \
  "$URL/api/collections/healthchecks/records" >"$T/mixed.out" &
WRK_W=$!
run "list page 7 while creates run" "$CONNS" "$T/auth.lua" \
  "/api/collections/healthchecks/records?perPage=20&page=7" "$FLOOR" floor
wait "$WRK_W"
python3 - "$RPS" "$T/mixed.out" "${BENCH_MIXED_WRITERS:-8}" <<'PY'
import re, sys
reads, out, conns = float(sys.argv[1]), open(sys.argv[2]).read(), sys.argv[3]
w = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print("  meanwhile creates: %.0f/s from %s conns, one per %.1f list replies%s" % (
    w, conns, reads / w if w else 0, "  NON-2xx: " + bad.group(1) if bad else ""))
PY
before="$(curl -fsS -m 10 -H "Authorization: $SU" "$URL/api/collections/healthchecks/records?perPage=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])')"
run "create (durable, group commit)" "$CREATE_CONNS" "$T/create.lua" \
  "/api/collections/healthchecks/records" "$PB_CREATE" PocketBase
CREATES="$RPS"
after="$(curl -fsS -m 10 -H "Authorization: $SU" "$URL/api/collections/healthchecks/records?perPage=1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])')"
echo "rows created: $((after - before)) (the server's count, not wrk's)"
echo "server VmRSS after the runs: $(awk '/^VmRSS/ {print $2, $3}' /proc/$SRV_PID/status)"

# The anchor for creates: etcd on loopback in $T with its defaults (every
# write fsync'd), started here and stopped after its run, so it never
# shares the machine with the server's runs. Keys are "bench/" + a 3-digit
# thread number + a 9-digit counter: each part is a whole number of 3-byte
# groups, so the key's base64 is the concatenation of its groups' base64,
# from a table Python's base64 module writes (wrk's Lua has no base64).
ETCD_PID=""
etcd_stop() {
  if [ -n "$ETCD_PID" ]; then
    kill -TERM "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=""
  fi
}
trap 'etcd_stop; bench_cleanup' EXIT
if [ "${BENCH_ETCD:-1}" != 0 ] && command -v etcd >/dev/null; then
  read -r EPORT PPORT < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
  EURL="http://127.0.0.1:$EPORT"
  etcd --name bench --data-dir "$T/etcd" \
    --listen-client-urls "$EURL" --advertise-client-urls "$EURL" \
    --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
    --initial-cluster "bench=http://127.0.0.1:$PPORT" --log-level error >"$T/etcd.log" 2>&1 &
  ETCD_PID=$!
  for _ in $(seq 1 200); do
    curl -fsS -m 2 "$EURL/health" 2>/dev/null | grep -q true && break
    kill -0 "$ETCD_PID" 2>/dev/null || { cat "$T/etcd.log" >&2; echo "bench: etcd did not start" >&2; exit 1; }
    sleep 0.05
  done
  python3 - >"$T/etcd.lua" <<'PY'
import base64
b = lambda s: base64.b64encode(s.encode()).decode()
print("local g = {" + ",".join('"%s"' % b("%03d" % i) for i in range(1000)) + "}")
print('local prefix, value = "%s", "%s"' % (b("bench/"), b('{"status":"starting"}')))
PY
  cat >>"$T/etcd.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local nthreads, n = 0, 0
setup = function(thread) nthreads = nthreads + 1; thread:set("tid", nthreads) end
request = function()
  n = n + 1
  local key = prefix .. g[tid % 1000 + 1] .. g[math.floor(n / 1000000) % 1000 + 1] ..
    g[math.floor(n / 1000) % 1000 + 1] .. g[n % 1000 + 1]
  return wrk.format(nil, nil, nil, '{"key":"' .. key .. '","value":"' .. value .. '"}')
end
LUA
  SAVED_URL="$URL"
  URL="$EURL"
  run "etcd put (anchor, fsync'd)" "$CREATE_CONNS" "$T/etcd.lua" "/v3/kv/put"
  ETCD="$RPS"
  URL="$SAVED_URL"
  ekeys="$(curl -fsS -m 10 --data "{\"key\":\"$(printf bench/ | base64)\",\"range_end\":\"$(printf bench0 | base64)\",\"count_only\":true}" \
    "$EURL/v3/kv/range" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))')"
  etcd_stop
  echo "etcd keys written: $ekeys (etcd's count, not wrk's)"
  python3 -c 'import sys; c, e = float(sys.argv[1]), float(sys.argv[2]); print("create / etcd put: %.2fx (%.0f vs %.0f per s; target >= 2.5x)" % (c / e, c, e))' "$CREATES" "$ETCD"
else
  echo "etcd put: skipped (BENCH_ETCD=0, or no etcd: scripts/install-deps.sh bench)"
fi
echo "targets: list and view >= 80 % of the floor; create >= 2.5x etcd from 64 clients, durable"
