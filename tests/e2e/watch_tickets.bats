#!/usr/bin/env bats
# Who wrote each change (the watch event's actor) and watch tickets
# (POST /api/v1/watch/tickets, GET /api/v1/watch?ticket=), against a real
# `pocketctl serve`: superusers read actors as written, other users read
# everyone else reduced to a kind; a ticket opens the watch stream of its
# user with that user's rights, works on no other endpoint, expires, dies
# with a password change, and never reaches the server's log.

load helpers
load api

setup() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  command -v jq >/dev/null || skip "jq is needed"
  e2e_setup tickets
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123
              POCKETCTL_HEARTBEAT_MS=200)
  SERVER_CHECK_LOG=1
  PY=python3
  [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
  # events URL COUNT TIMEOUT: "status CODE", then "EVENT COLLECTION NAME
  # ACTOR" per change event (heartbeats skipped); AUTH (default $TOKEN,
  # "none": no header) is the Authorization header.
  cat >"$T/events.py" <<'PYEOF'
import http.client, json, os, socket, sys, time, urllib.parse
url, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
u = urllib.parse.urlsplit(url)
auth = os.environ.get("AUTH") or os.environ.get("TOKEN", "")
hdrs = {} if auth == "none" else {"Authorization": auth}
c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
c.request("GET", u.path + ("?" + u.query if u.query else ""), headers=hdrs)
sock = c.sock
r = c.getresponse()
print("status", r.status, flush=True)
if r.status != 200:
    print(r.read().decode(errors="replace"), flush=True)
    sys.exit(0)
deadline, n, ev = time.time() + timeout, 0, {"data": []}
try:
    while n < count and time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        line = r.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line == "":
            if ev.get("event") in ("create", "update", "delete"):
                d = json.loads("\n".join(ev["data"]))
                print(ev["event"], d["collection"], d["name"],
                      d.get("actor"), flush=True)
                n += 1
            ev = {"data": []}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "data":
                ev["data"].append(v)
            else:
                ev[k] = v
except (socket.timeout, TimeoutError, OSError):
    pass
PYEOF
  declare -gA UID_OF TOK_OF
}

events() {
  "$PY" "$T/events.py" "$@"
}

# ticket TOKEN: POST /api/v1/watch/tickets as TOKEN; sets TICKET.
ticket() {
  api POST /api/v1/watch/tickets "$1"
  [ "$code" = 200 ] || { echo "ticket: $code $body" >&2; return 1; }
  TICKET="$(jq -r .ticket <<<"$body")"
  [ -n "$TICKET" ] && [ "$(jq -r .ttl <<<"$body")" -gt 0 ]
}

start() {
  start_server "$@"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
}

@test "actors: API callers, offline apply and reconcilers are named; others read as their kind" {
  pctl apply -f "$REPO/manifests" >/dev/null
  start
  new_user alice user
  new_user boss admin
  api POST /api/collections/chats/records "${TOK_OF[alice]}" \
    "{\"title\":\"mine\",\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 200 ]
  chat="$(jq -r .id <<<"$body")"
  api PATCH "/api/collections/chats/records/$chat" "$SU" '{"title":"edited"}'
  [ "$code" = 200 ]

  # A superuser reads every actor as written.
  run events "$URL/api/v1/watch?since=0&collection=chats,ai_prompts,users,reconcile_status" 400 3
  [[ "$output" == *"create ai_prompts "*" apply:cli:"* ]]
  [[ "$output" == *"create chats "*" user:${UID_OF[alice]}:alice@example.com"* ]]
  [[ "$output" == *"update chats "*" superuser:admin@example.com"* ]]
  [[ "$output" == *" reconciler/"* ]]

  # alice reads her own identity, a superuser as "superuser".
  AUTH="${TOK_OF[alice]}" run events "$URL/api/v1/watch?since=0&collection=chats" 2 5
  [ "${lines[1]}" = "create chats $chat user:${UID_OF[alice]}:alice@example.com" ] ||
    [[ "${lines[1]}" == "create chats "*" user:${UID_OF[alice]}:alice@example.com" ]]
  [[ "${lines[2]}" == "update chats "*" superuser" ]]

  # boss (an admin user, who may view alice's chat) never learns who she is.
  AUTH="${TOK_OF[boss]}" run events "$URL/api/v1/watch?since=0&collection=chats" 2 5
  [[ "${lines[1]}" == "create chats "*" user" ]]
  [[ "${lines[2]}" == "update chats "*" superuser" ]]
  [[ "$output" != *alice@example.com* ]]
  [[ "$output" != *"${UID_OF[alice]}"* ]] || [[ "$output" == *"chats ${UID_OF[alice]}"* ]]
}

@test "a watch ticket opens the stream of its user, and only that stream" {
  start
  new_user alice user
  new_user bob user
  ticket "${TOK_OF[alice]}"
  [[ "$TICKET" != *"${TOK_OF[alice]}"* ]]
  api POST /api/collections/chats/records "${TOK_OF[alice]}" \
    "{\"title\":\"a\",\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 200 ]
  api POST /api/collections/chats/records "${TOK_OF[bob]}" \
    "{\"title\":\"b\",\"user\":\"${UID_OF[bob]}\"}"
  [ "$code" = 200 ]
  bob_chat="$(jq -r .id <<<"$body")"

  # alice's ticket: her chat, not bob's, no token needed.
  AUTH=none run events "$URL/api/v1/watch?since=0&collection=chats&ticket=$TICKET" 2 3
  [ "${lines[0]}" = "status 200" ]
  [ "${#lines[@]}" -eq 2 ]
  [[ "${lines[1]}" == "create chats "* ]]
  [[ "$output" != *"$bob_chat"* ]]

  # Nowhere else: the records API, the ticket endpoint, as a header.
  api GET "/api/collections/chats/records?ticket=$TICKET"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ] || [ "$code" = 403 ] || [ "$code" = 401 ]
  api GET "/api/collections/users/records/${UID_OF[alice]}?ticket=$TICKET"
  [ "$code" != 200 ]
  api POST "/api/v1/watch/tickets?ticket=$TICKET"
  [ "$code" = 401 ]
  AUTH="$TICKET" run events "$URL/api/v1/watch" 1 2
  [ "${lines[0]}" = "status 401" ]
  # A forged one (another user's id under alice's signature) is refused.
  forged="${TICKET/${UID_OF[alice]}/${UID_OF[bob]}}"
  AUTH=none run events "$URL/api/v1/watch?ticket=$forged" 1 2
  [ "${lines[0]}" = "status 401" ]
  api POST /api/v1/watch/tickets
  [ "$code" = 401 ]

  # The value never reaches the log (the request log prints paths only).
  ! grep -qF "$TICKET" "$T/server.log"
  ! grep -qF "${TICKET##*.}" "$T/server.log"
}

@test "an expired ticket is refused with 401; a password change revokes a ticket" {
  # Expiry is in whole seconds: a 2 s ticket has at least 1 s left.
  start POCKETCTL_WATCH_TICKET_TTL=2
  new_user alice user
  ticket "${TOK_OF[alice]}"
  AUTH=none run events "$URL/api/v1/watch?ticket=$TICKET" 1 0.5
  [ "${lines[0]}" = "status 200" ]
  sleep 2.1
  AUTH=none run events "$URL/api/v1/watch?ticket=$TICKET" 1 2
  [ "${lines[0]}" = "status 401" ]
  [[ "$output" == *expired* ]]

  stop_server
  start
  ticket "${TOK_OF[alice]}"
  AUTH=none run events "$URL/api/v1/watch?ticket=$TICKET" 1 0.5
  [ "${lines[0]}" = "status 200" ]
  api PATCH "/api/collections/users/records/${UID_OF[alice]}" "$SU" \
    '{"password":"alice-new-pass-1","passwordConfirm":"alice-new-pass-1"}'
  [ "$code" = 200 ]
  AUTH=none run events "$URL/api/v1/watch?ticket=$TICKET" 1 2
  [ "${lines[0]}" = "status 401" ]
}
