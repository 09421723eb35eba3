#!/usr/bin/env bash
# tests/ui/run.sh [TEST FILE...] - the status page in a real headless
# Chromium (Debian's chromium, driven by puppeteer-core pinned in
# package.json / package-lock.json) against $PCTL serve. Each test file
# starts its own server (lib.mjs). Screenshots go to tests/ui/artifacts/
# (git-ignored). Exit status: the test runner's, or 1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
: "${PCTL:?set PCTL to the pocketctl binary}"
PCTL="$(cd "$(dirname "$PCTL")" && pwd)/$(basename "$PCTL")"
export PCTL
command -v node >/dev/null || { echo "ui: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "ui: npm is not installed" >&2; exit 1; }
export CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
[ -x "$CHROMIUM" ] || { echo "ui: chromium is not installed (scripts/install-deps.sh test)" >&2; exit 1; }

cd "$here"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
mkdir -p artifacts
if [ $# -eq 0 ]; then
  set -- ./*.test.mjs
fi
node --test --test-concurrency=1 --test-reporter=spec "$@"
