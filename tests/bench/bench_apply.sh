#!/usr/bin/env bash
# bench_apply.sh - apply 10,000 records from manifests into an empty store,
# apply the same set again unchanged, then change one record and apply.
# Prints wall time, records/s and the rows written (revisions consumed).
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
N="${BENCH_RECORDS:-10000}"
T="$(mktemp -d /tmp/pocketctl-bench.XXXXXX)"
trap 'rm -rf "$T"' EXIT
export POCKETCTL_DATA="$T/data"

# N records over four collections, with relations.
"$here/gen_manifest.py" "$N" AiPrompt,AiModel,AiAgent,ToolPermission > "$T/set.yaml"

now() { date +%s%N; }
report() {  # label start end records written target-ms
  local ms=$(( ($3 - $2) / 1000000 ))
  local rps=$(( $4 * 1000 / (ms > 0 ? ms : 1) ))
  local verdict=met
  [ "$ms" -le "$6" ] || verdict=MISSED
  printf '%-28s %6d ms  %8d records/s  rows written: %d  (target <= %d ms: %s)\n' \
    "$1" "$ms" "$rps" "$5" "$6" "$verdict"
}
head_rev() { "$PCTL" apply -f "$T/one.yaml" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])'; }

# A tiny manifest whose apply never writes, to read the head revision.
printf 'apiVersion: pocketcoder.dev/v1\nkind: AiModel\nmetadata: {name: model-0}\nspec: {identifier: provider/model-0}\n' > "$T/one.yaml"

t0=$(now); "$PCTL" apply -f "$T/set.yaml" >/dev/null; t1=$(now)
r1=$(head_rev)
report "first apply ($N records)" "$t0" "$t1" "$N" "$r1" 300

t0=$(now); "$PCTL" apply -f "$T/set.yaml" >/dev/null; t1=$(now)
r2=$(head_rev)
report "unchanged re-apply" "$t0" "$t1" "$N" "$((r2 - r1))" 150

sed -i 's/identifier: provider\/model-7$/identifier: provider\/model-7b/' "$T/set.yaml"
t0=$(now); "$PCTL" apply -f "$T/set.yaml" >/dev/null; t1=$(now)
r3=$(head_rev)
report "one record changed" "$t0" "$t1" "$N" "$((r3 - r2))" 160
echo "targets (issue 21, 10,000 records): first apply <= 300 ms, unchanged re-apply <= 150 ms with 0 rows written, one changed <= 160 ms with 1"

# The same first apply through a running server, whose reconcilers then
# converge: revisions consumed (head before / after, once the engine is
# quiet) and the database's size before and after. A record change should
# cost its own revision and nothing per record afterwards.
. "$here/lib.sh"
cp "$T/set.yaml" "/tmp/pocketctl-bench-set.$$.yaml"
rm -rf "$T"
bench_init apply-serve
mv "/tmp/pocketctl-bench-set.$$.yaml" "$T/set.yaml"
unset POCKETCTL_DATA
bench_serve --max-apply-body 268435456
status_head() { "$PCTL" --data "$T/data" status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])'; }
settle() {  # until the head stays put for a second (the engine is quiet)
  local h p=-1
  "$PCTL" --data "$T/data" reconcile --wait --timeout 120 >/dev/null || true
  for _ in $(seq 1 240); do
    h=$(status_head)
    [ "$h" = "$p" ] && { echo "$h"; return 0; }
    p=$h; sleep 1
  done
  echo "$h"
}
db_size() { stat -c %s "$T/data/pocket.db"; }
wal_size() { stat -c %s "$T/data/pocket.db-wal" 2>/dev/null || echo 0; }
h0=$(settle); d0=$(db_size); w0=$(wal_size)
t0=$(now); "$PCTL" --data "$T/data" apply -f "$T/set.yaml" >/dev/null; t1=$(now)
h1=$(settle); d1=$(db_size); w1=$(wal_size)
printf '%-28s %6d ms  head %d -> %d: %d revisions for %d records (%d beyond one each)\n' \
  "server apply ($N records)" $(( (t1 - t0) / 1000000 )) "$h0" "$h1" $(( h1 - h0 )) "$N" $(( h1 - h0 - N ))
printf '%-28s pocket.db %d -> %d bytes, -wal %d -> %d bytes\n' "database size" "$d0" "$d1" "$w0" "$w1"
echo "target: at most $N + a few per reconciler revisions"
