#!/usr/bin/env bats
# The PocketBase-compatible records API at the curl level, against a real
# `pocketctl serve`: CRUD, list parameters, access rules, every 4xx class,
# If-Match / ETag, secrets, system fields, and "nothing written" on every
# refused write.
#
# One server per file (setup_file) on a free loopback port with a temporary
# data directory; it is stopped in teardown_file whatever happened. Tests
# create their own records with unique names, so they do not depend on each
# other's order.

load api

setup_file() {
  api_serve_file records
}

teardown_file() {
  api_serve_file_end
}

etag() {
  sed -n 's/^etag: "\([0-9]*\)"$/\1/p' <<<"$headers"
}

# A fingerprint of every record and the store head: equal before and after
# means nothing was written.
fingerprint() {
  local c
  for c in users ai_prompts ai_models ai_agents chats messages llm_keys \
           mcp_servers proposals sops; do
    curl -sS -m 10 -H "Authorization: $SU" \
      "$URL/api/collections/$c/records?perPage=500&sort=id" |
      jq -c '[.items[] | [.id, .updated]]'
  done
}

new_prompt() {   # new_prompt NAME -> echoes its id
  api POST /api/collections/ai_prompts/records "$SU" "{\"name\":\"$1\",\"body\":\"body of $1\"}"
  [ "$code" = 200 ] || { echo "create prompt $1: $code $body" >&2; return 1; }
  jq -r .id <<<"$body"
}

new_chat() {     # new_chat TOKEN USER_ID TITLE -> echoes its id
  api POST /api/collections/chats/records "$1" "{\"title\":\"$3\",\"user\":\"$2\"}"
  [ "$code" = 200 ] || { echo "create chat: $code $body" >&2; return 1; }
  jq -r .id <<<"$body"
}

@test "create, view, update, delete a record (superuser) with PocketBase's JSON shape" {
  api POST /api/collections/ai_prompts/records "$SU" '{"name":"crud-1","body":"hello"}'
  [ "$code" = 200 ]
  id="$(jq -r .id <<<"$body")"
  [[ "$id" =~ ^[a-z0-9]{15}$ ]]
  [ "$(jq -r .collectionName <<<"$body")" = ai_prompts ]
  [ "$(jq -r .collectionId <<<"$body")" = pc_ai_prompts ]
  [[ "$(jq -r .created <<<"$body")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:.]+Z$ ]]
  [ "$(jq -r .body <<<"$body")" = hello ]
  rev1="$(etag)"
  [ -n "$rev1" ]

  api GET "/api/collections/ai_prompts/records/$id" "$SU"
  [ "$code" = 200 ]
  [ "$(jq -r .name <<<"$body")" = crud-1 ]
  # the revision moves on when the server records reconcile status
  [ "$(etag)" -ge "$rev1" ]

  # by collection id too
  api GET "/api/collections/pc_ai_prompts/records/$id" "$SU"
  [ "$code" = 200 ]

  api PATCH "/api/collections/ai_prompts/records/$id" "$SU" '{"body":"changed"}'
  [ "$code" = 200 ]
  [ "$(jq -r .body <<<"$body")" = changed ]
  [ "$(jq -r .name <<<"$body")" = crud-1 ]        # partial update
  rev2="$(etag)"
  [ "$rev2" -gt "$rev1" ]

  api DELETE "/api/collections/ai_prompts/records/$id" "$SU"
  [ "$code" = 204 ]
  [ "$(etag)" -gt "$rev2" ]
  api GET "/api/collections/ai_prompts/records/$id" "$SU"
  [ "$code" = 404 ]
  [ "$(jq -r .message <<<"$body")" = "The requested resource wasn't found." ]
}

@test "create accepts a client id of 15 [a-z0-9] and ignores output-only keys" {
  api POST /api/collections/ai_prompts/records "$SU" \
    '{"id":"abcdefghij12345","name":"client-id","body":"b","created":"1999-01-01 00:00:00.000Z","collectionName":"x","expand":{}}'
  [ "$code" = 200 ]
  [ "$(jq -r .id <<<"$body")" = abcdefghij12345 ]
  [[ "$(jq -r .created <<<"$body")" != 1999* ]]
  api POST /api/collections/ai_prompts/records "$SU" '{"id":"../../etc","name":"bad-id","body":"b"}'
  [ "$code" = 400 ]
  [ "$(jq -r .data.id.code <<<"$body")" = validation_invalid_value ]
  api POST /api/collections/ai_prompts/records "$SU" '{"id":"abcdefghij12345","name":"dup-id","body":"b"}'
  [ "$code" = 400 ]
  [ "$(jq -r .data.id.code <<<"$body")" = validation_not_unique ]
}

@test "list: page, perPage, totalItems, totalPages, skipTotal, sort, filter" {
  for i in 1 2 3 4 5; do new_prompt "page-$i" >/dev/null; done
  api GET "/api/collections/ai_prompts/records?filter=name~'page-'&perPage=2&page=2&sort=-name" "$SU"
  [ "$code" = 200 ]
  [ "$(jq -c '[.page,.perPage,.totalItems,.totalPages]' <<<"$body")" = '[2,2,5,3]' ]
  [ "$(jq -c '[.items[].name]' <<<"$body")" = '["page-3","page-2"]' ]

  api GET "/api/collections/ai_prompts/records?filter=name~'page-'&perPage=2&page=3&sort=name&skipTotal=1" "$SU"
  [ "$code" = 200 ]
  [ "$(jq -c '[.totalItems,.totalPages]' <<<"$body")" = '[-1,-1]' ]
  [ "$(jq -c '[.items[].name]' <<<"$body")" = '["page-5"]' ]

  # defaults and clamps
  api GET "/api/collections/ai_prompts/records?perPage=100000&page=-3" "$SU"
  [ "$(jq -c '[.page,.perPage]' <<<"$body")" = '[1,500]' ]
  api GET "/api/collections/ai_prompts/records" "$SU"
  [ "$(jq -c '.perPage' <<<"$body")" = 30 ]
  api GET "/api/collections/ai_prompts/records?page=x" "$SU"
  [ "$code" = 400 ]
  [ "$(jq -r .data.page.code <<<"$body")" = validation_invalid_value ]
  api GET "/api/collections/ai_prompts/records?skipTotal=maybe" "$SU"
  [ "$code" = 400 ]

  # && / || / parentheses
  api GET "/api/collections/ai_prompts/records" "$SU" "" -G \
    --data-urlencode "filter=(name='page-1' || name='page-4') && body != ''" --data-urlencode "sort=name"
  [ "$(jq -c '[.items[].name]' <<<"$body")" = '["page-1","page-4"]' ]
}

@test "list: walking every page gives each record exactly once, in the one-page order" {
  # 23 healthchecks applied at once: many share a created time, so the
  # order rests on the id tie-break.
  for i in $(seq -w 1 23); do
    printf 'apiVersion: pocketcoder.dev/v1\nkind: Healthcheck\nmetadata:\n  name: walk-%s\nspec:\n  status: ready\n---\n' "$i"
  done >"$RT/walk.yaml"
  api POST /api/v1/apply "$SU" "" -H 'Content-Type: application/yaml' --data-binary @"$RT/walk.yaml"
  [ "$code" = 200 ]
  for sort in "" "-name" "status,-created"; do
    api GET "/api/collections/healthchecks/records?filter=name~'walk-'&perPage=500&sort=$sort" "$SU"
    all="$(jq -r '[.items[].id] | join(" ")' <<<"$body")"
    [ "$(wc -w <<<"$all")" -eq 23 ]
    walked=""
    for page in 1 2 3 4 5 6 7; do
      api GET "/api/collections/healthchecks/records?filter=name~'walk-'&perPage=4&page=$page&sort=$sort&skipTotal=$((page % 2))" "$SU"
      [ "$code" = 200 ]
      walked="$walked $(jq -r '[.items[].id] | join(" ")' <<<"$body")"
    done
    [ "$(echo $walked)" = "$all" ]
    # As a user (the list rule is evaluated): the same walk.
    api GET "/api/collections/healthchecks/records?filter=name~'walk-'&perPage=4&page=6&sort=$sort" "$ALICE"
    [ "$code" = 200 ]
    [ "$(jq -r '[.items[].id] | join(" ")' <<<"$body")" = "$(echo $all | cut -d' ' -f21-23)" ]
  done
}

@test "list items are the records exactly as view shows them, for every kind of field" {
  # Lists of collections that show every field to everyone are written
  # from the stored rows (no parse and dump); they must say what view says.
  cat >"$RT/same.py" <<'EOF'
import json, sys, urllib.error, urllib.request
url, su, alice = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, path, token, body=None):
    req = urllib.request.Request(url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as err:
        sys.exit("%s %s: %s %s" % (method, path, err.code, err.read().decode()))
odd = 'q"uo\\te \u00e9\u4e2d \U0001F600 tab\t nl\n ctl\u0001 </script>'
p = call("POST", "/api/collections/ai_prompts/records", su, {"name": "same-p", "body": odd})
call("POST", "/api/collections/ai_agents/records", su, {"name": "same-a", "mode": "all",
     "temperature": 0.25, "is_init": True, "prompt": p["id"], "description": odd})
call("POST", "/api/collections/containers/records", su, {"name": "same-c",
     "files": {"a": [1, 2.5, None, True, {"k": odd}], "": {}}, "running": False,
     "stop_timeout": 3})
call("POST", "/api/collections/llm_providers/records", su, {"provider_id": "same-l",
     "name": odd, "models": [], "env_vars": {"X": "1"}})
me = call("POST", "/api/collections/users/auth-refresh", alice)["record"]["id"]
ch = call("POST", "/api/collections/chats/records", alice, {"title": odd, "user": me,
     "last_active": "2026-01-02 03:04:05.678Z", "archived": True})
call("POST", "/api/collections/messages/records", alice, {"chat": ch["id"], "role": "user",
     "parts": [{"type": "text", "text": odd}]})
checked = 0
for coll, token in (("ai_prompts", su), ("ai_agents", su), ("containers", su),
                    ("llm_providers", su), ("chats", alice), ("messages", alice),
                    ("chats", su)):
    got = call("GET", "/api/collections/%s/records?perPage=500" % coll, token)
    assert got["totalItems"] == len(got["items"]) > 0, (coll, got["totalItems"])
    for item in got["items"]:
        view = call("GET", "/api/collections/%s/records/%s" % (coll, item["id"]), token)
        assert item == view, (coll, item, view)
        checked += 1
print(checked)
EOF
  run python3 "$RT/same.py" "$URL" "$SU" "$ALICE"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" -ge 7 ]
}

@test "list: fields and expand (nested, view rule respected)" {
  p="$(new_prompt expand-prompt)"
  api POST /api/collections/ai_models/records "$SU" '{"name":"expand-model","identifier":"x/y"}'
  m="$(jq -r .id <<<"$body")"
  api POST /api/collections/ai_agents/records "$SU" "{\"name\":\"expand-agent\",\"prompt\":\"$p\",\"model\":\"$m\"}"
  [ "$code" = 200 ]
  a="$(jq -r .id <<<"$body")"

  api GET "/api/collections/ai_agents/records?filter=name='expand-agent'&expand=prompt,model" "$ALICE"
  [ "$code" = 200 ]
  [ "$(jq -r '.items[0].expand.prompt.name' <<<"$body")" = expand-prompt ]
  [ "$(jq -r '.items[0].expand.model.identifier' <<<"$body")" = x/y ]

  api GET "/api/collections/ai_agents/records?filter=name='expand-agent'&expand=prompt&fields=id,expand.prompt.name" "$ALICE"
  [ "$(jq -c '.items[0]' <<<"$body")" = "{\"id\":\"$a\",\"expand\":{\"prompt\":{\"name\":\"expand-prompt\"}}}" ]

  api GET "/api/collections/ai_agents/records/$a?fields=*,expand.model.name&expand=model" "$ALICE"
  [ "$code" = 200 ]
  [ "$(jq -r '.name' <<<"$body")" = expand-agent ]
  [ "$(jq -c '.expand' <<<"$body")" = '{"model":{"name":"expand-model"}}' ]

  # unknown expand names are ignored, as PocketBase does
  api GET "/api/collections/ai_agents/records/$a?expand=nope,description" "$ALICE"
  [ "$code" = 200 ]
  [ "$(jq -r 'has("expand")' <<<"$body")" = false ]

  # nested: messages -> chat -> user; a relation the caller may not view
  # (bob's chat, seen by alice) stays out of expand
  c="$(new_chat "$ALICE" "$ALICE_ID" expand-chat)"
  api POST /api/collections/messages/records "$ALICE" "{\"chat\":\"$c\",\"role\":\"user\"}"
  [ "$code" = 200 ]
  msg="$(jq -r .id <<<"$body")"
  api GET "/api/collections/messages/records/$msg?expand=chat.user" "$ALICE"
  [ "$(jq -r '.expand.chat.expand.user.id' <<<"$body")" = "$ALICE_ID" ]
  api GET "/api/collections/chats/records/$c?expand=user" "$ROOT"
  [ "$code" = 200 ]
  [ "$(jq -r '.expand.user.email' <<<"$body")" = alice@example.com ]   # admin sees it
  api GET "/api/collections/messages/records?expand=chat" "$BOB"
  [ "$(jq -r "[.items[] | select(.id==\"$msg\")] | length" <<<"$body")" = 0 ]

  api GET "/api/collections/ai_agents/records?fields=id:nope(1)" "$ALICE"
  [ "$code" = 400 ]
}

@test "unknown collection is a PocketBase 404; path tricks in ids are 404" {
  api GET /api/collections/nope/records "$SU"
  [ "$code" = 404 ]
  [ "$(jq -c . <<<"$body")" = '{"status":404,"message":"Missing collection context.","data":{}}' ]
  for bad in '..%2f..%2fetc%2fpasswd' '%2e%2e' 'abc' 'ABCDEFGHIJ12345' \
             'abcdefghij123456789' "abcdefghij1234'"; do
    api GET "/api/collections/ai_prompts/records/$bad" "$SU"
    [ "$code" = 404 ]
    api PATCH "/api/collections/ai_prompts/records/$bad" "$SU" '{"body":"x"}'
    [ "$code" = 404 ]
    api DELETE "/api/collections/ai_prompts/records/$bad" "$SU"
    [ "$code" = 404 ]
  done
  # a NUL byte in a path parameter is refused outright (issue 20)
  api GET "/api/collections/ai_prompts/records/abcdefghij1234%00" "$SU"
  [ "$code" = 400 ]
}

@test "a bad filter or sort is a 400 naming the position; injection-looking filters do nothing" {
  api GET "/api/collections/ai_prompts/records" "$SU" "" -G --data-urlencode "filter=name = 'x' &&"
  [ "$code" = 400 ]
  [[ "$(jq -r .message <<<"$body")" == *position* ]]
  [ "$(jq -r '.data.filter.code' <<<"$body")" = validation_invalid_value ]
  api GET "/api/collections/ai_prompts/records?sort=-nope" "$SU"
  [ "$code" = 400 ]
  [[ "$(jq -r .message <<<"$body")" == *position* ]]

  before="$(fingerprint)"
  for f in "name = '' OR 1=1 --'" "name = 'x'; DROP TABLE records; --" \
           "name = \"x' OR '1'='1\""; do
    api GET "/api/collections/ai_prompts/records" "$SU" "" -G --data-urlencode "filter=$f"
    [ "$code" = 200 ] || [ "$code" = 400 ]
    [ "$code" = 400 ] || [ "$(jq .totalItems <<<"$body")" = 0 ]
  done
  [ "$(fingerprint)" = "$before" ]
}

@test "access rules: superuser-only, guests, owners, and refused creates write nothing" {
  api GET /api/collections/_superusers/records "$ALICE"
  [ "$code" = 403 ]
  [ "$(jq -r .message <<<"$body")" = "Only superusers can perform this action." ]
  api POST /api/collections/users/records "$ALICE" '{"email":"eve@example.com","password":"eve-pass-123"}'
  [ "$code" = 403 ]
  api POST /api/collections/ai_prompts/records "$ALICE" '{"name":"not-allowed","body":"b"}'
  [ "$code" = 403 ]

  # guests see nothing where the rule needs an auth record
  new_prompt guest-check >/dev/null
  api GET /api/collections/ai_prompts/records
  [ "$code" = 200 ]
  [ "$(jq .totalItems <<<"$body")" = 0 ]

  # alice's chat: bob can neither see, change nor delete it (404)
  c="$(new_chat "$ALICE" "$ALICE_ID" rules-chat)"
  api GET "/api/collections/chats/records/$c" "$BOB"
  [ "$code" = 404 ]
  api GET "/api/collections/chats/records?filter=id='$c'" "$BOB"
  [ "$(jq .totalItems <<<"$body")" = 0 ]
  before="$(fingerprint)"
  api PATCH "/api/collections/chats/records/$c" "$BOB" '{"title":"hijacked"}'
  [ "$code" = 404 ]
  api DELETE "/api/collections/chats/records/$c" "$BOB"
  [ "$code" = 404 ]

  # create rule checked on the new row: a chat for someone else, a message
  # in someone else's chat, an assistant message by a user
  api POST /api/collections/chats/records "$BOB" "{\"title\":\"for alice\",\"user\":\"$ALICE_ID\"}"
  [ "$code" = 400 ]
  [ "$(jq -r .message <<<"$body")" = "Failed to create record." ]
  api POST /api/collections/messages/records "$BOB" "{\"chat\":\"$c\",\"role\":\"user\"}"
  [ "$code" = 400 ]
  api POST /api/collections/messages/records "$ALICE" "{\"chat\":\"$c\",\"role\":\"assistant\"}"
  [ "$code" = 400 ]
  [ "$(fingerprint)" = "$before" ]

  # the owner and an admin may
  api PATCH "/api/collections/chats/records/$c" "$ROOT" '{"title":"renamed by admin"}'
  [ "$code" = 200 ]
  api DELETE "/api/collections/chats/records/$c" "$ALICE"
  [ "$code" = 204 ]
}

@test "system fields: no role self-escalation, echoing the stored value is fine" {
  before="$(fingerprint)"
  api PATCH "/api/collections/users/records/$ALICE_ID" "$ALICE" '{"role":"admin"}'
  [ "$code" = 403 ]
  [ "$(jq -r '.data.role.code' <<<"$body")" != null ]
  api PATCH "/api/collections/users/records/$ALICE_ID" "$ALICE" '{"verified":true}'
  [ "$code" = 403 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = verified ]
  api PATCH "/api/collections/users/records/$ALICE_ID" "$ALICE" '{"tokenKey":"x"}'
  [ "$code" = 403 ]
  [ "$(fingerprint)" = "$before" ]
  api GET "/api/collections/users/records/$ALICE_ID" "$SU"
  [ "$(jq -r .role <<<"$body")" = user ]

  api PATCH "/api/collections/users/records/$ALICE_ID" "$ALICE" '{"role":"user","name":"Alice"}'
  [ "$code" = 200 ]
  [ "$(jq -r .name <<<"$body")" = Alice ]
  # a superuser may
  api PATCH "/api/collections/users/records/$BOB_ID" "$SU" '{"verified":true}'
  [ "$code" = 200 ]
  [ "$(jq -r .verified <<<"$body")" = true ]
}

@test "hidden fields never leave; password changes need oldPassword" {
  api GET "/api/collections/users/records/$ALICE_ID" "$SU"
  [ "$code" = 200 ]
  [ "$(jq -r 'has("password") or has("tokenKey")' <<<"$body")" = false ]
  api GET "/api/collections/users/records?filter=password!=''" "$ALICE"
  [ "$code" = 400 ]
  api GET "/api/collections/users/records?sort=tokenKey" "$ALICE"
  [ "$code" = 400 ]

  # carol, made here, so that no other test holds a token this one revokes
  api POST /api/collections/users/records "$SU" '{"email":"carol@example.com","password":"carol-pass-123","role":"user"}'
  [ "$code" = 200 ]
  cid="$(jq -r .id <<<"$body")"
  carol="$(login users carol@example.com carol-pass-123)"
  path="/api/collections/users/records/$cid"
  api PATCH "$path" "$carol" '{"password":"new-pass-456","passwordConfirm":"new-pass-456"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data.oldPassword.code' <<<"$body")" != null ]
  api PATCH "$path" "$carol" '{"oldPassword":"wrong-pass","password":"new-pass-456","passwordConfirm":"new-pass-456"}'
  [ "$code" = 400 ]
  api PATCH "$path" "$carol" '{"oldPassword":"carol-pass-123","password":"new-pass-456","passwordConfirm":"other-pass-789"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data.passwordConfirm.code' <<<"$body")" != null ]
  api PATCH "$path" "$carol" '{"oldPassword":"carol-pass-123","password":"new-pass-456","passwordConfirm":"new-pass-456"}'
  [ "$code" = 200 ]
  [ "$(jq -r 'has("password") or has("tokenKey")' <<<"$body")" = false ]
  [ -n "$(login users carol@example.com new-pass-456)" ]
  [ -z "$(login users carol@example.com carol-pass-123)" ]
  # the old token was signed with the old tokenKey
  api GET "$path" "$carol"
  [ "$code" = 401 ] || [ "$code" = 404 ]
  # no password oracle on records the caller may not change
  api PATCH "$path" "$ALICE" '{"oldPassword":"new-pass-456","password":"x-pass-4567"}'
  [ "$code" = 404 ]
  api PATCH "$path" "$ALICE" '{"oldPassword":"wrong-pass-0","password":"x-pass-4567"}'
  [ "$code" = 404 ]
  # a superuser needs no old password
  api PATCH "$path" "$SU" '{"password":"carol-pass-789"}'
  [ "$code" = 200 ]
  [ -n "$(login users carol@example.com carol-pass-789)" ]
}

@test "secrets: mcp_servers.config and llm_keys.env_vars only for their owner or an admin" {
  api POST /api/collections/mcp_servers/records "$ROOT" '{"name":"secret-mcp","config":{"TOKEN":"s3cr3t"}}'
  [ "$code" = 200 ]
  id="$(jq -r .id <<<"$body")"
  api GET "/api/collections/mcp_servers/records/$id" "$ALICE"
  [ "$code" = 200 ]
  [ "$(jq -r 'has("config")' <<<"$body")" = false ]
  [[ "$body" != *s3cr3t* ]]
  api GET "/api/collections/mcp_servers/records?filter=name='secret-mcp'&fields=*,config" "$ALICE"
  [[ "$body" != *s3cr3t* ]]
  api GET "/api/collections/mcp_servers/records" "$ALICE" "" -G --data-urlencode "filter=config.TOKEN='s3cr3t'"
  [ "$code" = 400 ]
  api GET "/api/collections/mcp_servers/records/$id" "$ROOT"
  [ "$(jq -r .config.TOKEN <<<"$body")" = s3cr3t ]

  api POST /api/collections/llm_keys/records "$ALICE" "{\"provider_id\":\"openai\",\"env_vars\":{\"OPENAI_API_KEY\":\"sk-alice\"},\"user\":\"$ALICE_ID\"}"
  [ "$code" = 200 ]
  [ "$(jq -r .env_vars.OPENAI_API_KEY <<<"$body")" = sk-alice ]
  k="$(jq -r .id <<<"$body")"
  api GET "/api/collections/llm_keys/records/$k" "$BOB"
  [ "$code" = 404 ]
  api GET "/api/collections/llm_keys/records" "$BOB"
  [[ "$body" != *sk-alice* ]]
  api GET "/api/collections/llm_keys/records/$k" "$ROOT"
  [ "$(jq -r .env_vars.OPENAI_API_KEY <<<"$body")" = sk-alice ]
  api GET "/api/collections/llm_keys/records/$k" "$ALICE"
  [ "$(jq -r .env_vars.OPENAI_API_KEY <<<"$body")" = sk-alice ]
}

@test "If-Match: 412 when the record's fields changed since, quoted and bare forms accepted" {
  api POST /api/collections/ai_prompts/records "$SU" '{"name":"etag-1","body":"v1"}'
  id="$(jq -r .id <<<"$body")"
  r1="$(etag)"
  api PATCH "/api/collections/ai_prompts/records/$id" "$SU" '{"body":"v2"}' -H "If-Match: \"$r1\""
  [ "$code" = 200 ]
  r2="$(etag)"
  api PATCH "/api/collections/ai_prompts/records/$id" "$SU" '{"body":"v3"}' -H "If-Match: $r1"
  [ "$code" = 412 ]
  [[ "$(jq -r .message <<<"$body")" == *"changed since revision $r1"* ]]
  # an etag that never belonged to this record
  api PATCH "/api/collections/ai_prompts/records/$id" "$SU" '{"body":"v3"}' -H "If-Match: \"1\""
  [ "$code" = 412 ]
  api GET "/api/collections/ai_prompts/records/$id" "$SU"
  [ "$(jq -r .body <<<"$body")" = v2 ]
  api DELETE "/api/collections/ai_prompts/records/$id" "$SU" "" -H "If-Match: \"$r1\""
  [ "$code" = 412 ]
  api PATCH "/api/collections/ai_prompts/records/$id" "$SU" '{"body":"v3"}' -H "If-Match: banana"
  [ "$code" = 400 ]
  api DELETE "/api/collections/ai_prompts/records/$id" "$SU" "" -H "If-Match: W/\"$r2\""
  [ "$code" = 204 ]
}

@test "bodies: JSON only, 1 MiB cap, bad values named in data, unknown keys ignored" {
  before="$(fingerprint)"
  api POST /api/collections/ai_prompts/records "$SU" '{"name":"x",'
  [ "$code" = 400 ]
  api POST /api/collections/ai_prompts/records "$SU" '["not","an","object"]'
  [ "$code" = 400 ]
  code="$(curl -sS -o "$RT/body" -w '%{http_code}' -H "Authorization: $SU" -F name=x -F body=y "$URL/api/collections/ai_prompts/records")"
  [ "$code" = 400 ]
  grep -q multipart "$RT/body"
  head -c 1100000 /dev/zero | tr '\0' a >"$RT/big"
  printf '{"name":"big","body":"%s"}' "$(cat "$RT/big")" >"$RT/big.json"
  code="$(curl -sS -o "$RT/body" -w '%{http_code}' -H "Authorization: $SU" -H 'Content-Type: application/json' --data-binary @"$RT/big.json" "$URL/api/collections/ai_prompts/records")"
  [ "$code" = 413 ]
  # a key the collection lacks is ignored (PocketBase's way), so the
  # missing field is what is named
  api POST /api/collections/ai_prompts/records "$SU" '{"name":"unknown-field","colour":"red"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = body ]
  api POST /api/collections/ai_prompts/records "$SU" '{"name":"missing-body"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = body ]
  api POST /api/collections/ai_agents/records "$SU" '{"name":"bad-mode","mode":"sideways"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = mode ]
  api POST /api/collections/ai_agents/records "$SU" '{"name":"bad-rel","prompt":"zzzzzzzzzzzzzzz"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = prompt ]
  # deep nesting is refused before the parser recurses (no crash)
  api POST /api/collections/ai_prompts/records "$SU" "{\"name\":\"deep\",\"body\":\"b\",\"x\":$(printf '[%.0s' $(seq 1 5000))"
  [ "$code" = 400 ]
  [[ "$(jq -r .message <<<"$body")" == *deeper* ]]
  # a bad ?fields= is refused before anything is written
  api POST "/api/collections/ai_prompts/records?fields=id:bogus(1)" "$SU" '{"name":"bad-fields","body":"b"}'
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = fields ]
  [ "$(fingerprint)" = "$before" ]
  # the server keeps serving
  api GET /api/collections/ai_prompts/records "$SU"
  [ "$code" = 200 ]
}

@test "deletes: a referenced record is refused with 400, cascades go through" {
  p="$(new_prompt delete-target)"
  api POST /api/collections/ai_agents/records "$SU" "{\"name\":\"delete-agent\",\"prompt\":\"$p\"}"
  [ "$code" = 200 ]
  before="$(fingerprint)"
  api DELETE "/api/collections/ai_prompts/records/$p" "$SU"
  [ "$code" = 400 ]
  [[ "$(jq -r .message <<<"$body")" == *ai_agents* ]]
  [ "$(fingerprint)" = "$before" ]

  c="$(new_chat "$ALICE" "$ALICE_ID" cascade-chat)"
  api POST /api/collections/messages/records "$ALICE" "{\"chat\":\"$c\",\"role\":\"user\"}"
  m="$(jq -r .id <<<"$body")"
  api DELETE "/api/collections/chats/records/$c" "$ALICE"
  [ "$code" = 204 ]
  api GET "/api/collections/messages/records/$m" "$SU"
  [ "$code" = 404 ]
}

@test "collections written only by the server refuse the API, superusers included" {
  before="$(fingerprint)"
  api POST /api/collections/sops/records "$SU" '{"name":"x","content":"y","signature":"z","version":1}'
  [ "$code" = 403 ]
  [[ "$(jq -r .message <<<"$body")" == *server* ]]
  api GET /api/collections/sops/records "$ALICE"
  [ "$code" = 200 ]
  [ "$(fingerprint)" = "$before" ]
}

@test "update rules see @request.body: proposals cannot be self-approved" {
  api POST /api/collections/proposals/records "$ALICE" '{"name":"prop-1","description":"d","content":"c","authored_by":"human"}'
  [ "$code" = 200 ]
  id="$(jq -r .id <<<"$body")"
  api POST /api/collections/proposals/records "$ALICE" '{"name":"prop-2","description":"d","content":"c","authored_by":"human","status":"approved"}'
  [ "$code" = 400 ]
  api PATCH "/api/collections/proposals/records/$id" "$ALICE" '{"status":"approved"}'
  [ "$code" = 404 ]
  api PATCH "/api/collections/proposals/records/$id" "$ALICE" '{"content":"better"}'
  [ "$code" = 200 ]
  api PATCH "/api/collections/proposals/records/$id" "$ROOT" '{"status":"approved"}'
  [ "$code" = 200 ]
}
