#!/usr/bin/env bats
# Filters see only what the caller may see: a ?filter= that reads through a
# relation reaches only records the caller may view (the target's view
# rule), never hidden fields, so that a filter cannot spell out another
# user's email one character at a time (mcp_servers.approved_by.email).

load helpers
load api

setup() {
  e2e_setup relfilter
  command -v jq >/dev/null || skip "jq is needed"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  start_server
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF
  new_user carol user
  new_user bob user
  new_user root admin
  # an MCP server approved by carol (a system field: the superuser sets it)
  api POST /api/collections/mcp_servers/records "$SU" \
    "{\"name\":\"fs\",\"approved_by\":\"${UID_OF[carol]}\"}"
  [ "$code" = 200 ] || { echo "$body"; return 1; }
}

# total TOKEN FILTER: the number of mcp_servers the filter finds.
total() {
  api GET "/api/collections/mcp_servers/records?filter=$(jq -rn --arg f "$2" '$f|@uri')" "$1"
  [ "$code" = 200 ] || { echo "filter $2: $code $body" >&2; return 1; }
  jq .totalItems <<<"$body"
}

@test "relfilter: bob cannot spell carol's email through approved_by; who may view her can" {
  # bob may list the server but not view carol
  [ "$(total "${TOK_OF[bob]}" '')" = 1 ]
  api GET "/api/collections/users/records/${UID_OF[carol]}" "${TOK_OF[bob]}"
  [ "$code" = 404 ]
  # no oracle: a hidden record matches neither the pattern nor its negation
  [ "$(total "${TOK_OF[bob]}" 'approved_by.email~"c%"')" = 0 ]
  [ "$(total "${TOK_OF[bob]}" 'approved_by.email!~"c%"')" = 0 ]
  [ "$(total "${TOK_OF[bob]}" 'approved_by.email~"z%"')" = 0 ]
  [ "$(total "${TOK_OF[bob]}" 'approved_by.name="carol"')" = 0 ]
  [ "$(total "${TOK_OF[bob]}" 'approved_by.id!=""')" = 0 ]
  # the relation's own value (an id) is the record's, as before
  [ "$(total "${TOK_OF[bob]}" "approved_by=\"${UID_OF[carol]}\"")" = 1 ]

  # those who may view the user still filter through it: carol sees herself, an admin and a superuser see everyone
  [ "$(total "${TOK_OF[carol]}" 'approved_by.email~"c%"')" = 1 ]
  [ "$(total "${TOK_OF[carol]}" 'approved_by.email~"z%"')" = 0 ]
  [ "$(total "${TOK_OF[root]}" 'approved_by.email~"carol@"')" = 1 ]
  [ "$(total "$SU" 'approved_by.email~"carol@"')" = 1 ]
  # bob's own chat, through chats.user
  api POST /api/collections/chats/records "${TOK_OF[bob]}" \
    "{\"title\":\"mine\",\"user\":\"${UID_OF[bob]}\"}"
  [ "$code" = 200 ]
  api GET "/api/collections/chats/records?filter=$(jq -rn '"user.email~\"bob@\""|@uri')" "${TOK_OF[bob]}"
  [ "$code" = 200 ]
  [ "$(jq .totalItems <<<"$body")" = 1 ]
}

@test "relfilter: hidden fields through a relation are refused, the server keeps serving" {
  [ "$(total "${TOK_OF[bob]}" 'approved_by.email~"c%"')" = 0 ]
  api GET "/api/collections/mcp_servers/records?filter=$(jq -rn '"approved_by.tokenKey~\"a\""|@uri')" "${TOK_OF[bob]}"
  [ "$code" = 400 ]
  jq -e '.data.filter.message | test("tokenKey")' <<<"$body"
  api GET "/api/collections/mcp_servers/records?filter=$(jq -rn '"approved_by.password~\"a\""|@uri')" "${TOK_OF[bob]}"
  [ "$code" = 400 ]
  curl -fsS -m 2 "$URL/api/health" >/dev/null
}
