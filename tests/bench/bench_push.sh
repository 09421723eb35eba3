#!/usr/bin/env bash
# bench_push.sh - push delivery under load: USERS users (1,000) with two
# unifiedpush devices each, against a local receiver
# (tests/e2e/push_receiver.py, loopback, allow-listed), one event each
# (POST /api/pocketcoder/push, 8 clients at once). Prints the time to
# queue the events and the time until every delivery (USERS x 2) reached
# the receiver; and the engine's latency for an unrelated record change
# (an llm_keys PATCH until llm.env is renamed into place, measured by
# bench_reconcile.c's http mode, 50 changes 50 ms apart: about the
# length of the storm) before the storm and during it.
# Benchmarks report; they do not pass or fail on timing.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$here/../.." && pwd)"
. "$here/lib.sh"
USERS="${BENCH_PUSH_USERS:-1000}"
ROUNDS="${BENCH_PUSH_ROUNDS:-50}"
bench_init push
RECV_PID=""
trap 'kill "$RECV_PID" 2>/dev/null || true; bench_cleanup' EXIT

bench_reconcile_bin

python3 "$REPO/tests/e2e/push_receiver.py" "$T/rport" "$T/received.jsonl" &
RECV_PID=$!
for _ in $(seq 1 200); do [ -s "$T/rport" ] && break; sleep 0.05; done
RPORT="$(cat "$T/rport")"
: >"$T/received.jsonl"

bench_serve --bcrypt-cost 4 --push-allow 127.0.0.1/32 --push-rate 0
TOKEN="$(cat "$T/data/cli.token")"

# users, devices and the probe's llm key, 8 clients at once
python3 - "$URL" "$TOKEN" "$USERS" "$RPORT" >"$T/ids" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, tok, n, rport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(),
        {"Authorization": tok, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)
def user(i):
    u = post("/api/collections/users/records", {"email": f"u{i}@example.com",
        "password": "password123", "passwordConfirm": "password123", "role": "user"})
    for d in range(2):
        post("/api/collections/devices/records", {"user": u["id"], "name": f"d{d}",
            "push_service": "unifiedpush",
            "push_token": f"http://127.0.0.1:{rport}/ok/{i}/{d}"})
    return u["id"]
with ThreadPoolExecutor(8) as ex:
    ids = list(ex.map(user, range(n)))
k = post("/api/collections/llm_keys/records", {"provider_id": "bench",
    "user": ids[0], "env_vars": {"BENCH": "start"}})
print(k["id"])
for i in ids:
    print(i)
PY
KID="$(head -1 "$T/ids")"
LLM_ENV="$T/root/workspace/.opencode/llm.env"
echo "set-up: $USERS users, $((USERS * 2)) devices"

echo "engine latency of an unrelated change, idle (llm_keys PATCH -> llm.env renamed):"
"$B" http "$URL" "$TOKEN" "$KID" "$LLM_ENV" "$ROUNDS" | sed -n '1p'

"$B" http "$URL" "$TOKEN" "$KID" "$LLM_ENV" "$ROUNDS" >"$T/during" 2>&1 &
PROBE=$!
python3 - "$URL" "$TOKEN" "$T/ids" "$T/received.jsonl" "$((USERS * 2))" <<'PY'
import json, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, tok, ids_file, log, want = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ids = open(ids_file).read().split()[1:]
def push(i):
    body = {"user_id": i, "type": "task_complete", "title": "Task Complete",
            "message": "Your coding task has finished", "chat": ""}
    req = urllib.request.Request(url + "/api/pocketcoder/push", json.dumps(body).encode(),
        {"Authorization": tok, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
t0 = time.monotonic()
with ThreadPoolExecutor(8) as ex:
    list(ex.map(push, ids))
t1 = time.monotonic()
n = 0
while time.monotonic() - t0 < 300:
    with open(log) as f:
        n = sum(1 for _ in f)
    if n >= want:
        break
    time.sleep(0.02)
t2 = time.monotonic()
print(f"{len(ids)} events queued (POST /api/pocketcoder/push, 8 clients): {(t1 - t0) * 1000:.0f} ms "
      f"({len(ids) / (t1 - t0):.0f}/s)")
print(f"all {want} deliveries received: {(t2 - t0) * 1000:.0f} ms after the first event "
      f"({n / (t2 - t0):.0f} deliveries/s){'' if n >= want else f'; only {n} arrived'}")
PY
wait "$PROBE" || true
echo "engine latency of an unrelated change, during the deliveries:"
sed -n '1p' "$T/during"
curl -fsS -H "Authorization: $TOKEN" "$URL/api/v1/status" |
  python3 -c 'import json,sys; s=json.load(sys.stdin); print("push status:", json.dumps(next(r for r in s["reconcilers"] if r["name"]=="push").get("deliveries")))'
echo "targets: the unrelated change's latency must not grow with deliveries in flight"
