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
  run pctl get mcpserver gh -o json
  [ "$(jq -r .data.config <<<"$output")" = "$one" ]
  run pctl get mcpserver gh -o json --show-secrets
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
  run pctl get mcpserver -o json
  [[ "$output" != *sEcReT-* ]]
  [[ "$output" == *'***hmac:'* ]]
  run pctl diff -f "$T/gh2.yaml"
  [ "$status" -eq 1 ]
  [[ "$output" != *sEcReT-* ]]
  [ "$(masks "$output" | wc -l)" = 2 ]
  run pctl get mcpserver gh -o json --show-secrets
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
  key="$(curl -sS -H "Authorization: $al" -H 'Content-Type: application/json' \
    --data-binary "{\"provider_id\":\"p\",\"user\":\"$al_id\",\"env_vars\":{\"KEY\":\"al-sEcReT-1\"}}" \
    "$URL/api/collections/llm_keys/records" | jq -r .id)"
  curl -sS -X PATCH -H "Authorization: $al" -H 'Content-Type: application/json' \
    --data-binary '{"env_vars":{"KEY":"al-sEcReT-2"}}' \
    "$URL/api/collections/llm_keys/records/$key" >/dev/null
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
