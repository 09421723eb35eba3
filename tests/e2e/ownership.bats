#!/usr/bin/env bats
# Field ownership (server-side apply, controller/apply.h): an apply set owns
# exactly the fields its documents set; what the app sets through the
# records API survives every re-apply and every restart of
# `serve --manifests`; a field dropped from a manifest is cleared; a field
# the app changed that a manifest sets is taken back and reported; two
# apply sets owning different fields of one record leave each other's
# fields alone. Real binary, real data directory, curl for HTTP.

load helpers

setup() {
  e2e_setup owners
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
  R="$T/root"
  ADMIN_EMAIL="admin@example.com" ADMIN_PASSWORD="admin-pass-123"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL="$ADMIN_EMAIL" POCKETCTL_ADMIN_PASSWORD="$ADMIN_PASSWORD")
  mkdir -p "$T/m"
  cat >"$T/m/github.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: github}
spec: {status: approved, image: mcp/github, reason: code search}
YAML
}


# mcp_field NAME FIELD: the stored value of one field, as JSON (secrets in
# clear: the CLI token may read them).
mcp_field() {
  "$PCTL" get McpServer "$1" -o yaml --show-managed --show-secrets >"$T/out.yaml"
  python3 - "$T/out.yaml" "$2" <<'PY'
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(json.dumps(doc["spec"].get(sys.argv[2])))
PY
}

# owner NAME FIELD: the manager metadata.managedFields names for spec.FIELD.
owner() {
  "$PCTL" get McpServer "$1" -o yaml --show-managed >"$T/own.yaml"
  python3 - "$T/own.yaml" "spec.$2" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for m in doc["metadata"].get("managedFields", []):
    if sys.argv[2] in m["fields"]:
        print(m["manager"])
PY
}

# patch_github JSON: PATCH the github record as the superuser, as the app's
# approve flow does.
patch_github() {
  local id tok auth
  auth="$(curl -sS -m 10 -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$ADMIN_EMAIL\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$URL/api/collections/_superusers/auth-with-password")"
  tok="$(jq -r '.token // empty' <<<"$auth")"
  SU_ID="$(jq -r '.record.id // empty' <<<"$auth")"
  [ -n "$tok" ] && [ -n "$SU_ID" ]
  id="$(curl -sS -m 10 -H "Authorization: $tok" \
    "$URL/api/collections/mcp_servers/records?filter=name%3D%27github%27" | jq -r '.items[0].id')"
  [ -n "$id" ] && [ "$id" != null ]
  run curl -sS -m 10 -o /dev/null -w '%{http_code}' -X PATCH \
    -H "Authorization: $tok" -H 'Content-Type: application/json' \
    --data-binary "$1" "$URL/api/collections/mcp_servers/records/$id"
  [ "$output" = 200 ]
}

@test "a secret the app sets survives apply and a restart of serve --manifests" {
  start_server -- --manifests "$T/m"
  wait_for 5 has "$R/mcp_config/docker-mcp.yaml" "mcp/github"
  patch_github '{"config":{"API_KEY":"sk-from-the-app"}}'
  wait_for 5 has "$R/mcp_config/mcp.env" "API_KEY=sk-from-the-app"
  [ "$(owner github config)" = "superuser:$SU_ID" ]
  [ "$(owner github image)" = "apply:default" ]

  # The CLI apply (through the server) leaves the app's field alone.
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [[ "$output" == "mcpserver/github unchanged" ]]
  [ "$(mcp_field github config)" = '{"API_KEY": "sk-from-the-app"}' ]

  # So does the apply at every start of serve --manifests.
  stop_server
  start_server -- --manifests "$T/m"
  [ "$(mcp_field github config)" = '{"API_KEY": "sk-from-the-app"}' ]
  wait_for 5 has "$R/mcp_config/mcp.env" "API_KEY=sk-from-the-app"
  stop_server

  # And the offline CLI.
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [ "$(mcp_field github config)" = '{"API_KEY": "sk-from-the-app"}' ]
}

@test "a field dropped from the manifest is cleared; one never owned is kept" {
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [ "$(mcp_field github reason)" = '"code search"' ]
  [ "$(owner github reason)" = "apply:default" ]
  sed -i 's/, reason: code search//' "$T/m/github.yaml"
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [[ "$output" == "mcpserver/github configured" ]]
  [ "$(mcp_field github reason)" = null ]
  [ -z "$(owner github reason)" ]
  [ "$(mcp_field github image)" = '"mcp/github"' ]
}

@test "a field the app changed and the manifest sets is taken back and reported" {
  start_server -- --manifests "$T/m"
  patch_github '{"image":"mcp/evil"}'
  [ "$(mcp_field github image)" = '"mcp/evil"' ]
  [ "$(owner github image)" = "superuser:$SU_ID" ]

  run "$PCTL" diff -f "$T/m"
  [ "$status" -eq 1 ]
  [[ "$output" == *"mcpserver/github would be configured (took back spec.image from superuser:$SU_ID)"* ]]
  [[ "$output" == *"mcp/evil"* ]]

  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [ "$output" = "mcpserver/github configured (took back spec.image from superuser:$SU_ID)" ]
  [ "$(mcp_field github image)" = '"mcp/github"' ]
  [ "$(owner github image)" = "apply:default" ]

  # Taken back once: the next apply has nothing to say.
  run "$PCTL" apply -f "$T/m"
  [ "$output" = "mcpserver/github unchanged" ]
}

@test "an unchanged re-apply still sees a later app edit and takes it back" {
  # The second apply is unchanged by its digest (apply_digests); the
  # app's edit after it bumps the record's revision, so the third apply
  # must read the record again, take the field back and say so.
  start_server
  run "$PCTL" apply -f "$T/m"
  [ "$output" = "mcpserver/github created" ]
  run "$PCTL" apply -f "$T/m"
  [ "$output" = "mcpserver/github unchanged" ]
  patch_github '{"image":"mcp/evil"}'
  run "$PCTL" apply -f "$T/m"
  [ "$status" -eq 0 ]
  [ "$output" = "mcpserver/github configured (took back spec.image from superuser:$SU_ID)" ]
  [ "$(mcp_field github image)" = '"mcp/github"' ]
  run "$PCTL" apply -f "$T/m"
  [ "$output" = "mcpserver/github unchanged" ]
}

@test "two apply sets owning different fields of one record do not clobber each other" {
  mkdir -p "$T/a" "$T/b"
  cat >"$T/a/g.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: shared}
spec: {image: mcp/shared}
YAML
  cat >"$T/b/g.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: McpServer
metadata: {name: shared}
spec: {reason: set by b}
YAML
  "$PCTL" apply --applyset a -f "$T/a"
  "$PCTL" apply --applyset b -f "$T/b"
  "$PCTL" apply --applyset a -f "$T/a"
  [ "$(mcp_field shared image)" = '"mcp/shared"' ]
  [ "$(mcp_field shared reason)" = '"set by b"' ]
  [ "$(owner shared image)" = "apply:a" ]
  [ "$(owner shared reason)" = "apply:b" ]
  # b dropping its field clears only that field.
  printf 'apiVersion: pocketcoder.dev/v1\nkind: McpServer\nmetadata: {name: shared}\nspec: {}\n' >"$T/b/g.yaml"
  "$PCTL" apply --applyset b -f "$T/b"
  [ "$(mcp_field shared reason)" = null ]
  [ "$(mcp_field shared image)" = '"mcp/shared"' ]
}

@test "get --show-managed lists managedFields; without -o yaml it is refused" {
  "$PCTL" apply -f "$T/m"
  run "$PCTL" get McpServer github -o yaml --show-managed
  [ "$status" -eq 0 ]
  [[ "$output" == *"managedFields:"* ]]
  [[ "$output" == *"manager: apply:default"* ]]
  [[ "$output" == *"spec.image"* ]]
  run "$PCTL" get McpServer github -o yaml
  [[ "$output" != *"managedFields"* ]]
  run "$PCTL" get McpServer github --show-managed
  [ "$status" -eq 2 ]
  [[ "$output" == *"--show-managed needs -o yaml"* ]]
}
