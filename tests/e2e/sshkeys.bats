#!/usr/bin/env bats
# SSH keys end to end, against a real `pocketctl serve`: keys made by
# ssh-keygen (ed25519, rsa, ecdsa 256/384/521) get the fingerprint
# `ssh-keygen -l -E sha256` prints; a wrong supplied fingerprint, a line
# that is not a key and a private key pasted by mistake are refused, and
# the private key is stored nowhere; GET /api/pocketcoder/ssh_keys lists
# the active, unexpired keys for the agent and admins only; the owner may
# set last_used.

load helpers
load api

setup_file() {
  command -v ssh-keygen >/dev/null || { echo "ssh-keygen (openssh-client) is needed" >&2; return 1; }
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
}

setup() {
  e2e_setup sshkeys
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  start_server
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF
  new_user alice user
  new_user bob user
  new_user root admin
  new_user poco agent
  K="$T/keys"
  mkdir -p "$K"
}

# key NAME TYPE [BITS]: a fresh key pair $K/NAME, $K/NAME.pub
key() {
  ssh-keygen -q -t "$2" ${3:+-b "$3"} -N '' -C "$1@test" -f "$K/$1"
}

# add_key TOKEN JSON-OBJECT-EXTRA PUBLIC-KEY-TEXT: create an ssh_keys
# record owned by alice (api sets code and body)
add_key() {
  local data
  data="$(jq -nc --arg pk "$3" --arg u "${UID_OF[alice]}" --argjson x "$2" \
    '{user: $u, public_key: $pk, device_name: "laptop"} + $x')"
  api POST /api/collections/ssh_keys/records "$1" "$data"
}

count_keys() {
  api GET '/api/collections/ssh_keys/records?perPage=1' "$SU"
  jq -r .totalItems <<<"$body"
}

@test "the fingerprint of every key type is the one ssh-keygen prints" {
  local spec name want
  for spec in ed:ed25519 rsa:rsa:3072 e256:ecdsa:256 e384:ecdsa:384 e521:ecdsa:521; do
    IFS=: read -r name type bits <<<"$spec"
    key "$name" "$type" "$bits"
    want="$(ssh-keygen -l -E sha256 -f "$K/$name.pub" | awk '{print $2}')"
    add_key "${TOK_OF[alice]}" '{}' "$(cat "$K/$name.pub")"
    [ "$code" = 200 ] || { echo "$name: $code $body"; false; }
    [ "$(jq -r .fingerprint <<<"$body")" = "$want" ]
    [ "$(jq -r .algorithm <<<"$body")" = "$(awk '{print $1}' "$K/$name.pub")" ]
  done
  # the right fingerprint, supplied, is accepted as it is
  key ed2 ed25519
  want="$(ssh-keygen -l -E sha256 -f "$K/ed2.pub" | awk '{print $2}')"
  add_key "${TOK_OF[alice]}" "{\"fingerprint\":\"$want\",\"algorithm\":\"mine\"}" "$(cat "$K/ed2.pub")"
  [ "$code" = 200 ]
  [ "$(jq -r .fingerprint <<<"$body")" = "$want" ]
  [ "$(jq -r .algorithm <<<"$body")" = mine ]
}

@test "a wrong fingerprint or a line that is not a key is refused, naming the field" {
  local before pk
  key ed ed25519
  pk="$(cat "$K/ed.pub")"
  before="$(count_keys)"
  add_key "${TOK_OF[alice]}" '{"fingerprint":"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' "$pk"
  [ "$code" = 400 ]
  jq -e '.data.fingerprint.message | test("does not match the key, whose fingerprint is SHA256:")' <<<"$body"
  for bad in "command=\"/bin/sh\" $pk" "ssh-ed25519 not*base64 x" \
             "ssh-rsa $(awk '{print $2}' "$K/ed.pub")" "$(awk '{print $2}' "$K/ed.pub")" \
             "$pk"$'\n'"ssh-ed25519 AAAA evil"; do
    add_key "${TOK_OF[alice]}" '{}' "$bad"
    [ "$code" = 400 ] || { echo "accepted: $bad"; false; }
    jq -e '.data.public_key.message | startswith("public_key ")' <<<"$body"
  done
  # an update is checked too
  add_key "${TOK_OF[alice]}" '{}' "$pk"
  [ "$code" = 200 ]
  local id="$(jq -r .id <<<"$body")"
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[alice]}" '{"public_key":"ssh-ed25519 AAAA"}'
  [ "$code" = 400 ]
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[alice]}" '{"fingerprint":"SHA256:forged"}'
  [ "$code" = 400 ]
  # a new key without a fingerprint: the stored one is recomputed
  key rsa rsa 2048
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[alice]}" \
    "$(jq -nc --arg pk "$(cat "$K/rsa.pub")" '{public_key: $pk}')"
  [ "$code" = 200 ]
  [ "$(jq -r .fingerprint <<<"$body")" = "$(ssh-keygen -l -E sha256 -f "$K/rsa.pub" | awk '{print $2}')" ]
  [ "$(jq -r .algorithm <<<"$body")" = ssh-rsa ]
  [ "$(count_keys)" = $((before + 1)) ]
}

@test "a private key pasted by mistake is refused, not echoed and stored nowhere" {
  local before secret
  key priv ed25519
  before="$(count_keys)"
  # a distinctive line from the middle of the private key
  secret="$(sed -n 3p "$K/priv")"
  [ ${#secret} -gt 40 ]
  add_key "${TOK_OF[alice]}" '{}' "$(cat "$K/priv")"
  [ "$code" = 400 ]
  jq -e '.data.public_key.message | test("private key")' <<<"$body"
  ! grep -qF "$secret" <<<"$body" || false
  # a private key behind a valid public key line is refused too
  add_key "${TOK_OF[alice]}" '{}' "$(cat "$K/priv.pub")"$'\n'"$(cat "$K/priv")"
  [ "$code" = 400 ]
  [ "$(count_keys)" = "$before" ]
  stop_server
  ! grep -rqaF "$secret" "$POCKETCTL_DATA" "$T/root" || false
  ! grep -qF "$secret" "$T/server.log" || false
}

@test "GET /api/pocketcoder/ssh_keys lists active, unexpired keys for the agent and admins" {
  local n
  for n in a1 a2 inactive expired later; do key "$n" ed25519; done
  add_key "${TOK_OF[alice]}" '{}' "$(cat "$K/a1.pub")"
  [ "$code" = 200 ]
  add_key "${TOK_OF[alice]}" '{}' "  $(cat "$K/a2.pub")  "
  [ "$code" = 200 ]
  add_key "${TOK_OF[alice]}" '{"is_active":false}' "$(cat "$K/inactive.pub")"
  [ "$code" = 200 ]
  add_key "${TOK_OF[alice]}" '{"expires_at":"2001-01-01 00:00:00.000Z"}' "$(cat "$K/expired.pub")"
  [ "$code" = 200 ]
  add_key "${TOK_OF[alice]}" '{"expires_at":"2999-01-01 00:00:00.000Z"}' "$(cat "$K/later.pub")"
  [ "$code" = 200 ]
  for who in poco root; do
    api GET /api/pocketcoder/ssh_keys "${TOK_OF[$who]}"
    [ "$code" = 200 ]
    grep -q '^content-type: text/plain' <<<"$headers"
    [ "$body" = "$(cat "$K/a1.pub" "$K/a2.pub" "$K/later.pub" | LC_ALL=C sort)" ]
  done
  # no final newline, as the original
  curl -sS -H "Authorization: $SU" "$URL/api/pocketcoder/ssh_keys" >"$T/out"
  [ "$(tail -c1 "$T/out" | od -An -c | tr -d ' ')" != '\n' ]
  api GET /api/pocketcoder/ssh_keys "${TOK_OF[alice]}"
  [ "$code" = 403 ]
  jq -e '.message | test("only the agent or an admin")' <<<"$body"
  api GET /api/pocketcoder/ssh_keys ""
  [ "$code" = 401 ]
}

@test "the owner may set last_used; nobody else, and nothing else" {
  key ed ed25519
  add_key "${TOK_OF[alice]}" '{}' "$(cat "$K/ed.pub")"
  [ "$code" = 200 ]
  local id="$(jq -r .id <<<"$body")"
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[alice]}" '{"last_used":"2026-12-01 10:00:00.000Z"}'
  [ "$code" = 200 ]
  [ "$(jq -r .last_used <<<"$body")" = "2026-12-01 10:00:00.000Z" ]
  # another user cannot (the update rule hides the record), an admin neither
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[bob]}" '{"last_used":"2026-12-02 10:00:00.000Z"}'
  [ "$code" = 404 ]
  api PATCH "/api/collections/ssh_keys/records/$id" "${TOK_OF[root]}" '{"last_used":"2026-12-02 10:00:00.000Z"}'
  [ "$code" = 404 ]
  # other system fields stay superuser-only
  api PATCH "/api/collections/users/records/${UID_OF[alice]}" "${TOK_OF[alice]}" '{"role":"admin"}'
  [ "$code" = 403 ]
  api GET "/api/collections/ssh_keys/records/$id" "$SU"
  [ "$(jq -r .last_used <<<"$body")" = "2026-12-01 10:00:00.000Z" ]
}
