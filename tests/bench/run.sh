#!/usr/bin/env bash
# run.sh - `make bench`: runs every benchmark in tests/bench/ and prints
# figures. Benchmarks report; they do not pass or fail on timing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${PCTL:?set PCTL to the pocketctl binary}"
for b in "$here"/bench_*.sh; do
  echo "## $(basename "$b" .sh)"
  "$b"
  echo
done
for w in 100 10000; do
  echo "## bench_fanout, $w watchers"
  BENCH_WATCHERS="$w" "$here/bench_fanout.sh"
  echo
done
echo "## bench_fanout, watchers as a plain user"
BENCH_FANOUT_AS_USER=1 "$here/bench_fanout.sh"
echo
