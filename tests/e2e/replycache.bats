#!/usr/bin/env bats
# The records API's reply cache (controller/server/respcache.c), against a
# real `pocketctl serve`: a list or a view served again is exactly what a
# fresh read returns, after writes through the API, through the CLI
# (`pocketctl apply` and `delete` via the server) and by the reconcile
# engine (a proposal file provisioned); one caller's reply is never served
# to another (two users, an admin-role user, the superuser, a guest, with
# the same query string); a role change, a password change and a deleted
# user show at once; ?sort=@random is never kept.
#
# "Fresh" is the same request with one more query parameter the handler
# ignores (a key of its own in the cache, so read from the store), asked
# after the cached one. /metrics counts the hits, so the file also checks
# that the cache was in use at all.
#
# One server per file (setup_file) on a free loopback port with a temporary
# data directory; it is stopped in teardown_file whatever happened.

load api

setup_file() {
  api_serve_file replycache workspace/.opencode/proposals
  export PROPOSALS="$RT/root/workspace/.opencode/proposals"
}

teardown_file() {
  api_serve_file_end
}

pctl() {
  "$PCTL" --data "$RT/data" "$@"
}

hits() {
  curl -sS -m 5 "$URL/metrics" | awk '/^pocketctl_reply_cache_hits_total/ {print $2}'
}

# read PATH TOKEN: GET PATH as TOKEN three times (the second and third
# from the cache when the head did not move), then once with a parameter
# of its own (a fresh read). The three must equal the fresh one, body,
# status and ETag. Sets code and body (the fresh read's).
FRESH_N=0
read_all() {
  local path="$1" tok="$2" sep='?' c1 b1 e1 n
  [[ "$path" == *'?'* ]] && sep='&'
  for n in 1 2 3; do
    api GET "$path" "$tok"
    c1[$n]="$code" b1[$n]="$body" e1[$n]="$(grep '^etag:' <<<"$headers" || true)"
  done
  FRESH_N=$((FRESH_N + 1))
  api GET "$path${sep}fresh$FRESH_N=$RANDOM" "$tok"
  for n in 1 2 3; do
    if [ "${c1[$n]}" != "$code" ] || [ "${b1[$n]}" != "$body" ] ||
       [ "${e1[$n]}" != "$(grep '^etag:' <<<"$headers" || true)" ]; then
      echo "GET $path: read $n was ${c1[$n]} ${b1[$n]} ${e1[$n]}" >&2
      echo "a fresh read is $code $body" >&2
      return 1
    fi
  done
}

ids() { jq -r '[.items[].id] | sort | join(",")' <<<"$body"; }

@test "a list and a view show every write through the API at once" {
  local h0 kid
  h0="$(hits)"
  read_all "/api/collections/llm_keys/records?perPage=50" "$ALICE"
  [ "$code" = 200 ]
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  api POST /api/collections/llm_keys/records "$ALICE" \
    '{"provider_id":"anthropic","env_vars":{"ANTHROPIC_API_KEY":"sk-alice-1"}}'
  [ "$code" = 200 ]
  kid="$(jq -r .id <<<"$body")"
  read_all "/api/collections/llm_keys/records?perPage=50" "$ALICE"
  [ "$(ids)" = "$kid" ]
  [ "$(jq -r '.items[0].env_vars.ANTHROPIC_API_KEY' <<<"$body")" = sk-alice-1 ]
  read_all "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$code" = 200 ]
  api PATCH "/api/collections/llm_keys/records/$kid" "$ALICE" \
    '{"env_vars":{"ANTHROPIC_API_KEY":"sk-alice-2"}}'
  [ "$code" = 200 ]
  read_all "/api/collections/llm_keys/records?perPage=50" "$ALICE"
  [ "$(jq -r '.items[0].env_vars.ANTHROPIC_API_KEY' <<<"$body")" = sk-alice-2 ]
  read_all "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$(jq -r '.env_vars.ANTHROPIC_API_KEY' <<<"$body")" = sk-alice-2 ]
  # the skipTotal, fields and page variants are keys of their own
  read_all "/api/collections/llm_keys/records?perPage=50&skipTotal=1" "$ALICE"
  [ "$(jq -r .totalItems <<<"$body")" = -1 ]
  read_all "/api/collections/llm_keys/records?perPage=50&fields=id" "$ALICE"
  [ "$(jq -c '.items[0]' <<<"$body")" = "{\"id\":\"$kid\"}" ]
  read_all "/api/collections/llm_keys/records?page=2&perPage=1" "$ALICE"
  [ "$(jq -r '.items | length' <<<"$body")" = 0 ]
  api DELETE "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$code" = 204 ]
  read_all "/api/collections/llm_keys/records?perPage=50" "$ALICE"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  read_all "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$code" = 404 ]
  # the repeated reads were served from the cache
  [ "$(hits)" -gt "$h0" ]
}

@test "one caller's reply is never served to another with the same query" {
  local kid q="/api/collections/llm_keys/records?perPage=50&sort=-created" round
  api POST /api/collections/llm_keys/records "$ALICE" \
    '{"provider_id":"openai","env_vars":{"OPENAI_API_KEY":"sk-alice-secret"}}'
  [ "$code" = 200 ]
  kid="$(jq -r .id <<<"$body")"
  for round in 1 2 3; do
    read_all "$q" "$ALICE"
    [ "$(ids)" = "$kid" ]
    [ "$(jq -r '.items[0].env_vars.OPENAI_API_KEY' <<<"$body")" = sk-alice-secret ]
    read_all "$q" "$BOB"
    [ "$code" = 200 ]
    [ "$(jq -r .totalItems <<<"$body")" = 0 ]
    [[ "$body" != *sk-alice-secret* ]]
    read_all "$q" ""
    [[ "$body" != *"$kid"* ]]
    [[ "$body" != *sk-alice-secret* ]]
    read_all "$q" "$ROOT"
    [[ "$(ids)" == *"$kid"* ]]
    read_all "$q" "$SU"
    [[ "$(ids)" == *"$kid"* ]]
    [[ "$body" == *sk-alice-secret* ]]
    # a view: the owner and the admin see it, bob and a guest do not
    read_all "/api/collections/llm_keys/records/$kid" "$ALICE"
    [ "$code" = 200 ]
    read_all "/api/collections/llm_keys/records/$kid" "$BOB"
    [ "$code" = 404 ]
    read_all "/api/collections/llm_keys/records/$kid" ""
    [ "$code" = 404 ]
    read_all "/api/collections/llm_keys/records/$kid" "$ROOT"
    [ "$code" = 200 ]
  done
  api DELETE "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$code" = 204 ]
}

@test "a role change, a password change and a deleted user show at once" {
  local kid q="/api/collections/llm_keys/records?perPage=50" cid carol
  api POST /api/collections/llm_keys/records "$ALICE" \
    '{"provider_id":"google","env_vars":{"GOOGLE_API_KEY":"g-alice"}}'
  [ "$code" = 200 ]
  kid="$(jq -r .id <<<"$body")"
  read_all "$q" "$BOB"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  # bob becomes an admin: the same token now lists alice's key...
  api PATCH "/api/collections/users/records/$BOB_ID" "$SU" '{"role":"admin"}'
  [ "$code" = 200 ]
  read_all "$q" "$BOB"
  [[ "$(ids)" == *"$kid"* ]]
  [[ "$body" == *g-alice* ]]
  # ...and no longer once he is a user again
  api PATCH "/api/collections/users/records/$BOB_ID" "$SU" '{"role":"user"}'
  [ "$code" = 200 ]
  read_all "$q" "$BOB"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  [[ "$body" != *g-alice* ]]
  api DELETE "/api/collections/llm_keys/records/$kid" "$ALICE"
  [ "$code" = 204 ]

  # a password change takes the old token's list away
  api POST /api/collections/users/records "$SU" \
    '{"email":"carol@example.com","password":"carol-pass-123","passwordConfirm":"carol-pass-123","role":"user","name":"carol"}'
  [ "$code" = 200 ]
  cid="$(jq -r .id <<<"$body")"
  carol="$(login users carol@example.com carol-pass-123)"
  read_all /api/collections/ai_prompts/records "$carol"
  [ "$code" = 200 ]
  api PATCH "/api/collections/users/records/$cid" "$SU" \
    '{"password":"carol-pass-456","passwordConfirm":"carol-pass-456"}'
  [ "$code" = 200 ]
  api GET /api/collections/ai_prompts/records "$carol"
  [ "$code" = 401 ]
  # and a deleted user's token lists nothing
  carol="$(login users carol@example.com carol-pass-456)"
  read_all /api/collections/ai_prompts/records "$carol"
  [ "$code" = 200 ]
  api DELETE "/api/collections/users/records/$cid" "$SU"
  [ "$code" = 204 ]
  api GET /api/collections/ai_prompts/records "$carol"
  [ "$code" = 401 ]
}

@test "writes by pocketctl apply and delete through the server show at once" {
  local q="/api/collections/tool_permissions/records?filter=pattern='rcperm*'&perPage=50"
  read_all "$q" "$SU"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  printf 'apiVersion: pocketcoder.dev/v1\nkind: ToolPermission\nmetadata: {name: rc-perm}\nspec: {tool: bash, pattern: "rcperm*", action: ask, active: true, priority: 5}\n' >"$RT/p.yaml"
  run pctl apply -f "$RT/p.yaml"
  [ "$status" -eq 0 ]
  read_all "$q" "$SU"
  [ "$(jq -r '.items[0].action' <<<"$body")" = ask ]
  read_all "$q" "$ALICE"
  [ "$(jq -r '.items[0].action' <<<"$body")" = ask ]
  sed -i 's/action: ask/action: allow/' "$RT/p.yaml"
  run pctl apply -f "$RT/p.yaml"
  [ "$status" -eq 0 ]
  read_all "$q" "$SU"
  [ "$(jq -r '.items[0].action' <<<"$body")" = allow ]
  read_all "$q" "$ALICE"
  [ "$(jq -r '.items[0].action' <<<"$body")" = allow ]
  run pctl delete ToolPermission rc-perm
  [ "$status" -eq 0 ]
  read_all "$q" "$SU"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  read_all "$q" "$ALICE"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
}

proposal_listed() {
  read_all "/api/collections/proposals/records?filter=name='rc-proposal'" "$SU" &&
    [ "$(jq -r .totalItems <<<"$body")" = "$1" ]
}

@test "a write by the reconcile engine (a provisioned proposal) shows at once" {
  proposal_listed 0
  printf -- '---\nname: rc-proposal\ndescription: from a file\n---\nstep 1\n' \
    >"$PROPOSALS/rc-proposal.md"
  # the engine picks the file up on its own (inotify); poll the cached
  # list, never a fresh one alone
  for _ in $(seq 1 100); do
    proposal_listed 1 && break
    sleep 0.1
  done
  proposal_listed 1
  [ "$(jq -r '.items[0].status' <<<"$body")" = draft ]
  [ "$(jq -r '.items[0].content' <<<"$body")" = "step 1" ]
}

# The distinct orders of bob's llm_keys in 12 lists sorted by $1.
random_orders() {
  local i
  for i in $(seq 1 12); do
    api GET "/api/collections/llm_keys/records?sort=$1&perPage=50" "$BOB"
    [ "$code" = 200 ] || exit 1
    jq -r '[.items[].id] | join(",")' <<<"$body"
  done | sort -u | wc -l
}

@test "sort=@random is read afresh every time" {
  local i
  for i in $(seq 1 8); do
    api POST /api/collections/llm_keys/records "$BOB" \
      "{\"provider_id\":\"p$i\",\"env_vars\":{}}"
    [ "$code" = 200 ]
  done
  [ "$(random_orders @random)" -gt 1 ]
  # also when the @ is sent percent-encoded
  [ "$(random_orders %40random)" -gt 1 ]
}
