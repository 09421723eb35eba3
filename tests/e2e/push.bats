#!/usr/bin/env bats
# Push notifications end to end: the real server, its outbox and push
# reconciler, against a real HTTP receiver on loopback
# (push_receiver.py, which records every request and answers 200, 500,
# 410 or never by path). Each test has its own data directory, server and
# receiver.

load helpers
load api

setup() {
  e2e_setup push
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
  RLOG="$T/received.jsonl"
  : >"$RLOG"
  python3 "$BATS_TEST_DIRNAME/push_receiver.py" "$T/rport" "$RLOG" &
  RECV_PID=$!
  wait_for 10 test -s "$T/rport"
  RPORT="$(cat "$T/rport")"
  RURL="http://127.0.0.1:$RPORT"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123
              POCKETCTL_PUSH_BACKOFF_MS=200 POCKETCTL_PUSH_TIMEOUT_MS=3000
              POCKETCTL_PUSH_ATTEMPTS=4)
  SERVER_CHECK_LOG=1
  declare -gA UID_OF TOK_OF
}

teardown() {
  stop_server
  [ -n "${RECV_PID:-}" ] && kill "$RECV_PID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$T"
}

# serve [serve options...]: the server, a superuser token $SU, a user
# alice, the agent poco and alice's chat $CHAT.
serve() {
  start_server -- "$@"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  new_user alice user
  new_user poco agent
  ALICE="${UID_OF[alice]}"
  api POST /api/collections/chats/records "$SU" "{\"title\":\"t\",\"user\":\"$ALICE\"}"
  [ "$code" = 200 ]
  CHAT="$(jq -r .id <<<"$body")"
}

# device NAME SERVICE TOKEN: a device of alice; sets DEV.
device() {
  api POST /api/collections/devices/records "${TOK_OF[alice]}" \
    "{\"user\":\"$ALICE\",\"name\":\"$1\",\"push_service\":\"$2\",\"push_token\":\"$3\"}"
  [ "$code" = 200 ] || { echo "device: $code $body" >&2; return 1; }
  DEV="$(jq -r .id <<<"$body")"
}

# permission: a draft permission in alice's chat, asked by the agent;
# sets PERM.
permission() {
  api POST /api/pocketcoder/permission "${TOK_OF[poco]}" \
    "{\"permission\":\"bash\",\"patterns\":[\"make\"],\"chat_id\":\"$CHAT\",\"session_id\":\"s1\",\"opencode_id\":\"op-$RANDOM\",\"message\":\"run make\"}"
  [ "$code" = 200 ] || { echo "permission: $code $body" >&2; return 1; }
  PERM="$(jq -r .id <<<"$body")"
  [ "$(jq -r .status <<<"$body")" = draft ]
}

# received PATH: how many requests the receiver got for PATH.
received() { jq -r --arg p "$1" 'select(.path == $p) | .path' "$RLOG" | wc -l; }
got() { [ "$(received "$1")" -ge "${2:-1}" ]; }

# note_state KEY: the state of notification KEY.
note_state() {
  pctl get Notification "$1" -o record | jq -r '.status.state // "none"'
}
settled() { local s; s="$(note_state "$1")"; [ "$s" != none ] && [ "$s" != delivering ]; }

@test "a draft permission pushes exactly once, with the JSON body and the ntfy headers" {
  serve --push-allow 127.0.0.1/32
  device phone unifiedpush "$RURL/ok/alice"
  permission
  wait_for 10 got /ok/alice
  wait_for 10 settled "permission:$PERM"
  [ "$(note_state "permission:$PERM")" = sent ]
  # the table lists it with its outcome
  pctl get Notification | head -1 | grep -q "STATE$"
  pctl get Notification | grep "^permission:$PERM " | grep -q " sent$"
  line="$(jq -c 'select(.path == "/ok/alice")' "$RLOG")"
  [ "$(jq -r '.body | fromjson | .type' <<<"$line")" = permission ]
  [ "$(jq -r '.body | fromjson | .message' <<<"$line")" = "run make" ]
  [ "$(jq -r '.body | fromjson | .chat' <<<"$line")" = "$CHAT" ]
  [ "$(jq -r '.body | fromjson | .click' <<<"$line")" = "pocketcoder://chat/$CHAT" ]
  [ "$(jq -r '.body | fromjson | .title' <<<"$line")" = "Permission requested" ]
  [ "$(jq -r '.headers.Title' <<<"$line")" = "Permission requested" ]
  [ "$(jq -r '.headers.Click' <<<"$line")" = "pocketcoder://chat/$CHAT" ]
  [ "$(jq -r '.headers.Priority' <<<"$line")" = high ]
  [ "$(jq -r '.headers.Tags' <<<"$line")" = permission ]
  [ "$(jq -r '.headers["Content-Type"]' <<<"$line")" = application/json ]
  # a second save of the same draft: no second push
  api PATCH "/api/collections/permissions/records/$PERM" "$SU" '{"message":"run make again"}'
  [ "$code" = 200 ]
  api PATCH "/api/collections/permissions/records/$PERM" "$SU" '{"metadata":{"x":1}}'
  [ "$code" = 200 ]
  sleep 1
  [ "$(received /ok/alice)" = 1 ]
  [ "$(pctl get Notification -o record | jq length)" = 1 ]
  # the reconciler's status counts it
  su_api GET /api/v1/status
  [ "$(jq -r '.reconcilers[] | select(.name == "push") | .deliveries.sent' <<<"$BODY")" = 1 ]
}

@test "a user with an open realtime connection gets no push while connected; one after" {
  serve --push-allow 127.0.0.1/32
  device phone unifiedpush "$RURL/ok/present"
  curl -sN -m 30 "$URL/api/realtime" >"$T/sse" 2>/dev/null &
  SSE=$!
  wait_for 10 grep -q clientId "$T/sse"
  cid="$(sed -n 's/^data:{"clientId":"\([^"]*\)"}/\1/p' "$T/sse" | head -1)"
  api POST /api/realtime "${TOK_OF[alice]}" "{\"clientId\":\"$cid\",\"subscriptions\":[\"chats\"]}"
  [ "$code" = 204 ]
  permission
  wait_for 10 settled "permission:$PERM"
  [ "$(note_state "permission:$PERM")" = suppressed ]
  pctl get Notification "permission:$PERM" -o record | jq -r .status.reason | grep -q presence
  [ "$(received /ok/present)" = 0 ]
  kill "$SSE"; wait "$SSE" 2>/dev/null || true
  # gone: the next one is pushed (the server sees the hang-up)
  for i in $(seq 1 50); do
    permission
    wait_for 10 settled "permission:$PERM"
    [ "$(note_state "permission:$PERM")" = sent ] && break
    sleep 0.2
  done
  [ "$(note_state "permission:$PERM")" = sent ]
  [ "$(received /ok/present)" = 1 ]
}

@test "a rule false suppresses that type only; a missing key or row is enabled" {
  serve --push-allow 127.0.0.1/32
  device phone unifiedpush "$RURL/ok/rules"
  api POST /api/collections/notification_rules/records "${TOK_OF[alice]}" \
    "{\"user\":\"$ALICE\",\"rules\":{\"permission\":false,\"task_complete\":\"no\"}}"
  [ "$code" = 200 ]
  permission
  wait_for 10 settled "permission:$PERM"
  [ "$(note_state "permission:$PERM")" = suppressed ]
  pctl get Notification "permission:$PERM" -o record | jq -r .status.reason | grep -q rule
  # a non-boolean value means enabled
  api POST /api/pocketcoder/push "${TOK_OF[poco]}" \
    "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\",\"title\":\"Task Complete\",\"message\":\"Your coding task has finished\",\"chat\":\"$CHAT\",\"key\":\"t1\"}"
  [ "$code" = 200 ]
  wait_for 10 got /ok/rules
  [ "$(jq -r 'select(.path == "/ok/rules") | .body | fromjson | .type' "$RLOG")" = task_complete ]
  [ "$(received /ok/rules)" = 1 ]
}

@test "a 500 is retried and then succeeds; a 410 deactivates the device; a 400 is not retried" {
  serve --push-allow 127.0.0.1/32
  device flaky unifiedpush "$RURL/fail/2/x"
  device gone unifiedpush "$RURL/gone/x"
  GONE="$DEV"
  device bad unifiedpush "$RURL/bad/x"
  permission
  wait_for 20 settled "permission:$PERM"
  [ "$(received /fail/2/x)" = 3 ]
  [ "$(received /gone/x)" = 1 ]
  [ "$(received /bad/x)" = 1 ]
  st="$(pctl get Notification "permission:$PERM" -o record | jq -c .status)"
  [ "$(jq -r .state <<<"$st")" = partial ]
  [ "$(jq -r '.devices[] | select(.state == "sent") | .attempts' <<<"$st")" = 3 ]
  [ "$(jq -r '[.attempts[] | select(.outcome == "retrying")] | length' <<<"$st")" = 2 ]
  [ "$(jq -r '.devices[] | select(.state == "failed") | .code' <<<"$st")" = 400 ]
  api GET "/api/collections/devices/records/$GONE" "${TOK_OF[alice]}"
  [ "$(jq -r .is_active <<<"$body")" = false ]
  pctl get Device "$GONE" -o record | jq -r .status.deactivated | grep -q 410
  # a deactivated device gets nothing more
  permission
  wait_for 20 settled "permission:$PERM"
  [ "$(received /gone/x)" = 1 ]
}

@test "a hanging endpoint times out while another device gets its push within a second" {
  serve --push-allow 127.0.0.1/32
  device slow unifiedpush "$RURL/hang/x"
  device fast unifiedpush "$RURL/ok/fast"
  api POST /api/pocketcoder/push "${TOK_OF[poco]}" "{\"user_id\":\"$ALICE\",\"type\":\"task_error\",\"title\":\"Task failed\"}"
  [ "$code" = 200 ]
  t0="$(date +%s.%N)"
  wait_for 10 got /ok/fast
  wait_for 10 got /hang/x
  t1="$(jq -r 'select(.path == "/ok/fast") | .t' "$RLOG")"
  awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 1.0) }'
  key="$(pctl get Notification -o record | jq -r '.[0].name')"
  wait_for 30 pctl get Notification "$key" -o record
  wait_for 30 sh -c "'$PCTL' get Notification '$key' -o record | jq -e '.status.attempts[] | select(.error | test(\"[Tt]imeout|timed out\"))' >/dev/null"
}

@test "127.0.0.1 without the allow-list, 169.254.169.254 and a name resolving to loopback are never contacted" {
  serve
  device lo unifiedpush "$RURL/ok/lo"
  device meta unifiedpush "http://169.254.169.254/latest/meta-data/"
  device name unifiedpush "http://localhost:$RPORT/ok/name"
  device sub unifiedpush "http://evil.localhost:$RPORT/ok/sub"
  device mapped unifiedpush "http://[::ffff:127.0.0.1]:$RPORT/ok/mapped"
  permission
  wait_for 20 settled "permission:$PERM"
  st="$(pctl get Notification "permission:$PERM" -o record | jq -c .status)"
  [ "$(jq -r .state <<<"$st")" = failed ]
  [ "$(jq -r '[.devices[] | select(.state == "refused")] | length' <<<"$st")" = 5 ]
  jq -r '.devices[].error' <<<"$st" | grep -q "169.254.169.254 is link-local"
  jq -r '.devices[].error' <<<"$st" | grep -q "127.0.0.1 is loopback"
  [ "$(wc -l <"$RLOG")" = 0 ]
  # a token that is not an http(s) URL is refused at write time
  api POST /api/collections/devices/records "${TOK_OF[alice]}" \
    "{\"user\":\"$ALICE\",\"name\":\"x\",\"push_service\":\"unifiedpush\",\"push_token\":\"file:///etc/passwd\"}"
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = push_token ]
  api POST /api/collections/devices/records "${TOK_OF[alice]}" \
    "{\"user\":\"$ALICE\",\"name\":\"y\",\"push_service\":\"unifiedpush\",\"push_token\":\"not a url\"}"
  [ "$code" = 400 ]
  # an fcm token is not a URL, and that is fine
  api POST /api/collections/devices/records "${TOK_OF[alice]}" \
    "{\"user\":\"$ALICE\",\"name\":\"z\",\"push_service\":\"fcm\",\"push_token\":\"fcm-token-1\"}"
  [ "$code" = 200 ]
}

@test "redirects are not followed and a 100 MB answer is cut off" {
  serve --push-allow 127.0.0.1/32
  device r unifiedpush "$RURL/redirect/x"
  device b unifiedpush "$RURL/big/x"
  permission
  wait_for 20 settled "permission:$PERM"
  [ "$(received /ok/redirected)" = 0 ]
  [ "$(received /redirect/x)" = 1 ]
  st="$(pctl get Notification "permission:$PERM" -o record | jq -c .status)"
  [ "$(jq -r '.devices[] | select(.code == 302) | .state' <<<"$st")" = failed ]
  jq -r '.devices[].error' <<<"$st" | grep -q "cut off"
}

@test "SIGKILL between commit and delivery delivers once after the restart" {
  # enough attempts that the delivery is still open when the kill comes
  SERVER_ENV+=(POCKETCTL_PUSH_ATTEMPTS=100)
  serve --push-allow 127.0.0.1/32
  # the receiver is down: the first attempts fail to connect
  kill "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true
  device phone unifiedpush "$RURL/ok/crash"
  permission
  wait_for 10 sh -c "'$PCTL' get Notification 'permission:$PERM' -o record | jq -e '.status.attempts | length > 0' >/dev/null"
  stop_server KILL
  # back on the same port: the device's URL names it
  python3 "$BATS_TEST_DIRNAME/push_receiver.py" "$T/rport2" "$RLOG" 127.0.0.1 "$RPORT" &
  RECV_PID=$!
  wait_for 10 test -s "$T/rport2"
  start_server -- --push-allow 127.0.0.1/32
  wait_for 20 got /ok/crash
  wait_for 20 settled "permission:$PERM"
  sleep 1
  [ "$(received /ok/crash)" = 1 ]
  [ "$(note_state "permission:$PERM")" = sent ]
  # and a restart after delivery sends nothing again
  stop_server
  start_server -- --push-allow 127.0.0.1/32
  sleep 1
  [ "$(received /ok/crash)" = 1 ]
}

@test "FCM devices go to the relay with its body and secret header; none without a relay" {
  printf 's3cret-value\n' >"$T/relay.secret"
  serve --push-allow 127.0.0.1/32 --push-relay "$RURL/ok/relay" --push-relay-secret-file "$T/relay.secret"
  device android fcm "fcm-token-xyz"
  permission
  wait_for 10 got /ok/relay
  line="$(jq -c 'select(.path == "/ok/relay")' "$RLOG")"
  [ "$(jq -r '.headers["X-Relay-Secret"]' <<<"$line")" = s3cret-value ]
  b="$(jq -r .body <<<"$line")"
  [ "$(jq -r .token <<<"$b")" = fcm-token-xyz ]
  [ "$(jq -r .user_id <<<"$b")" = "$ALICE" ]
  [ "$(jq -r .service <<<"$b")" = fcm ]
  [ "$(jq -r .type <<<"$b")" = permission ]
  [ "$(jq -r .chat <<<"$b")" = "$CHAT" ]
  [ "$(jq -r .title <<<"$b")" = "Permission requested" ]
  [ "$(jq -r .message <<<"$b")" = "run make" ]
  stop_server
  start_server
  permission
  wait_for 10 settled "permission:$PERM"
  pctl get Notification "permission:$PERM" -o record | jq -r '.status.devices[0].error' | grep -q "no FCM relay"
}

@test "the push endpoint: agent or admin only, user_id and type required, unknown user 400, key idempotent" {
  serve --push-allow 127.0.0.1/32
  device phone unifiedpush "$RURL/ok/ep"
  api POST /api/pocketcoder/push "" "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\"}"
  [ "$code" = 401 ]
  api POST /api/pocketcoder/push "${TOK_OF[alice]}" "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\"}"
  [ "$code" = 403 ]
  api POST /api/pocketcoder/push "${TOK_OF[poco]}" '{"type":"task_complete"}'
  [ "$code" = 400 ]; [ "$(jq -r '.data | keys[0]' <<<"$body")" = user_id ]
  api POST /api/pocketcoder/push "${TOK_OF[poco]}" "{\"user_id\":\"$ALICE\"}"
  [ "$code" = 400 ]; [ "$(jq -r '.data | keys[0]' <<<"$body")" = type ]
  api POST /api/pocketcoder/push "${TOK_OF[poco]}" '{"user_id":"nosuchuser12345","type":"task_complete"}'
  [ "$code" = 400 ]; [ "$(jq -r '.data | keys[0]' <<<"$body")" = user_id ]
  api POST /api/pocketcoder/push "$SU" "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\",\"key\":\"k1\"}"
  [ "$code" = 200 ]; [ "$(jq -r .queued <<<"$body")" = true ]
  api POST /api/pocketcoder/push "$SU" "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\",\"key\":\"k1\"}"
  [ "$code" = 200 ]; [ "$(jq -r .queued <<<"$body")" = false ]
  wait_for 10 got /ok/ep
  sleep 0.5
  [ "$(received /ok/ep)" = 1 ]
  # users cannot write the outbox through the records API
  api POST /api/collections/notifications/records "${TOK_OF[alice]}" "{\"key\":\"x\",\"user\":\"$ALICE\",\"type\":\"x\"}"
  [ "$code" = 403 ] || [ "$code" = 400 ] || [ "$code" = 405 ]
  [ "$(pctl get Notification -o record | jq length)" = 1 ]
}

@test "a question and an mcp request notify; over the rate limit the rest is coalesced into one push" {
  serve --push-allow 127.0.0.1/32 --push-rate 2
  new_user root admin
  api POST /api/collections/devices/records "${TOK_OF[root]}" \
    "{\"user\":\"${UID_OF[root]}\",\"name\":\"r\",\"push_service\":\"unifiedpush\",\"push_token\":\"$RURL/ok/root\"}"
  [ "$code" = 200 ]
  device phone unifiedpush "$RURL/ok/rate"
  api POST /api/collections/questions/records "${TOK_OF[poco]}" "{\"chat\":\"$CHAT\",\"question\":\"Which branch?\"}"
  [ "$code" = 200 ]
  api POST /api/pocketcoder/mcp_request "${TOK_OF[poco]}" '{"server_name":"github","reason":"to open a PR"}'
  [ "$code" = 200 ]
  wait_for 10 got /ok/root
  [ "$(jq -r 'select(.path == "/ok/root") | .body | fromjson | .type' "$RLOG")" = mcp_request ]
  wait_for 10 got /ok/rate
  [ "$(jq -r 'select(.path == "/ok/rate") | .body | fromjson | .type' "$RLOG" | head -1)" = question ]
  # question used 1 of 2; 4 more: 1 sent, 3 coalesced
  for i in 1 2 3 4; do
    api POST /api/pocketcoder/push "${TOK_OF[poco]}" "{\"user_id\":\"$ALICE\",\"type\":\"task_complete\",\"key\":\"r$i\"}"
    [ "$code" = 200 ]
  done
  wait_for 10 got /ok/rate 2
  wait_for 10 sh -c "'$PCTL' get Notification -o record | jq -e '[.[] | select(.status.state == \"coalesced\")] | length == 3' >/dev/null"
  sleep 0.5
  [ "$(received /ok/rate)" = 2 ]
  # the window frees after a minute: then one summary
  wait_for 75 got /ok/rate 3
  [ "$(jq -r 'select(.path == "/ok/rate") | .body | fromjson | .message' "$RLOG" | tail -1)" = "3 more notifications" ]
}

@test "bad push options: exit 2 naming the option or the file" {
  run "$PCTL" serve --push-allow 10.0.0.0/33
  [ "$status" = 2 ]; [[ "$output" == *"--push-allow"*"10.0.0.0/33"* ]]
  run "$PCTL" serve --push-relay ftp://relay.example/
  [ "$status" = 2 ]; [[ "$output" == *"--push-relay"* ]]
  run "$PCTL" serve --push-rate many
  [ "$status" = 2 ]; [[ "$output" == *"--push-rate"* ]]
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --push-relay-secret-file "$T/missing.secret"
  [ "$status" = 2 ]; [[ "$output" == *"$T/missing.secret"* ]]
}
