#!/usr/bin/env bash
# run.sh - what `make run` does after building: start `pocketctl serve` in
# the foreground with manifests/ applied at start. Ctrl-C stops it cleanly.
#
#   POCKETCTL_DATA    data directory (default ./pocket-data)
#   POCKETCTL_LISTEN  HOST:PORT to listen on (default 127.0.0.1:8090)
#   POCKETCTL_ROOT    where rendered files go (default ./pocket-root)
#   POCKETCTL_ADMIN_EMAIL / POCKETCTL_ADMIN_PASSWORD
#                     create this superuser on first start
#   POCKETCTL_USER_EMAIL / POCKETCTL_USER_PASSWORD
#                     create this app user (role admin) if missing
#   POCKETCTL_AGENT_EMAIL / POCKETCTL_AGENT_PASSWORD
#                     create the agent's user (role agent) if missing
#   (the original's POCKETBASE_ADMIN_* and AGENT_* are read too)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${POCKETCTL_DATA:-./pocket-data}"
listen="${POCKETCTL_LISTEN:-127.0.0.1:8090}"
root="${POCKETCTL_ROOT:-./pocket-root}"
echo "pocketctl: starting the server on http://$listen (data '$data', manifests/ applied at start)"
echo "pocketctl: the local CLI works as is (token in $data/cli.token); Ctrl-C to stop"
user="${POCKETCTL_USER_EMAIL:-${POCKETBASE_ADMIN_EMAIL:-}}"
agent="${POCKETCTL_AGENT_EMAIL:-${AGENT_EMAIL:-}}"
if [ -n "$user" ]; then
  echo "pocketctl: sign in to the app at http://$listen as '$user' (role admin) with the password set beside that e-mail"
else
  echo "pocketctl: no app account is seeded; to have one, run again with"
  echo "             POCKETCTL_USER_EMAIL=you@example.com POCKETCTL_USER_PASSWORD=... make run"
fi
if [ -n "$agent" ]; then
  echo "pocketctl: the agent (interface bridge, OpenCode tools) signs in as '$agent' (role agent)"
else
  echo "pocketctl: no agent account is seeded: set POCKETCTL_AGENT_EMAIL / POCKETCTL_AGENT_PASSWORD for one"
fi
if [ -z "${POCKETCTL_ADMIN_PASSWORD:-}" ]; then
  echo "pocketctl: no superuser password is set; to create a superuser (every record, collection metadata), run again with"
  echo "             POCKETCTL_ADMIN_EMAIL=you@example.com POCKETCTL_ADMIN_PASSWORD=... make run"
fi
echo "pocketctl: an existing account is never changed by these variables (a different password is warned about in the log)"
exec ./pocketctl --data "$data" serve --listen "$listen" --root "$root" --manifests manifests/
