#!/usr/bin/env bats
# Output a pipeline can feed back: `get KIND -o json | apply -f -` and
# `get KIND -o yaml | apply -f -` write nothing, for every kind of
# schema/collections.json (the kinds are read from it, not listed here),
# through the server and offline. The records come from the shipped
# manifests, from roundtrip_gen.py (every field a manifest may set, for
# every kind apply may create), from the records API (a user, made an
# admin so that system fields are in the output, and a secret the app
# sets) and from the server itself (superusers, the sealed SOP, the
# reconcile status). Secrets stay masked on the way and come back as
# "unchanged"; a mask that does not match is refused naming the field.

load helpers

setup() {
  e2e_setup roundtrip
  SCHEMA="$REPO/schema/collections.json"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  mapfile -t KINDS < <(jq -r '.collections[].kind' "$SCHEMA")
}

# A record of every kind: see the top of the file. Leaves the server
# running; USER_ID is the user made through the API.
populate() {
  start_server -- --manifests "$REPO/manifests"
  su_api POST /api/collections/users/records \
    '{"email":"rt@example.com","password":"rt-pass-123","passwordConfirm":"rt-pass-123","name":"rt","role":"admin","verified":true}'
  [ "$CODE" = 200 ] || { echo "user: $CODE $BODY" >&2; return 1; }
  USER_ID="$(jq -r .id <<<"$BODY")"
  python3 "$BATS_TEST_DIRNAME/roundtrip_gen.py" "$SCHEMA" "$USER_ID" \
    >"$T/gen.json" 2>"$T/gen.skipped"
  "$PCTL" apply -f "$T/gen.json" >/dev/null
  # The app sets a secret on the shipped MCP server (not owned by apply).
  id="$("$PCTL" get McpServer duckduckgo -o record | jq -r .id)"
  su_api PATCH "/api/collections/mcp_servers/records/$id" \
    '{"config":{"GITHUB_TOKEN":"app-sEcReT-1"}}'
  [ "$CODE" = 200 ]
  # A notification (written only by the server): a push for the user.
  # Its device points at an address the push guard refuses, so this one
  # and those the pending MCP servers make for this admin settle at once
  # without contacting anything.
  su_api POST /api/pocketcoder/push \
    "{\"user_id\":\"$USER_ID\",\"type\":\"task_complete\",\"title\":\"rt\",\"message\":\"rt\"}"
  [ "$CODE" = 200 ] || { echo "push: $CODE $BODY" >&2; return 1; }
  wait_for 30 notification_settled
}

notification_settled() {
  "$PCTL" get Notification -o record |
    jq -e 'length >= 1 and all(.[]; (.status.state // "") |
             IN("nodevice", "sent", "partial", "failed", "suppressed"))' >/dev/null
}

# roundtrip FORMAT KIND: `get KIND -o FORMAT | apply -f -` finds every
# record of KIND (at least one) unchanged and writes nothing.
roundtrip() {
  local n res
  n="$("$PCTL" get "$2" -o record | jq length)"
  [ "$n" -ge 1 ] || { echo "no $2 record to round-trip" >&2; return 1; }
  res="$("$PCTL" get "$2" -o "$1" | "$PCTL" apply -f - -o json)" ||
    { echo "$2 -o $1: apply refused it" >&2; return 1; }
  [ "$(jq -c '[.created, .configured, .pruned, .unchanged]' <<<"$res")" = "[0,0,0,$n]" ] ||
    { echo "$2 -o $1: $res" >&2; return 1; }
}

every_kind_roundtrips() {
  local k f
  for f in json yaml; do
    for k in "${KINDS[@]}"; do
      roundtrip "$f" "$k"
    done
  done
}

@test "every kind of the schema round-trips through -o json and -o yaml, through the server" {
  populate
  # Only the kinds apply cannot create were left to the server and the API.
  [ "$(sort "$T/gen.skipped" | tr '\n' ' ')" = "Notification ReconcileStatus Sop Superuser User " ]
  before="$("$PCTL" get McpServer duckduckgo -o record --show-secrets | jq -c '[.revision, .data.config]')"
  every_kind_roundtrips
  after="$("$PCTL" get McpServer duckduckgo -o record --show-secrets | jq -c '[.revision, .data.config]')"
  [ "$before" = "$after" ]
  [[ "$after" == *app-sEcReT-1* ]]
}

@test "every kind round-trips offline too, and diff finds nothing" {
  populate
  stop_server
  [ ! -e "$POCKETCTL_DATA/server.json" ]
  every_kind_roundtrips
  for k in "${KINDS[@]}"; do
    "$PCTL" get "$k" -o json | "$PCTL" diff -f - >/dev/null
  done
}

@test "-o json: one manifest for a name, a List for a kind, the same documents as -o yaml" {
  populate
  run "$PCTL" get AiAgent poco -o json
  [ "$status" -eq 0 ]
  [ "$(jq -r '.kind + " " + .metadata.name + " " + .spec.prompt' <<<"$output")" = "AiAgent poco poco-persona" ]
  [ "$(jq 'has("collection") or has("data")' <<<"$output")" = false ]
  run "$PCTL" get ToolPermission -o json
  [ "$(jq -r '.apiVersion + " " + .kind' <<<"$output")" = "v1 List" ]
  n="$(jq '.items | length' <<<"$output")"
  [ "$n" -ge 2 ]
  # The items are the documents -o yaml prints, in the same order.
  "$PCTL" get ToolPermission -o json >"$T/tp.json"
  "$PCTL" get ToolPermission -o yaml >"$T/tp.yaml"
  python3 -c 'import json, sys, yaml
a = json.load(open(sys.argv[1]))["items"]
b = list(yaml.safe_load_all(open(sys.argv[2])))
sys.exit(a != b)' "$T/tp.json" "$T/tp.yaml"
  # -o record keeps the stored form.
  run "$PCTL" get AiAgent poco -o record
  [ "$(jq -r '.collection + " " + (.generation|tostring)' <<<"$output")" = "ai_agents 1" ]
}

@test "secrets: a mask applied back is unchanged; a wrong mask is refused naming the field, nothing written" {
  populate
  run "$PCTL" get McpServer duckduckgo -o json
  [[ "$output" != *GITHUB_TOKEN* ]]
  [[ "$output" == *'***hmac:'* ]]
  [[ "$output" != *app-sEcReT-1* ]]
  rev="$("$PCTL" get McpServer duckduckgo -o record | jq .revision)"
  bad="$(sed 's/\*\*\*hmac:[0-9a-f]*/***hmac:00000000/' <<<"$output")"
  run "$PCTL" apply -f - <<<"$bad"
  [ "$status" -eq 2 ]
  [[ "$output" == *"<stdin>:"*"spec.config: '***hmac:00000000' is a masked secret that does not match the stored value"* ]]
  [ "$("$PCTL" get McpServer duckduckgo -o record | jq .revision)" = "$rev" ]
  # In clear, with --show-secrets, it round-trips as well.
  run sh -c '"$0" get McpServer duckduckgo -o json --show-secrets | "$0" apply -f -' "$PCTL"
  [ "$status" -eq 0 ]
  [ "$output" = "mcpserver/duckduckgo unchanged" ]
  # Offline the same rule holds, with the same key.
  stop_server
  run "$PCTL" apply -f - <<<"$bad"
  [ "$status" -eq 2 ]
  [[ "$output" == *"spec.config: '***hmac:00000000' is a masked secret"* ]]
  run sh -c '"$0" get McpServer duckduckgo -o yaml | "$0" apply -f -' "$PCTL"
  [ "$status" -eq 0 ]
  [ "$output" = "mcpserver/duckduckgo unchanged" ]
  run "$PCTL" get McpServer duckduckgo -o record --show-secrets
  [[ "$output" == *app-sEcReT-1* ]]
}

@test "users: a manifest without a password applies to an existing user; a new one is refused saying how" {
  populate
  run sh -c '"$0" get User "$1" -o json | "$0" apply -f -' "$PCTL" "$USER_ID"
  [ "$status" -eq 0 ]
  [ "$output" = "user/$USER_ID unchanged" ]
  # A changed field of an existing user is applied; the password stays.
  "$PCTL" get User "$USER_ID" -o json | jq '.spec.name = "renamed"' |
    "$PCTL" apply -f - | grep -qx "user/$USER_ID configured"
  curl -fsS -m 10 -H 'Content-Type: application/json' \
    --data-binary '{"identity":"rt@example.com","password":"rt-pass-123"}' \
    "$URL/api/collections/users/auth-with-password" | jq -e '.record.name == "renamed"'
  run "$PCTL" apply -f - <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: User
metadata: {name: newcomer}
spec: {email: newcomer@example.com}
YAML
  [ "$status" -eq 2 ]
  [[ "$output" == *"<stdin>:4:1: spec.password: there is no User 'newcomer', and a new one needs a password, which manifests never carry: create it with POST /api/collections/users/records"* ]]
  [ "$("$PCTL" get User -o record | jq length)" = 1 ]
}

@test "kinds only pocketctl writes: an unchanged copy applies as unchanged, a changed one is refused" {
  populate
  run sh -c '"$0" get ReconcileStatus llm-env -o yaml | sed "s/^  description: .*/  description: mine/" | "$0" apply -f -' "$PCTL"
  [ "$status" -eq 2 ]
  [[ "$output" == *"kind ReconcileStatus cannot be applied"*"only an unchanged copy of a stored one is accepted"* ]]
  run sh -c '"$0" get Sop -o json | jq ".items[0].spec.content = \"edited\"" | "$0" apply -f -' "$PCTL"
  [ "$status" -eq 2 ]
  [[ "$output" == *"kind Sop cannot be applied"*"approve a Proposal"* ]]
  roundtrip json Sop
  roundtrip yaml ReconcileStatus
}

@test "a value equal to a zero but not to the field's default survives into a fresh store" {
  populate
  stop_server
  # active defaults to true: false must be printed, or a fresh store
  # would make the permission active again
  printf 'apiVersion: pocketcoder.dev/v1\nkind: ToolPermission\nmetadata: {name: off}\nspec: {tool: bash, pattern: "*", action: deny, active: false, priority: 0}\n' |
    "$PCTL" apply -f -
  "$PCTL" get ToolPermission off -o yaml > "$BATS_TEST_TMPDIR/off.yaml"
  grep -qx '  active: false' "$BATS_TEST_TMPDIR/off.yaml"
  POCKETCTL_DATA="$BATS_TEST_TMPDIR/fresh" "$PCTL" apply -f "$BATS_TEST_TMPDIR/off.yaml"
  [ "$(POCKETCTL_DATA="$BATS_TEST_TMPDIR/fresh" "$PCTL" get ToolPermission off -o record | jq -r .data.active)" = false ]
}
