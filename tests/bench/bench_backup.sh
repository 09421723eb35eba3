#!/usr/bin/env bash
# bench_backup.sh - back up and restore a store of 100,000 records (made
# with apply from a generated manifest, as bench_apply.sh does): the time
# of an offline `pocketctl backup`, of a backup through a running server
# (POST /api/v1/backups) while nothing else runs, and of `pocketctl
# restore` of that file. Prints wall times, the file size and MB/s.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
N="${BENCH_RECORDS:-100000}"
bench_init backup
export POCKETCTL_DATA="$T/data"

"$here/gen_manifest.py" "$N" AiPrompt,AiModel > "$T/set.yaml"

now() { date +%s%N; }
report() {  # label start end bytes
  local ms=$(( ($3 - $2) / 1000000 ))
  [ "$ms" -gt 0 ] || ms=1
  awk -v l="$1" -v ms="$ms" -v b="$4" 'BEGIN {
    printf "%-34s %6d ms  %7.1f MB  %7.1f MB/s\n", l, ms, b / 1048576, b / 1048576 / (ms / 1000) }'
}

t0=$(now); "$PCTL" apply -f "$T/set.yaml" >/dev/null; t1=$(now)
printf '%-34s %6d ms\n' "apply ($N records)" $(( (t1 - t0) / 1000000 ))

t0=$(now); "$PCTL" backup --to "$T/offline.db" >/dev/null; t1=$(now)
report "offline backup ($N records)" "$t0" "$t1" "$(stat -c %s "$T/offline.db")"

bench_serve
t0=$(now); "$PCTL" backup --to "$T/online.db" >/dev/null; t1=$(now)
report "backup through the server" "$t0" "$t1" "$(stat -c %s "$T/online.db")"
kill -TERM "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=""

t0=$(now); "$PCTL" restore "$T/online.db" >/dev/null; t1=$(now)
report "restore ($N records)" "$t0" "$t1" "$(stat -c %s "$T/online.db")"
"$PCTL" get aimodel "model-$((N / 2 - 1))" >/dev/null
echo "targets: none set; a backup blocks no writer, a restore needs the server stopped"
