#!/usr/bin/env bats
# PocketBase fidelity where the app trips, and the seeded accounts: JSON
# replies end with a newline (SSE data lines do not change); body keys a
# collection lacks are ignored by the records API (and never owned) but
# refused by apply; an owner the create leaves out is the caller;
# chats.last_active follows the chat's writes and its new messages; the
# collections metadata for superusers only; POCKETCTL_USER_* /
# POCKETCTL_AGENT_* (and the original's names, the superuser's too) seed
# accounts that sign in, and a changed password of an existing one is
# warned about, not applied.
# Real binary, real data directory, curl for HTTP.

load helpers
load api

setup() {
  e2e_setup fidelity
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
  unset POCKETCTL_USER_EMAIL POCKETCTL_USER_PASSWORD POCKETCTL_AGENT_EMAIL \
    POCKETCTL_AGENT_PASSWORD POCKETBASE_ADMIN_EMAIL POCKETBASE_ADMIN_PASSWORD \
    AGENT_EMAIL AGENT_PASSWORD
  declare -gA UID_OF TOK_OF
}

# start the server with alice (role user) and bob (role admin)
start_with_users() {
  start_server "$@"
  SU="$TOKEN"
  new_user alice user
  new_user bob admin
}

# last_byte URL [TOKEN]: the last byte of the reply body, as od prints it.
last_byte() {
  curl -sS -m 10 ${2:+-H "Authorization: $2"} "$1" | tail -c 1 | od -An -c | tr -d ' '
}

@test "every JSON reply ends with a newline; SSE data lines are unchanged" {
  start_with_users
  api POST /api/collections/chats/records "${TOK_OF[alice]}" '{"title":"t"}'
  [ "$code" = 200 ]
  chat="$(jq -r .id <<<"$body")"
  # a record, a list (spliced and built), errors, collection metadata
  [ "$(last_byte "$URL/api/collections/chats/records/$chat" "${TOK_OF[alice]}")" = '\n' ]
  [ "$(last_byte "$URL/api/collections/chats/records" "${TOK_OF[alice]}")" = '\n' ]
  [ "$(last_byte "$URL/api/collections/ai_models/records" "${TOK_OF[alice]}")" = '\n' ]
  [ "$(last_byte "$URL/api/collections/chats/records/zzzzzzzzzzzzzzz" "${TOK_OF[alice]}")" = '\n' ]
  [ "$(last_byte "$URL/api/collections/nope/records")" = '\n' ]
  [ "$(last_byte "$URL/api/collections/chats" "$SU")" = '\n' ]
  # the body is one JSON document followed by exactly one newline
  curl -sS -m 10 -H "Authorization: ${TOK_OF[alice]}" \
    "$URL/api/collections/chats/records/$chat" >"$T/one.json"
  [ "$(wc -l <"$T/one.json")" -eq 1 ]
  jq -e .id "$T/one.json" >/dev/null
  # SSE: PB_CONNECT's data line is the JSON object, then the blank line
  curl -sS -N -m 2 "$URL/api/realtime" >"$T/sse.txt" || true
  grep -qE '^data:\{"clientId":"[a-z0-9]{40}"\}$' "$T/sse.txt"
  python3 - "$T/sse.txt" <<'PY'
import sys
t = open(sys.argv[1], "rb").read()
assert b'"}\n\n' in t and b'"}\n\n\n' not in t, t
PY
}

@test "records API ignores body keys the collection lacks; apply refuses them" {
  start_with_users
  # the app's approval: {status, approved_at}; approved_at is no field
  api POST /api/collections/proposals/records "${TOK_OF[alice]}" \
    '{"name":"deploy","description":"how to deploy","content":"steps","authored_by":"human","status":"draft","bogus":1,"collectionName":"x","expand":{}}'
  [ "$code" = 200 ]
  pid="$(jq -r .id <<<"$body")"
  [ "$(jq 'has("bogus")' <<<"$body")" = false ]
  [ "$(jq -r .collectionName <<<"$body")" = proposals ]
  api PATCH "/api/collections/proposals/records/$pid" "${TOK_OF[bob]}" \
    '{"status":"approved","approved_at":"2026-01-01 00:00:00.000Z","created":"1999-01-01 00:00:00.000Z"}'
  [ "$code" = 200 ]
  [ "$(jq -r .status <<<"$body")" = approved ]
  [ "$(jq 'has("approved_at")' <<<"$body")" = false ]
  [ "$(jq -r .created <<<"$body")" != "1999-01-01 00:00:00.000Z" ]
  # sealed, as any approval
  api GET "/api/collections/sops/records?filter=name%3D%22deploy%22" "${TOK_OF[bob]}"
  [ "$(jq -r .totalItems <<<"$body")" = 1 ]
  # the ignored keys own nothing
  "$PCTL" get Proposal deploy -o yaml --show-managed >"$T/own.yaml"
  ! grep -qE 'approved_at|bogus' "$T/own.yaml"
  # the primary key is not changed through the body
  api PATCH "/api/collections/proposals/records/$pid" "$SU" '{"id":"aaaaaaaaaaaaaaa"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = id ]
  api PATCH "/api/collections/proposals/records/$pid" "$SU" "{\"id\":\"$pid\",\"description\":\"d\"}"
  [ "$code" = 200 ]
  # manifests stay strict
  cat >"$T/p.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: Proposal
metadata: {name: other}
spec: {description: d, content: x, authored_by: human, status: draft, approved_at: "2026-01-01 00:00:00.000Z"}
YAML
  run "$PCTL" apply -f "$T/p.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"approved_at"* ]]
  [[ "$output" == *"p.yaml:"* ]]
  run "$PCTL" get Proposal other
  [ "$status" -ne 0 ]
}

@test "a create that leaves the owner out belongs to the caller" {
  start_with_users
  api POST /api/collections/llm_keys/records "${TOK_OF[alice]}" \
    '{"provider_id":"openai","env_vars":{"OPENAI_API_KEY":"sk-1"}}'
  [ "$code" = 200 ]
  [ "$(jq -r .user <<<"$body")" = "${UID_OF[alice]}" ]
  api POST /api/collections/model_selection/records "${TOK_OF[alice]}" '{"model":"gpt-5"}'
  [ "$code" = 200 ]
  [ "$(jq -r .user <<<"$body")" = "${UID_OF[alice]}" ]
  # null and "" are left out too
  api POST /api/collections/llm_keys/records "${TOK_OF[bob]}" \
    '{"provider_id":"openai","env_vars":{},"user":null}'
  [ "$code" = 200 ]
  [ "$(jq -r .user <<<"$body")" = "${UID_OF[bob]}" ]
  # a given owner is not replaced, and the create rule still decides
  api POST /api/collections/llm_keys/records "${TOK_OF[alice]}" \
    "{\"provider_id\":\"anthropic\",\"env_vars\":{},\"user\":\"${UID_OF[bob]}\"}"
  [ "$code" = 400 ]
  # a superuser gets no default: user is required
  api POST /api/collections/llm_keys/records "$SU" '{"provider_id":"x","env_vars":{}}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = user ]
}

@test "chats.last_active follows every write to the chat and every new message" {
  start_with_users
  api POST /api/collections/chats/records "${TOK_OF[alice]}" '{"title":"t"}'
  [ "$code" = 200 ]
  chat="$(jq -r .id <<<"$body")"
  t0="$(jq -r .last_active <<<"$body")"
  [ -n "$t0" ]
  [ "$t0" \> "$(jq -r .created <<<"$body" | cut -c1-19)" ] || [ "${t0:0:19}" = "$(jq -r .created <<<"$body" | cut -c1-19)" ]
  sleep 0.05
  api POST /api/collections/messages/records "${TOK_OF[alice]}" \
    "{\"chat\":\"$chat\",\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"text\":\"hi\"}]}"
  [ "$code" = 200 ]
  msg="$(jq -r .id <<<"$body")"
  api GET "/api/collections/chats/records/$chat" "${TOK_OF[alice]}"
  t1="$(jq -r .last_active <<<"$body")"
  [ "$t1" \> "$t0" ]
  # a message update is no new message
  sleep 0.05
  api PATCH "/api/collections/messages/records/$msg" "${TOK_OF[bob]}" '{"engine_message_status":"completed"}'
  [ "$code" = 200 ]
  api GET "/api/collections/chats/records/$chat" "${TOK_OF[alice]}"
  [ "$(jq -r .last_active <<<"$body")" = "$t1" ]
  # another writer (the superuser) and a value sent by the client
  sleep 0.05
  api PATCH "/api/collections/chats/records/$chat" "$SU" '{"title":"renamed","last_active":"2000-01-01 00:00:00.000Z"}'
  [ "$code" = 200 ]
  t2="$(jq -r .last_active <<<"$body")"
  [ "$t2" \> "$t1" ]
  # stored, in the same write
  api GET "/api/collections/chats/records/$chat" "${TOK_OF[alice]}"
  [ "$(jq -r .last_active <<<"$body")" = "$t2" ]
  [ "$(jq -r .title <<<"$body")" = renamed ]
}

@test "collection metadata: superusers only, PocketBase's shape from the schema" {
  start_with_users
  api GET /api/collections/llm_keys "$SU"
  [ "$code" = 200 ]
  [ "$(jq -r .id <<<"$body")" = pc_llm_keys ]
  [ "$(jq -r .type <<<"$body")" = base ]
  [ "$(jq -r '.fields | map(.name) | join(",")' <<<"$body")" = "id,provider_id,env_vars,user,created,updated" ]
  [ "$(jq -r '.fields[] | select(.name=="user") | .type + " " + .collectionId' <<<"$body")" = "relation _pb_users_auth_" ]
  [ "$(jq -r '.fields[] | select(.name=="id") | .primaryKey' <<<"$body")" = true ]
  [ "$(jq -r .createRule <<<"$body")" = '@request.auth.id != "" && user = @request.auth.id' ]
  [[ "$(jq -r '.indexes[0]' <<<"$body")" == 'CREATE UNIQUE INDEX `idx_llm_keys_provider_id_user` ON `llm_keys` (`provider_id`, `user`)' ]]
  # by collection id too; auth collections carry their options
  api GET /api/collections/_pb_users_auth_ "$SU"
  [ "$code" = 200 ]
  [ "$(jq -r .type <<<"$body")" = auth ]
  [ "$(jq -r '.passwordAuth.identityFields[0]' <<<"$body")" = email ]
  [ "$(jq -r '.fields[] | select(.name=="password") | .hidden' <<<"$body")" = true ]
  [ "$(jq -r '.fields[] | select(.name=="role") | .values | join(",")' <<<"$body")" = "admin,agent,user" ]
  [ "$(jq -r .createRule <<<"$body")" = null ]
  # the list: every collection, paged
  api GET "/api/collections?perPage=500" "$SU"
  [ "$code" = 200 ]
  n="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["collections"]))' "$REPO/schema/collections.json")"
  [ "$(jq -r .totalItems <<<"$body")" = "$n" ]
  [ "$(jq -r '.items | length' <<<"$body")" = "$n" ]
  api GET "/api/collections?perPage=2&page=2&fields=name" "$SU"
  [ "$(jq -c .items <<<"$body")" = '[{"name":"ai_prompts"},{"name":"ai_models"}]' ]
  api GET "/api/collections?page=0" "$SU"
  [ "$code" = 400 ]
  api GET "/api/collections?filter=name%3D%22x%22" "$SU"
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = filter ]
  # others: 401 without a token, 403 for users (admins too), 404 unknown
  api GET /api/collections/llm_keys
  [ "$code" = 401 ]
  api GET /api/collections/llm_keys "${TOK_OF[bob]}"
  [ "$code" = 403 ]
  api GET /api/collections "${TOK_OF[alice]}"
  [ "$code" = 403 ]
  api GET /api/collections/nope "$SU"
  [ "$code" = 404 ]
}

@test "seeded accounts: the admin and the agent sign in; existing ones are never changed" {
  SERVER_LOG_APPEND=1
  start_server POCKETCTL_USER_EMAIL=human@example.com POCKETCTL_USER_PASSWORD=human-pass-123 \
    AGENT_EMAIL=agent@example.com AGENT_PASSWORD=agent-pass-123 \
    POCKETBASE_SUPERUSER_EMAIL=root@example.com POCKETBASE_SUPERUSER_PASSWORD=root-pass-123
  has "$T/server.log" "created users 'human@example.com' (role admin) from POCKETCTL_USER_EMAIL"
  has "$T/server.log" "created users 'agent@example.com' (role agent) from AGENT_EMAIL"
  has "$T/server.log" "created superuser 'root@example.com' from POCKETBASE_SUPERUSER_EMAIL"
  [ -n "$(login _superusers root@example.com root-pass-123)" ]
  # a users account is no superuser
  [ -z "$(login _superusers human@example.com human-pass-123)" ]
  curl -sS -H 'Content-Type: application/json' \
    --data-binary '{"identity":"human@example.com","password":"human-pass-123"}' \
    "$URL/api/collections/users/auth-with-password" >"$T/a.json"
  [ "$(jq -r .record.role "$T/a.json")" = admin ]
  [ "$(jq -r .record.verified "$T/a.json")" = true ]
  [ -n "$(login users agent@example.com agent-pass-123)" ]
  curl -sS -H 'Content-Type: application/json' \
    --data-binary '{"identity":"agent@example.com","password":"agent-pass-123"}' \
    "$URL/api/collections/users/auth-with-password" | jq -e '.record.role == "agent"'
  stop_server
  # the same variables again: nothing to say, nothing changed
  : >"$T/server.log"
  start_server POCKETCTL_USER_EMAIL=human@example.com POCKETCTL_USER_PASSWORD=human-pass-123 \
    POCKETCTL_ADMIN_EMAIL=root@example.com POCKETCTL_ADMIN_PASSWORD=root-pass-123
  ! has "$T/server.log" "WARNING"
  ! has "$T/server.log" "created users"
  stop_server
  # a changed password (the original's name) is said loudly and not applied
  : >"$T/server.log"
  start_server POCKETBASE_ADMIN_EMAIL=HUMAN@example.com POCKETBASE_ADMIN_PASSWORD=other-pass-456
  has "$T/server.log" "WARNING: users 'HUMAN@example.com' (POCKETBASE_ADMIN_EMAIL) already exists and its password is not the one in POCKETBASE_ADMIN_PASSWORD"
  [ -n "$(login users human@example.com human-pass-123)" ]
  [ -z "$(login users human@example.com other-pass-456)" ]
  # still one human
  SU="$TOKEN"
  api GET "/api/collections/users/records?filter=email%3D%22human%40example.com%22" "$SU"
  [ "$(jq -r .totalItems <<<"$body")" = 1 ]
  stop_server
  # a half-set pair, or a password the policy refuses, stops the start
  run env POCKETCTL_AGENT_EMAIL=a2@example.com "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"set both POCKETCTL_AGENT_EMAIL and POCKETCTL_AGENT_PASSWORD, or neither"* ]]
  run env POCKETCTL_AGENT_EMAIL=a2@example.com POCKETCTL_AGENT_PASSWORD=x "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"POCKETCTL_AGENT_PASSWORD"* ]]
  run env POCKETCTL_AGENT_EMAIL=not-an-email POCKETCTL_AGENT_PASSWORD=agent-pass-123 "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --bcrypt-cost 4
  [ "$status" -eq 2 ]
  [[ "$output" == *"POCKETCTL_AGENT_EMAIL"* ]]
}
