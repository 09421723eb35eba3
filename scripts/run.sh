#!/usr/bin/env bash
# run.sh - what `make run` does after building: start `pocketctl serve` in
# the foreground with manifests/ applied at start. Ctrl-C stops it cleanly.
#
#   POCKETCTL_DATA    data directory (default ./pocket-data)
#   POCKETCTL_LISTEN  HOST:PORT to listen on (default 127.0.0.1:8090)
#   POCKETCTL_ROOT    where rendered files go (default ./pocket-root)
#   POCKETCTL_ADMIN_EMAIL / POCKETCTL_ADMIN_PASSWORD
#                     create this superuser on first start
set -euo pipefail
cd "$(dirname "$0")/.."
data="${POCKETCTL_DATA:-./pocket-data}"
listen="${POCKETCTL_LISTEN:-127.0.0.1:8090}"
root="${POCKETCTL_ROOT:-./pocket-root}"
echo "pocketctl: starting the server on http://$listen (data '$data', manifests/ applied at start)"
echo "pocketctl: the local CLI works as is (token in $data/cli.token); Ctrl-C to stop"
exec ./pocketctl --data "$data" serve --listen "$listen" --root "$root" --manifests manifests/
