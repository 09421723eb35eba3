#!/usr/bin/env bash
# run.sh - what `make run` does after building: apply manifests/ to the data
# directory and show the resulting records. (When `pocketctl serve` lands,
# this starts the server with manifests/ applied instead.)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${POCKETCTL_DATA:-./pocket-data}"
./pocketctl --data "$data" apply -f manifests/
for kind in AiPrompt AiModel AiAgent ToolPermission McpServer Container; do
  echo
  echo "== $kind"
  ./pocketctl --data "$data" get "$kind"
done
