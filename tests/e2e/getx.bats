#!/usr/bin/env bats
# kubectl habits in get, delete, watch and diff: comma lists and all,
# short names, api-resources, explain, -l label selectors, -o name / wide /
# jsonpath, the schema's per-kind columns and delete -f, each offline and
# through a running server (where the selector is evaluated server-side).

load helpers

setup() {
  e2e_setup getx
  cat >"$T/m.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata:
  name: p1
  labels: {team: core, tier: web}
spec:
  body: one
---
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata:
  name: p2
  labels: {team: web}
spec:
  body: two
---
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata:
  name: p3
spec:
  body: three
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata:
  name: tp-bash
  labels: {team: core}
spec:
  tool: bash
  pattern: "ls *"
  action: deny
YAML
}

# Every check below, run once offline and once through a server.
both() {
  "$@"
  start_server
  "$@"
  stop_server
}

check_lists() {
  run pctl get prompt,tp -o name
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf 'aiprompt/p1\naiprompt/p2\naiprompt/p3\ntoolpermission/tp-bash')" ]
  # a kind given twice (short name and plural) lists once
  run pctl get tp,toolpermissions -o name
  [ "$output" = "toolpermission/tp-bash" ]
  # tables grouped per kind, names as kind/name
  run pctl get aiprompts,tp
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == NAME* ]]
  [[ "$output" == *"aiprompt/p1 "* ]]
  [[ "$output" == *"toolpermission/tp-bash "* ]]
  [ "$(grep -c '^NAME' <<<"$output")" = 2 ]
  # all: every kind that has records, a header each
  run pctl get all
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p2 "* ]]
  [[ "$output" == *"toolpermission/tp-bash "* ]]
  ! grep -q '^user/' <<<"$output"
  run pctl get prompt,gadget
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown kind 'gadget'"* ]]
  run pctl get prompt,tp p1
  [ "$status" -eq 2 ]
  [[ "$output" == *"a NAME needs one kind"* ]]
  # several names of one kind
  run pctl get prompt p1 p3 -o name
  [ "$output" = "$(printf 'aiprompt/p1\naiprompt/p3')" ]
}

@test "get: comma lists, all, short names, several names" {
  pctl apply -f "$T/m.yaml" >/dev/null
  both check_lists
}

check_selectors() {
  run pctl get prompt -l team=core -o name
  [ "$status" -eq 0 ]
  [ "$output" = "aiprompt/p1" ]
  run pctl get prompt -l 'team!=core' -o name
  [ "$output" = "$(printf 'aiprompt/p2\naiprompt/p3')" ]
  run pctl get prompt -l '!team' -o name
  [ "$output" = "aiprompt/p3" ]
  run pctl get prompt -l team -o name
  [ "$output" = "$(printf 'aiprompt/p1\naiprompt/p2')" ]
  run pctl get prompt --selector 'team in (core, web),tier notin (db)' -o name
  [ "$output" = "$(printf 'aiprompt/p1\naiprompt/p2')" ]
  run pctl get prompt,tp -l team=core -o name
  [ "$output" = "$(printf 'aiprompt/p1\ntoolpermission/tp-bash')" ]
  run pctl get prompt -l team=nobody -o name
  [ "$status" -eq 0 ]
  [ "$output" = "" ]
  # a selector that does not parse: exit 2, its position named
  run pctl get prompt -l 'team in core'
  [ "$status" -eq 2 ]
  [[ "$output" == *"label selector: expected '(' after in/notin at position 9"* ]]
  run pctl get prompt -l 'team=core,'
  [ "$status" -eq 2 ]
  [[ "$output" == *"position 11"* ]]
}

@test "get -l: every selector form, server-side and offline; a bad one exits 2" {
  pctl apply -f "$T/m.yaml" >/dev/null
  both check_selectors
}

@test "GET /api/v1/manifests/KIND?labelSelector= filters, and names a bad selector with a 400" {
  pctl apply -f "$T/m.yaml" >/dev/null
  start_server
  run curl -fsS -H "Authorization: $TOKEN" \
    "$URL/api/v1/manifests/tp?labelSelector=team%3Dcore"
  [ "$status" -eq 0 ]
  [ "$(jq -r '[.items[].metadata.name] | join(",")' <<<"$output")" = tp-bash ]
  run curl -sS -o "$T/body" -w '%{http_code}' -H "Authorization: $TOKEN" \
    "$URL/api/v1/manifests/aiprompts?labelSelector=a%3D%3D%3Db"
  [ "$output" = 400 ]
  grep -q 'label selector' "$T/body"
  grep -q 'position' "$T/body"
}

check_outputs() {
  run pctl get tp -o wide
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == *"TOOL"*"PATTERN"*"ACTION"*"ACTIVE"*"PRIORITY" ]]
  [[ "$output" == *"bash"*"ls *"*"deny"*"true"*"0"* ]]
  run pctl get tp
  [[ "${lines[0]}" == *"ACTION" ]]
  [[ "${lines[0]}" != *"PRIORITY"* ]]
  run pctl get prompt -o jsonpath='{.items[*].metadata.name}'
  [ "$status" -eq 0 ]
  [ "$output" = "p1 p2 p3" ]
  run pctl get prompt -o jsonpath='{range .items[*]}{.metadata.name}={.spec.body}{"\n"}{end}'
  [ "$output" = "$(printf 'p1=one\np2=two\np3=three')" ]
  run pctl get tp tp-bash -o jsonpath='{.spec.action}'
  [ "$output" = deny ]
  run pctl get tp tp-bash -o 'jsonpath={.metadata.labels.team}'
  [ "$output" = core ]
  # a template that does not compile: exit 2, nothing on stdout
  run --separate-stderr pctl get tp -o jsonpath='{.items[?(@.x)]}'
  [ "$status" -eq 2 ]
  [ "$output" = "" ]
  [[ "$stderr" == *"filters '[?(...)]' are not supported at position 8"* ]]
  run pctl get tp -o jsonpath='{range .items[*]}{.x}'
  [ "$status" -eq 2 ]
  [[ "$output" == *"{range} without {end}"* ]]
  run pctl get tp -o jsonpath
  [ "$status" -eq 2 ]
  [[ "$output" == *"needs a template"* ]]
}

@test "get -o wide, name and jsonpath; a jsonpath that does not compile exits 2" {
  bats_require_minimum_version 1.5.0
  pctl apply -f "$T/m.yaml" >/dev/null
  both check_outputs
}

@test "get: the kind's columns come from the schema (ACTION, STATUS, RUNNING/READY)" {
  pctl apply -f "$REPO/manifests" >/dev/null
  run pctl get mcp
  [[ "${lines[0]}" == *" STATUS" ]]
  [[ "$output" == *"duckduckgo"*"approved"* ]]
  run pctl get ct
  [[ "${lines[0]}" == *"RUNNING"*"READY" ]]
  run pctl get tp
  [[ "${lines[0]}" == *"TOOL"*"PATTERN"*"ACTION" ]]
  # the columns are the schema's, in its order (bad ones: test_schema_cli.c)
  run python3 - "$REPO/schema/collections.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
cols = [c for c in d["collections"] if c["name"] == "tool_permissions"][0]["columns"]
assert [c["header"] for c in cols][:3] == ["TOOL", "PATTERN", "ACTION"]
PY
  [ "$status" -eq 0 ]
}

@test "api-resources lists every kind with its short names; short names work in get, delete, watch, explain" {
  run pctl api-resources
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == NAME*SHORTNAMES*COLLECTION*KIND ]]
  grep -Eq '^toolpermissions +tp +tool_permissions +ToolPermission$' <<<"$output"
  grep -Eq '^mcpservers +mcp +mcp_servers +McpServer$' <<<"$output"
  [ "$(pctl api-resources -o name | wc -l)" = "$(pctl api-resources -o json | jq length)" ]
  [ "$(pctl api-resources -o json | jq -r '.[] | select(.kind=="CronJob") | .shortNames[0]')" = cj ]
  # manifests keep full kinds, as kubectl's do
  printf 'apiVersion: pocketcoder.dev/v1\nkind: tp\nmetadata: {name: x}\nspec: {tool: a, pattern: b, action: ask}\n' >"$T/short.yaml"
  run pctl apply -f "$T/short.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"kind 'tp'"* ]]
}

@test "explain KIND and KIND.FIELD: types, values, flags, relations, rules; an unknown field exits 2 with a suggestion" {
  run pctl explain tp
  [ "$status" -eq 0 ]
  [[ "$output" == *"KIND:        ToolPermission"* ]]
  [[ "$output" == *"action"*"<select: allow|ask|deny> -required-"* ]]
  [[ "$output" == *"agent"*"<relation -> ai_agents>"* ]]
  [[ "$output" == *"active"*"default=true"* ]]
  [[ "$output" == *"RULES:"* ]]
  [[ "$output" == *"create  @request.auth.role = \"admin\""* ]]
  run pctl explain User
  [[ "$output" == *"password"*"<password>"*"hidden"* ]]
  run pctl explain LlmKey.env_vars
  [ "$status" -eq 0 ]
  [[ "$output" == *"FIELD:    env_vars <json>"*"secret"* ]]
  run pctl explain toolpermission.spec.priority
  [ "$status" -eq 0 ]
  [[ "$output" == *"<number> default=0"*"integer"* ]]
  run pctl explain tp.acton
  [ "$status" -eq 2 ]
  [[ "$output" == *"ToolPermission has no field 'acton' (did you mean 'action'?)"* ]]
  run pctl explain ToolPermision
  [ "$status" -eq 2 ]
  [[ "$output" == *"did you mean 'ToolPermission'?"* ]]
  run pctl explain
  [ "$status" -eq 2 ]
}

check_delete() {
  pctl apply -f "$T/m.yaml" >/dev/null
  run pctl delete prompt p1 p2
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf 'aiprompt/p1 deleted\naiprompt/p2 deleted')" ]
  [ "$(pctl get prompt -o name)" = "aiprompt/p3" ]
  # one missing name deletes nothing
  pctl apply -f "$T/m.yaml" >/dev/null
  run pctl delete prompt p1 nobody
  [ "$status" -eq 2 ]
  [ "$(pctl get prompt -o name | wc -l)" = 3 ]
  run pctl delete prompt p1 nobody --ignore-not-found
  [ "$status" -eq 0 ]
  [ "$output" = "aiprompt/p1 deleted" ]
  pctl apply -f "$T/m.yaml" >/dev/null
  run pctl delete prompt -l team
  [ "$output" = "$(printf 'aiprompt/p1 deleted\naiprompt/p2 deleted')" ]
  run pctl delete prompt -l 'team in x'
  [ "$status" -eq 2 ]
  [[ "$output" == *"position"* ]]
  pctl apply -f "$T/m.yaml" >/dev/null
  run pctl delete -f "$T/m.yaml"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" = 4 ]
  [[ "$output" == *"toolpermission/tp-bash deleted"* ]]
  [ "$(pctl get prompt,tp -o name)" = "" ]
  run pctl delete -f "$T/m.yaml"
  [ "$status" -eq 2 ]
  run pctl delete -f "$T/m.yaml" --ignore-not-found
  [ "$status" -eq 0 ]
  run pctl delete prompt
  [ "$status" -eq 2 ]
  [[ "$output" == *"usage: pocketctl delete"* ]]
}

@test "delete: several names, -l, -f; a missing name deletes nothing" {
  both check_delete
}

check_diff() {
  run pctl diff -f "$T/changed.yaml" -l team=core
  [ "$status" -eq 1 ]
  [[ "$output" == *"+  body: uno"* ]]
  [[ "$output" != *"dos"* ]]
  run pctl diff -f "$T/changed.yaml" -l team=nobody
  [ "$status" -eq 0 ]
  run pctl diff -f "$T/changed.yaml" -l '=x'
  [ "$status" -eq 2 ]
  [[ "$output" == *"expected a label key at position 1"* ]]
}

@test "diff -l: only the documents whose labels match" {
  pctl apply -f "$T/m.yaml" >/dev/null
  sed 's/body: one/body: uno/; s/body: two/body: dos/' "$T/m.yaml" >"$T/changed.yaml"
  both check_diff
}

@test "watch -l prints only the matching records' events; a bad selector exits 2" {
  start_server
  run pctl watch prompt -l 'team in ('
  [ "$status" -eq 2 ]
  [[ "$output" == *"label selector"* ]]
  # the binary itself in the background (its pid, for the kill), fd 3
  # closed so that bats does not wait for it
  "$PCTL" watch prompt -l team=core --since 0 >"$T/watch.out" 2>&1 3>&- &
  WPID=$!
  sleep 2
  pctl apply -f "$T/m.yaml" >/dev/null
  for i in $(seq 1 100); do
    grep -q "aiprompt/p1" "$T/watch.out" && break
    sleep 0.1
  done
  kill "$WPID"
  wait "$WPID" || true
  grep -q "create aiprompt/p1" "$T/watch.out"
  ! grep -q "p2\|p3\|tp-bash" "$T/watch.out"
}

@test "users by email: get and delete User EMAIL, and a manifest's relation to a user by email" {
  load api
  start_server
  api POST /api/collections/users/records "$TOKEN" \
    '{"email":"alice@example.test","password":"alice-pass-123","passwordConfirm":"alice-pass-123","role":"user","name":"alice"}'
  [ "$code" = 200 ]
  ID="$(jq -r .id <<<"$body")"
  run pctl get User Alice@Example.test -o jsonpath='{.spec.email}'
  [ "$status" -eq 0 ]
  [ "$output" = alice@example.test ]
  run pctl get usr alice@example.test
  [[ "$output" == *"alice@example.test"*"user"* ]]
  printf 'apiVersion: pocketcoder.dev/v1\nkind: NotificationRule\nmetadata: {name: alice-rules}\nspec:\n  user: alice@example.test\n  rules: {}\n' >"$T/rule.yaml"
  run pctl apply -f "$T/rule.yaml"
  [ "$status" -eq 0 ]
  [ "$(pctl get nr alice-rules -o record | jq -r .data.user)" = "$ID" ]
  run pctl get User nobody@example.test
  [ "$status" -eq 2 ]
  stop_server
  # offline alike
  run pctl get User alice@example.test -o name
  [ "$status" -eq 0 ]
  [[ "$output" == user/* ]]
  run pctl delete User alice@example.test
  [ "$status" -eq 0 ]
  run pctl get User alice@example.test
  [ "$status" -eq 2 ]
}
