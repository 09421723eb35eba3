#!/usr/bin/env bash
# bench_startup.sh - start-up (issue 21): from exec to /readyz answering
# 200, with 100,000 records and ~1,000 rendered files already in place.
# The store is loaded offline (`pocketctl apply`): AGENTS ai_agents (each
# renders workspace/.opencode/agents/<name>.md, with the prompt and model
# it names) plus healthcheck/llm_provider filler up to RECORDS. `serve`
# runs once so every file is rendered, stops; then RUNS restarts are
# timed exec -> /readyz 200 (curl polled in a tight loop), waiting after
# each for the engine's first full pass, and every rendered file is
# compared (inode, mtime, size) with the state before that restart. The
# server's own count of writes (pocketctl_reconcile_writes_total) is read
# from /metrics too. Prints ms p50/max and the files rewritten.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
RECORDS="${BENCH_STARTUP_RECORDS:-100000}"
AGENTS="${BENCH_STARTUP_AGENTS:-1000}"
RUNS="${BENCH_STARTUP_RUNS:-10}"
bench_init startup
D="$T/data"
R="$T/root"

python3 - "$RECORDS" "$AGENTS" >"$T/store.yaml" <<'PY'
import sys
n, agents = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(agents):
    out.append("apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\n"
               f"metadata: {{name: prompt-{i}}}\nspec: {{body: \"prompt body {i}\"}}")
    out.append("apiVersion: pocketcoder.dev/v1\nkind: AiModel\n"
               f"metadata: {{name: model-{i}}}\nspec: {{identifier: provider/model-{i}}}")
    out.append("apiVersion: pocketcoder.dev/v1\nkind: AiAgent\n"
               f"metadata: {{name: agent-{i}}}\nspec: {{description: \"agent {i}\", "
               f"mode: subagent, prompt: prompt-{i}, model: model-{i}}}")
for i in range(max(0, n - 3 * agents)):
    if i % 2:
        out.append("apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\n"
                   f"metadata: {{name: hc-{i}}}\nspec: {{status: ready}}")
    else:
        out.append("apiVersion: pocketcoder.dev/v1\nkind: LlmProvider\n"
                   f"metadata: {{name: prov-{i}}}\n"
                   f"spec: {{provider_id: prov-{i}, name: Provider {i}}}")
print("\n---\n".join(out))
PY
t0=$(date +%s%N)
"$PCTL" --data "$D" apply -f "$T/store.yaml" >/dev/null
t1=$(date +%s%N)
echo "store: $RECORDS records ($AGENTS agents) loaded offline in $(( (t1 - t0) / 1000000 )) ms"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"

# start: exec serve, poll /readyz; MS = the ms from exec to the first 200.
start() {
  local t0 t1
  t0=$(date +%s%N)
  "$PCTL" --data "$D" serve --listen "127.0.0.1:$PORT" --root "$R" \
    >>"$T/server.log" 2>&1 &
  SRV_PID=$!
  until curl -fs -m 1 -o /dev/null "$URL/readyz" 2>/dev/null; do
    kill -0 "$SRV_PID" 2>/dev/null || { cat "$T/server.log" >&2; exit 1; }
  done
  t1=$(date +%s%N)
  MS=$(( (t1 - t0) / 1000000 ))
}

# full_pass: wait until the engine has finished a full pass.
full_pass() {
  local i
  for i in $(seq 1 600); do
    curl -fs -m 2 "$URL/metrics" 2>/dev/null |
      grep -Eq '^pocketctl_engine_full_passes_total [1-9]' && return 0
    sleep 0.05
  done
  echo "bench: no full pass within 30 s" >&2; exit 1
}

stop() {
  kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""
}

snapshot() { find "$R" -type f -printf '%i %T@ %s %p\n' | sort -k4; }

start
full_pass
stop
files=$(find "$R" -type f | wc -l)
echo "rendered: $files files under the root after the first serve"

ms=()
rew_max=0
srv_max=0
for _ in $(seq 1 "$RUNS"); do
  snapshot >"$T/before"
  start
  ms+=("$MS")
  full_pass
  w=$(curl -fs "$URL/metrics" | awk '/^pocketctl_reconcile_writes_total/ {s += $2} END {print s + 0}')
  stop
  snapshot >"$T/after"
  r=$( (diff "$T/before" "$T/after" || true) | grep -c '^>' || true)
  [ "$r" -gt "$rew_max" ] && rew_max=$r
  [ "$w" -gt "$srv_max" ] && srv_max=$w
done
sorted=$(printf '%s\n' "${ms[@]}" | sort -n)
p50=$(echo "$sorted" | awk -v n="${#ms[@]}" 'NR == int((n + 1) / 2)')
max=$(echo "$sorted" | tail -1)
echo "exec -> /readyz 200 over $RUNS restarts: p50 ${p50} ms, max ${max} ms (all: $(echo $sorted))"
echo "files rewritten per restart: at most $rew_max by inode/mtime/size; server's writes_total at most $srv_max"
echo "target: <= 1000 ms, 0 files rewritten"
