#!/usr/bin/env bash
# bench_ui.sh - the status page in headless Chromium (tests/ui/bench.mjs):
# first contentful paint and bytes transferred on loopback, and the delay
# from API writes to the DOM with 1,000 records changing in a burst
# (BENCH_UI_BURST), with the longest frame gap meanwhile.
set -euo pipefail
: "${PCTL:?set PCTL to the pocketctl binary}"
here="$(cd "$(dirname "$0")" && pwd)"
PCTL="$(cd "$(dirname "$PCTL")" && pwd)/$(basename "$PCTL")"
export PCTL
export CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
[ -x "$CHROMIUM" ] || { echo "bench_ui: chromium is not installed" >&2; exit 1; }
cd "$here/../ui"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
node bench.mjs
