#!/usr/bin/env bash
# bench_reconcile.sh - the reconcile engine: time from a committed record
# change to the new llm.env renamed into place (p50/p99), with 1,000 and
# with 100,000 records in the store (loaded offline with `pocketctl apply`
# first), in-process (commit -> rename, exact) and through a running server
# (HTTP request start -> rename); then an idle server: engine wake-ups,
# whole-process wake-ups (voluntary context switches from
# /proc/PID/task/*/status) and files written during IDLE_S seconds.
#
# The filler records are healthchecks and llm_providers, which no file
# reconciler reads: per-change cost must depend on the change, not on the
# store's size. Then a tool-permission change -> opencode.json renamed
# (in-process, p50/p99) over the default manifests plus PROMPT_SIZES (10
# and 10,000) ai_prompts rows no agent names: opencode-json reads only the
# prompts its agents name, so both should be alike. The timing helper is
# tests/bench/bench_reconcile.c; `make bench` passes it as $BENCH_RECONCILE,
# otherwise lib.sh's bench_reconcile_bin builds it from the release objects
# in build/rel.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$here/../.." && pwd)"
. "$here/lib.sh"
SIZES="${BENCH_SIZES:-1000 100000}"
PROMPT_SIZES="${BENCH_PROMPT_SIZES:-10 10000}"
ROUNDS="${BENCH_ROUNDS:-300}"
IDLE_S="${BENCH_IDLE_S:-10}"
T="$(mktemp -d /tmp/pocketctl-bench-reconcile.XXXXXX)"
SRV_PID=""
cleanup() {
  [ -n "$SRV_PID" ] && kill -TERM "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

bench_reconcile_bin

# N filler records as manifests, half Healthcheck, half LlmProvider.
filler() {
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
out = []
for i in range(n):
    if i % 2:
        out.append("apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\n"
                   f"metadata: {{name: hc-{i}}}\nspec: {{status: ready}}")
    else:
        out.append("apiVersion: pocketcoder.dev/v1\nkind: LlmProvider\n"
                   f"metadata: {{name: prov-{i}}}\n"
                   f"spec: {{provider_id: prov-{i}, name: Provider {i}}}")
print("\n---\n".join(out))
PY
}

start_server() {  # start_server DATA ROOT
  rm -f "$1/server.json"
  "$PCTL" --data "$1" serve --listen 127.0.0.1:0 --root "$2" --bcrypt-cost 4 \
    >"$T/server.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 600); do
    if [ -s "$1/server.json" ]; then
      URL="$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' "$1/server.json")"
      curl -fsS -m 2 "$URL/healthz" >/dev/null 2>&1 && break
    fi
    sleep 0.05
  done
  TOKEN="$(cat "$1/cli.token")"
}

api() {  # api METHOD PATH JSON -> stdout
  curl -fsS -m 30 -X "$1" -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$3" "$URL$2"
}

ctxsw() {  # ctxsw PID [THREAD-NAME]: voluntary context switches
  local pid="$1" name="${2:-}" t sum=0 v
  for t in /proc/"$pid"/task/*; do
    if [ -z "$name" ] || [ "$(cat "$t/comm" 2>/dev/null)" = "$name" ]; then
      v="$(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "$t/status" 2>/dev/null || echo 0)"
      sum=$((sum + ${v:-0}))
    fi
  done
  echo "$sum"
}

for n in $SIZES; do
  D="$T/data-$n"
  filler "$n" >"$T/filler.yaml"
  t0=$(date +%s%N)
  "$PCTL" --data "$D" apply -f "$T/filler.yaml" >/dev/null
  t1=$(date +%s%N)
  echo "store: $n filler records loaded offline in $(( (t1 - t0) / 1000000 )) ms"
  echo "in-process engine, root on this disk (fs_write_atomic: fsync, rename, fsync dir):"
  "$B" inproc "$D" "$T/root-inproc-$n" "$ROUNDS" 2>/dev/null
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    echo "in-process engine, root on tmpfs (no fsync cost: the engine's own overhead):"
    shm="$(mktemp -d /dev/shm/pocketctl-bench.XXXXXX)"
    "$B" inproc "$D" "$shm" "$ROUNDS" 2>/dev/null || true
    rm -rf "$shm"
  fi
  echo "through pocketctl serve (HTTP PATCH, group commit, engine):"

  start_server "$D" "$T/root-$n"
  uid="$(api POST /api/collections/users/records \
    '{"email":"b@example.com","password":"password123","passwordConfirm":"password123"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  kid="$(api POST /api/collections/llm_keys/records \
    "{\"provider_id\":\"bench\",\"user\":\"$uid\",\"env_vars\":{\"BENCH\":\"start\"}}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
  "$B" http "$URL" "$TOKEN" "$kid" "$T/root-$n/workspace/.opencode/llm.env" "$ROUNDS"

  if [ "$n" = "${SIZES##* }" ]; then
    sleep 1
    touch "$T/mark"
    e0=$(ctxsw "$SRV_PID" pctl-engine)
    p0=$(ctxsw "$SRV_PID")
    sleep "$IDLE_S"
    e1=$(ctxsw "$SRV_PID" pctl-engine)
    p1=$(ctxsw "$SRV_PID")
    written=$(find "$D" "$T/root-$n" -type f -newer "$T/mark" | wc -l)
    echo "idle ${IDLE_S} s: engine thread woke $((e1 - e0)) times; whole process $((p1 - p0)) voluntary switches ($(awk "BEGIN {printf \"%.1f\", ($p1 - $p0) / $IDLE_S}")/s over $(ls /proc/"$SRV_PID"/task | wc -l) threads); files modified: $written"
  fi
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
done
# N ai_prompts no agent names, as manifests.
prompts() {
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
print("\n---\n".join("apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\n"
                   f"metadata: {{name: unrelated-{i}}}\n"
                   f"spec: {{body: Unrelated prompt number {i} that no agent names.}}"
                   for i in range(n)))
PY
}

for n in $PROMPT_SIZES; do
  D="$T/data-prompts-$n"
  prompts "$n" >"$T/prompts.yaml"
  "$PCTL" --data "$D" apply -f "$REPO/manifests" -f "$T/prompts.yaml" >/dev/null
  echo "store: the default manifests and $n ai_prompts no agent names:"
  "$B" toolperm "$D" "$T/root-prompts-$n" "$ROUNDS" 2>/dev/null
done
echo "target: tool permission -> opencode.json p99 alike with ${PROMPT_SIZES// / and } unrelated prompts"
echo "targets: commit -> rename p99 <= 10 ms; 100k/1k per-change ratio <= 2x; idle: no disk writes, <= 1 engine wake-up/s"
