#!/usr/bin/env bats
# Secret fields (schema "secret": true: mcp_servers.config,
# llm_keys.env_vars) never leave in clear unless asked for by someone
# allowed to: `get` (every -o), `diff` (both sides, a changed secret as a
# changed hash), apply output, `watch -o json` and the /api/v1/watch
# stream print "***hmac:XXXXXXXX"; `--show-secrets` shows them to the CLI
# (offline: whoever holds the data directory; through a server: a
# superuser, which the server checks).

load helpers

setup() {
  command -v jq >/dev/null || skip "jq is needed"
  e2e_setup secrets
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  SERVER_CHECK_LOG=1
}

# mcp NAME SECRET: an McpServer manifest with SECRET in spec.config.
mcp() {
  cat <<EOF
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata:
  name: $1
spec:
  status: pending
  image: mcp/$1
  config:
    API_KEY: $2
EOF
}

# masks TEXT: the distinct masks in TEXT, one a line.
masks() {
  grep -oE '\*\*\*hmac:[0-9a-f]{8}' <<<"$1" | sort -u
}

# user EMAIL PASSWORD ROLE: create a users record (as the superuser of
# SERVER_ENV) and print its auth-with-password reply {token, record}.
user() {
  local su
  su="$(curl -sS -H 'Content-Type: application/json' \
    --data-binary '{"identity":"admin@example.com","password":"admin-pass-123"}' \
    "$URL/api/collections/_superusers/auth-with-password" | jq -r .token)"
  curl -sS -H "Authorization: $su" -H 'Content-Type: application/json' \
    --data-binary "{\"email\":\"$1\",\"password\":\"$2\",\"passwordConfirm\":\"$2\",\"role\":\"$3\"}" \
    "$URL/api/collections/users/records" >/dev/null
  curl -sS -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$1\",\"password\":\"$2\"}" \
    "$URL/api/collections/users/auth-with-password"
}

# llm_key TOKEN USER_ID PROVIDER SECRET: create an llm_keys record whose
# env_vars hold KEY=SECRET as the user of TOKEN; prints its id.
llm_key() {
  curl -sS -H "Authorization: $1" -H 'Content-Type: application/json' \
    --data-binary "{\"provider_id\":\"$3\",\"user\":\"$2\",\"env_vars\":{\"KEY\":\"$4\"}}" \
    "$URL/api/collections/llm_keys/records" | jq -r .id
}

# llm_key_set TOKEN ID SECRET: change its KEY to SECRET.
llm_key_set() {
  curl -sS -X PATCH -H "Authorization: $1" -H 'Content-Type: application/json' \
    --data-binary "{\"env_vars\":{\"KEY\":\"$3\"}}" \
    "$URL/api/collections/llm_keys/records/$2" >/dev/null
}

@test "offline: get, diff and apply output mask secrets; --show-secrets shows them" {
  mcp gh sEcReT-one-111 >"$T/gh.yaml"
  run pctl apply -f "$T/gh.yaml" -o json
  [ "$status" -eq 0 ]
  [[ "$output" != *sEcReT-one* ]]
  for o in yaml json table; do
    run pctl get mcpserver gh -o "$o"
    [ "$status" -eq 0 ]
    [[ "$output" != *sEcReT-one* ]]
  done
  run pctl get mcpserver -o yaml
  [[ "$output" == *"config: '***hmac:"* ]]
  one="$(masks "$output")"
  [ "$(wc -l <<<"$one")" = 1 ]
  run pctl get mcpserver gh -o record
  [ "$(jq -r .data.config <<<"$output")" = "$one" ]
  run pctl get mcpserver gh -o record --show-secrets
  [ "$status" -eq 0 ]
  [ "$(jq -r .data.config.API_KEY <<<"$output")" = sEcReT-one-111 ]
  run pctl get mcpserver gh -o yaml --show-secrets
  [[ "$output" == *"API_KEY: sEcReT-one-111"* ]]

  # A changed secret: both sides masked, and the masks differ.
  mcp gh sEcReT-two-222 >"$T/gh2.yaml"
  run pctl diff -f "$T/gh2.yaml"
  [ "$status" -eq 1 ]
  [[ "$output" != *sEcReT-* ]]
  [[ "$output" == *"-  config: '$one'"* ]]
  [[ "$output" == *"+  config: '***hmac:"* ]]
  [ "$(masks "$output" | wc -l)" = 2 ]
  run pctl diff -f "$T/gh2.yaml" --show-secrets
  [ "$status" -eq 1 ]
  [[ "$output" == *sEcReT-one-111* ]]
  [[ "$output" == *sEcReT-two-222* ]]
  # The same value masks the same way every time.
  run pctl diff -f "$T/gh.yaml"
  [ "$status" -eq 0 ]
}

@test "through the server: get, diff, apply replies mask; the CLI superuser may --show-secrets" {
  mcp gh sEcReT-one-111 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  offline="$(pctl get mcpserver gh -o yaml)"
  start_server
  mcp gh sEcReT-two-222 >"$T/gh2.yaml"
  run pctl get mcpserver gh -o yaml
  [ "$status" -eq 0 ]
  # The server masks with the same key as the offline CLI.
  [ "$output" = "$offline" ]
  [[ "$output" != *sEcReT-* ]]
  run pctl get mcpserver -o record
  [[ "$output" != *sEcReT-* ]]
  [[ "$output" == *'***hmac:'* ]]
  run pctl diff -f "$T/gh2.yaml"
  [ "$status" -eq 1 ]
  [[ "$output" != *sEcReT-* ]]
  [ "$(masks "$output" | wc -l)" = 2 ]
  run pctl get mcpserver gh -o record --show-secrets
  [ "$(jq -r .data.config.API_KEY <<<"$output")" = sEcReT-one-111 ]
  run pctl diff -f "$T/gh2.yaml" --show-secrets
  [[ "$output" == *sEcReT-two-222* ]]
  # The raw replies of the declarative API.
  run curl -sS -H "Authorization: $TOKEN" "$URL/api/v1/manifests/mcp_servers?view=record"
  [[ "$output" != *sEcReT-* ]]
  [[ "$output" == *'***hmac:'* ]]
  run curl -sS -H "Authorization: $TOKEN" -H 'Content-Type: application/yaml' \
    --data-binary @"$T/gh2.yaml" "$URL/api/v1/apply"
  [[ "$output" == *'"configured"'* ]]
  [[ "$output" != *sEcReT-* ]]
  run curl -sS -H "Authorization: $TOKEN" "$URL/api/v1/manifests/mcp_servers/gh?showSecrets=maybe"
  [[ "$output" == *'"status":400'* ]]
  [[ "$output" == *showSecrets* ]]
  # The app's records API keeps its own rule: a superuser reads the value.
  run curl -sS -H "Authorization: $TOKEN" "$URL/api/collections/mcp_servers/records"
  [[ "$output" == *sEcReT-two-222* ]]
}

@test "an admin user may not ask for secrets in clear" {
  start_server
  ad="$(user ad@example.com ad-pass-1234 admin | jq -r .token)"
  [ -n "$ad" ]
  mcp gh sEcReT-one-111 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  run curl -sS -H "Authorization: $ad" "$URL/api/v1/manifests/mcp_servers/gh"
  [[ "$output" == *'***hmac:'* ]]
  [[ "$output" != *sEcReT-* ]]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $ad" \
    "$URL/api/v1/manifests/mcp_servers/gh?showSecrets=true"
  [ "${lines[-1]}" = 403 ]
  [[ "$output" == *showSecrets* ]]
  [[ "$output" != *sEcReT-* ]]
}

@test "watch: -o json and the stream mask; a plain user never sees a secret, own ones included" {
  start_server
  al="$(user al@example.com al-pass-1234 user)"
  al_id="$(jq -r .record.id <<<"$al")"
  al="$(jq -r .token <<<"$al")"
  key="$(llm_key "$al" "$al_id" p al-sEcReT-1)"
  llm_key_set "$al" "$key" al-sEcReT-2
  mcp gh sEcReT-one-111 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null

  run timeout 3 "$PCTL" watch --since 0 -o json
  [[ "$output" == *llm_keys* ]]
  [[ "$output" == *mcp_servers* ]]
  [[ "$output" != *sEcReT* ]]
  # Two values of env_vars: two masks.
  [ "$(grep llm_keys <<<"$output" | grep -oE '\*\*\*hmac:[0-9a-f]{8}' | sort -u | wc -l)" = 2 ]
  run timeout 3 "$PCTL" watch --since 0 -o json --show-secrets
  [[ "$output" == *al-sEcReT-2* ]]
  [[ "$output" == *sEcReT-one-111* ]]
  run timeout 3 "$PCTL" watch llm_keys --since 0 -o json --show-secrets
  [[ "$output" == *al-sEcReT-1* ]]
  [[ "$output" != *mcp_servers* ]]

  # The raw stream as the record's owner: masked, never in clear.
  run curl -sN -m 1 -H "Authorization: $al" "$URL/api/v1/watch?since=0&collection=llm_keys"
  [[ "$output" == *'***hmac:'* ]]
  [[ "$output" != *sEcReT* ]]
  run curl -sS -m 2 -w '\n%{http_code}' -H "Authorization: $al" \
    "$URL/api/v1/watch?since=0&showSecrets=true"
  [ "${lines[-1]}" = 403 ]
  [[ "$output" != *sEcReT* ]]
  # The app's records API keeps the owner-only rule: the owner reads it.
  run curl -sS -H "Authorization: $al" "$URL/api/collections/llm_keys/records/$key"
  [[ "$output" == *al-sEcReT-2* ]]
}

# ---- encrypted at rest ---------------------------------------------------

# leaks WORD...: the files of the database that hold any WORD in clear
# (strings(1) and grep -a both), "" when none.
leaks() {
  local w f
  for w in "$@"; do
    for f in "$POCKETCTL_DATA"/pocket.db*; do
      if strings "$f" | grep -q -- "$w" || grep -a -q -- "$w" "$f"; then
        echo "$f:$w"
      fi
    done
  done
}

@test "at rest: no secret value in pocket.db* after creates, updates and deletes; restart reads them back" {
  start_server
  al="$(user al@example.com al-pass-1234 user)"
  al_id="$(jq -r .record.id <<<"$al")"
  al="$(jq -r .token <<<"$al")"
  key="$(llm_key "$al" "$al_id" p rest-sEcReT-1)"
  llm_key_set "$al" "$key" rest-sEcReT-2
  key2="$(llm_key "$al" "$al_id" q rest-sEcReT-3)"
  curl -sS -X DELETE -H "Authorization: $al" "$URL/api/collections/llm_keys/records/$key2" >/dev/null
  mcp gh rest-sEcReT-4 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  mcp gh rest-sEcReT-5 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  mcp gone rest-sEcReT-6 >"$T/gone.yaml"
  pctl apply -f "$T/gone.yaml" >/dev/null
  pctl delete mcpserver gone >/dev/null
  # Every read path opens them: records API (get, list), the manifests
  # API, the watch stream (change log).
  run curl -sS -H "Authorization: $al" "$URL/api/collections/llm_keys/records/$key"
  [[ "$output" == *rest-sEcReT-2* ]]
  run curl -sS -H "Authorization: $al" "$URL/api/collections/llm_keys/records"
  [[ "$output" == *rest-sEcReT-2* ]]
  run pctl get mcpserver gh -o record --show-secrets
  [[ "$output" == *rest-sEcReT-5* ]]
  run curl -sN -m 1 -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=0&showSecrets=true"
  [[ "$output" == *rest-sEcReT-1* ]]
  [[ "$output" == *rest-sEcReT-6* ]]
  [ -z "$(leaks rest-sEcReT)" ]
  stop_server
  [ -z "$(leaks rest-sEcReT)" ]
  [ "$(grep -a -c 'enc:v1:' "$POCKETCTL_DATA/pocket.db")" -gt 0 ]
  start_server
  run curl -sS -H "Authorization: $TOKEN" "$URL/api/collections/llm_keys/records/$key"
  [[ "$output" == *rest-sEcReT-2* ]]
}

@test "at rest: a wrong or missing key file: the server refuses to start, naming it, and changes nothing" {
  mcp gh kEy-sEcReT-1 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  cp "$POCKETCTL_DATA/secret.key" "$T/good.key"
  before="$(sqlite3 "$POCKETCTL_DATA/pocket.db" 'SELECT data FROM records ORDER BY id')"
  head -c 32 /dev/urandom >"$POCKETCTL_DATA/secret.key"
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$POCKETCTL_DATA/secret.key"* ]]
  [[ "$output" == *"does not decrypt"* ]]
  rm "$POCKETCTL_DATA/secret.key"
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$POCKETCTL_DATA/secret.key"* ]]
  [[ "$output" == *missing* ]]
  [ ! -e "$POCKETCTL_DATA/secret.key" ]
  [ "$(sqlite3 "$POCKETCTL_DATA/pocket.db" 'SELECT data FROM records ORDER BY id')" = "$before" ]
  cp "$T/good.key" "$POCKETCTL_DATA/secret.key"
  start_server
  run pctl get mcpserver gh -o yaml --show-secrets
  [[ "$output" == *kEy-sEcReT-1* ]]
}

@test "at rest: an older data directory's plaintext secrets are encrypted at open and still read back" {
  mcp gh old-placeholder >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  # What a version before encryption left: plaintext in the record and in
  # its change-log rows, and no mark of a finished sealing migration.
  sqlite3 "$POCKETCTL_DATA/pocket.db" \
    "DELETE FROM meta WHERE key = 'secrets_sealed';
     UPDATE records SET data = json_set(data, '\$.config', json('{\"API_KEY\":\"oLd-pLaIn-1\"}')) WHERE collection = 'mcp_servers';
     UPDATE changelog SET record = json_set(record, '\$.data.config', json('{\"API_KEY\":\"oLd-pLaIn-1\"}')) WHERE collection = 'mcp_servers';"
  [ -n "$(leaks oLd-pLaIn)" ]
  start_server
  [ -z "$(leaks oLd-pLaIn)" ]
  run pctl get mcpserver gh -o record --show-secrets
  [ "$(jq -r .data.config.API_KEY <<<"$output")" = oLd-pLaIn-1 ]
  run curl -sN -m 1 -H "Authorization: $TOKEN" "$URL/api/v1/watch?since=0&showSecrets=true&collection=mcp_servers"
  [[ "$output" == *oLd-pLaIn-1* ]]
  stop_server
  [ -z "$(leaks oLd-pLaIn)" ]
}

@test "at rest: --secret-key FILE (or POCKETCTL_SECRET_KEY_FILE) keeps the key out of the data directory" {
  mkdir -p "$T/keys"
  start_server -- --secret-key "$T/keys/seal.key"
  [ "$(stat -c %a "$T/keys/seal.key")" = 600 ]
  [ "$(stat -c %s "$T/keys/seal.key")" = 32 ]
  mcp gh aPaRt-sEcReT-1 >"$T/gh.yaml"
  pctl apply -f "$T/gh.yaml" >/dev/null
  [ -z "$(leaks aPaRt-sEcReT)" ]
  stop_server
  # The data directory alone (its own secret.key signs tokens) does not
  # open the secrets: the server refuses, naming the key it tried.
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$POCKETCTL_DATA/secret.key"*"does not decrypt"* ]]
  # The environment variable names it as well, for serve and offline.
  run env POCKETCTL_SECRET_KEY_FILE="$T/keys/seal.key" "$PCTL" get mcpserver gh -o record --show-secrets
  [ "$status" -eq 0 ]
  [ "$(jq -r .data.config.API_KEY <<<"$output")" = aPaRt-sEcReT-1 ]
  start_server POCKETCTL_SECRET_KEY_FILE="$T/keys/seal.key"
  run pctl get mcpserver gh -o yaml --show-secrets
  [[ "$output" == *aPaRt-sEcReT-1* ]]
}
