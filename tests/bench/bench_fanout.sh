#!/usr/bin/env bash
# bench_fanout.sh - SSE fan-out: a real `pocketctl serve` on loopback with
# BENCH_WATCHERS (1,000) clients on /api/v1/watch?collection=C, then
# BENCH_WRITES (20) creates in C (BENCH_FANOUT_COLLECTION, healthchecks by
# default). Prints the time from each write to its HTTP reply and to its
# delivery on the first and on the last watcher (p50/p99/max), the server's
# CPU per write, its VmRSS with every watcher open, and its wake-ups per
# second while they sit idle. The client is tests/bench/bench_fanout.c (one
# epoll loop), built here; `make bench` may pass a built one as
# $BENCH_FANOUT. BENCH_FANOUT_AS_USER=1 makes the watchers a plain user.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
WATCHERS="${BENCH_WATCHERS:-1000}"
WRITES="${BENCH_WRITES:-20}"
# healthchecks: no reconciler reacts, so each write is one change;
# ai_prompts: reconcilers report status on each, three changes per write.
COLLECTION="${BENCH_FANOUT_COLLECTION:-healthchecks}"
. "$here/lib.sh"
bench_init fanout

# A socket per watcher here and one per stream in the server.
want=$((WATCHERS * 2 + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

B="${BENCH_FANOUT:-}"
if [ -z "$B" ]; then
  cc -std=c11 -O2 -pthread -o "$T/bench-fanout" "$here/bench_fanout.c"
  B="$T/bench-fanout"
fi

# Every watcher comes from 127.0.0.1: no cap per client address.
bench_serve --max-streams "$((WATCHERS + 24))" --max-conns-per-ip 0
port="$PORT"
echo "server VmRSS idle, no watchers: $(awk '/^VmRSS/ {print $2, $3}' /proc/$SRV_PID/status)"

# BENCH_FANOUT_AS_USER=1: the watchers are a plain user, so the
# collection's view rule is evaluated for every event and watcher.
wtok="$T/data/cli.token"
if [ -n "${BENCH_FANOUT_AS_USER:-}" ]; then
  SU="$(cat "$T/data/cli.token")"
  curl -fsS -m 10 -H "Authorization: $SU" -H 'Content-Type: application/json' \
    --data '{"email":"fan@example.com","password":"fan-pass-1234","passwordConfirm":"fan-pass-1234","role":"user"}' \
    "$URL/api/collections/users/records" >/dev/null
  curl -fsS -m 10 -H 'Content-Type: application/json' \
    --data '{"identity":"fan@example.com","password":"fan-pass-1234"}' \
    "$URL/api/collections/users/auth-with-password" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$T/user.token"
  wtok="$T/user.token"
  echo "watchers: a plain user (the view rule is evaluated per event and watcher)"
fi
IDLE_S="${BENCH_IDLE_S:-20}"  # longer than a heartbeat interval
"$B" "$port" "$T/data/cli.token" "$SRV_PID" "$WATCHERS" "$WRITES" "$((IDLE_S + 2))" \
  "$COLLECTION" "$wtok" >"$T/client.out" &
CLIENT=$!
# Once the writes are done the client keeps its watchers open and idle:
# count the server's wake-ups meanwhile (voluntary context switches of all
# its threads).
ctx() { cat /proc/"$SRV_PID"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
for _ in $(seq 1 1200); do
  grep -q '^idle$' "$T/client.out" && break
  kill -0 "$CLIENT" 2>/dev/null || break
  sleep 0.1
done
if grep -q '^idle$' "$T/client.out"; then
  c0=$(ctx); sleep "$IDLE_S"; c1=$(ctx)
fi
wait "$CLIENT" || { cat "$T/client.out"; echo "bench_fanout: the client failed" >&2; exit 1; }
grep -v '^idle$' "$T/client.out"
[ -n "${c0:-}" ] && echo "server wake-ups with $WATCHERS idle watchers: $(awk -v d="$((c1 - c0))" -v s="$IDLE_S" 'BEGIN { printf "%.2f", d / s }')/s over $IDLE_S s (heartbeat every 15 to 20 s)"
echo "targets (issue 21): 1,000 watchers: last p99 <= 10 ms, CPU <= 5 ms per write; 10,000: last p99 <= 100 ms, VmRSS <= 64 MiB; <= 1 wake-up/s idle"
