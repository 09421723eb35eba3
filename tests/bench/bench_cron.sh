#!/usr/bin/env bash
# bench_cron.sh - the scheduler with 10,000 enabled cron jobs (applied as
# manifests through the server):
#   - idle: none due for a year; the engine thread's CPU time over an idle
#     minute (/proc/PID/task/TID/stat of pctl-engine) and the scheduler's
#     passes (wake-ups) in that minute, from its status;
#   - a burst: 1,000 of them changed to fire in the same minute; the delay
#     from the minute's start to each message's created time (p50, p99,
#     max), and until a client polling the records API sees all 1,000.
# BENCH_CRON_JOBS, BENCH_CRON_DUE, BENCH_CRON_IDLE_S change the sizes.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
N="${BENCH_CRON_JOBS:-10000}"
DUE="${BENCH_CRON_DUE:-1000}"
IDLE_S="${BENCH_CRON_IDLE_S:-60}"
bench_init cron
export POCKETCTL_DATA="$T/data"
export POCKETCTL_ADMIN_EMAIL=bench@example.com POCKETCTL_ADMIN_PASSWORD=bench-pass-123
bench_serve --bcrypt-cost 4
TOKEN="$(cat "$T/data/cli.token")"
su() { curl -fsS -m 60 -X "$1" -H "Authorization: $TOKEN" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$URL$2"; }
uid="$(su POST /api/collections/users/records \
  '{"email":"u@example.com","password":"user-pass-123","passwordConfirm":"user-pass-123","role":"user"}' | jq -r .id)"

# jobs.py N DUE UID MINUTE: N jobs, the first DUE at MINUTE (or yearly)
cat >"$T/jobs.py" <<'PY'
import sys
n, due, uid, minute = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
docs = []
for i in range(n):
    expr = f"{minute} * * * *" if i < due and minute != "-" else "0 0 1 1 *"
    docs.append("apiVersion: pocketcoder.dev/v1\nkind: CronJob\n"
                f"metadata: {{name: job-{i}}}\n"
                f"spec: {{name: job-{i}, cron_expression: '{expr}', prompt: 'task {i}', "
                f"session_mode: new, user: {uid}}}")
print("\n---\n".join(docs))
PY
python3 "$T/jobs.py" "$N" "$DUE" "$uid" - >"$T/idle.yaml"
t0=$(date +%s%N)
"$PCTL" apply -f "$T/idle.yaml" >/dev/null
printf '%-44s %8d ms\n' "apply $N enabled jobs" $(( ($(date +%s%N) - t0) / 1000000 ))

engine_tid() {
  local t
  for t in /proc/"$SRV_PID"/task/*; do
    [ "$(cat "$t/comm")" = pctl-engine ] && { basename "$t"; return; }
  done
}
# utime + stime of the engine thread, in clock ticks
engine_ticks() { awk '{print $14 + $15}' "/proc/$SRV_PID/task/$TID/stat"; }
passes() {
  su GET /api/v1/status | jq '.reconcilers[] | select(.name == "cron") | .passes'
}
TID="$(engine_tid)"
HZ="$(getconf CLK_TCK)"
# until the passes the apply caused are over: no new pass for 5 s
p0="$(passes)"
for _ in $(seq 1 60); do
  sleep 5
  p1="$(passes)"
  [ "$p1" = "$p0" ] && break
  p0="$p1"
done
c0="$(engine_ticks)"
sleep "$IDLE_S"
p1="$(passes)"; c1="$(engine_ticks)"
printf '%-44s %8.1f ms\n' "engine CPU in an idle ${IDLE_S}s ($N jobs)" \
  "$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { print t * 1000 / hz }')"
printf '%-44s %8d\n' "scheduler wake-ups in that time" $(( p1 - p0 ))

# The burst: DUE jobs at the minute after next (at least 60 s away).
now=$(date +%s)
slot=$(( (now / 60 + 2) * 60 ))
minute=$(date -u -d "@$slot" +%-M)
python3 "$T/jobs.py" "$N" "$DUE" "$uid" "$minute" >"$T/due.yaml"
"$PCTL" apply -f "$T/due.yaml" >/dev/null
c0="$(engine_ticks)"
while [ "$(date +%s)" -lt "$slot" ]; do sleep 0.2; done
seen=""
for _ in $(seq 1 1200); do
  got="$(su GET '/api/collections/messages/records?perPage=1' | jq .totalItems)"
  if [ "$got" -ge "$DUE" ]; then seen=$(date +%s%N); break; fi
  sleep 0.05
done
c1="$(engine_ticks)"
[ -n "$seen" ] || { echo "bench: only $got of $DUE messages" >&2; exit 1; }
printf '%-44s %8d ms\n' "all $DUE visible to a client, after the minute" \
  $(( seen / 1000000 - slot * 1000 ))
"$PCTL" get Message -o record >"$T/messages.json"
jq -r --argjson slot "$slot" '[.[] | .created | sub("\\.(?<ms>[0-9]+)Z$"; "Z \(.ms)")
  | split(" ") | ((.[0] + "T" + .[1] | fromdateiso8601) * 1000 + (.[2] | tonumber)) - $slot * 1000]
  | sort | "\(length) \(.[(length * 0.5 | floor)]) \(.[(length * 0.99 | ceil) - 1]) \(.[-1])"' \
  "$T/messages.json" >"$T/delays"
read -r n p50 p99 max <"$T/delays"
printf '%-44s %8s\n' "messages created in the minute" "$n"
printf '%-44s %8d ms\n' "delay after the minute: p50" "$p50"
printf '%-44s %8d ms\n' "delay after the minute: p99" "$p99"
printf '%-44s %8d ms\n' "delay after the minute: max" "$max"
printf '%-44s %8.1f ms\n' "engine CPU for the burst" \
  "$(awk -v t=$(( c1 - c0 )) -v hz="$HZ" 'BEGIN { print t * 1000 / hz }')"
echo "targets: no wake-up while nothing is due; every due job within its minute"
