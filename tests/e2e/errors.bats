#!/usr/bin/env bats
# Every validation error in one pass (manifest.c, apply.c, suggest.c):
# `apply` and `diff` report all the problems of all the files, each with
# FILE:LINE:COL (of the key for an unknown one, of the value for a bad one,
# of the mapping's key for a missing field), a unique
# clash names the other record KIND/NAME, unknown kinds and fields get a
# "did you mean" from the schema, nothing is written, exit 2 - offline,
# through a server (the same lines; POST /api/v1/apply answers them all
# in one JSON body) and in the watched checkout's Degraded condition.

load helpers

setup() {
  e2e_setup errs
  mkdir -p "$T/m"
  # a.yaml: the agent, a misspelt kind (1), a misspelt field whose
  # required twin is then missing (2, 3).
  cat >"$T/m/a.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata:
  name: poco
spec:
  mode: primary
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermision
metadata:
  name: p1
spec:
  tool: bash
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata:
  name: p2
spec:
  agent: poco
  tool: bash
  patern: "*"
  action: ask
YAML
  # b.yaml: a select value out of its list (4), and a unique clash with
  # p3 of the same apply (5).
  cat >"$T/m/b.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata:
  name: p3
spec:
  agent: poco
  tool: bash
  pattern: "*"
  action: ask
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata:
  name: p4
spec:
  agent: poco
  tool: git
  pattern: "*"
  action: maybe
---
apiVersion: pocketcoder.dev/v1
kind: ToolPermission
metadata:
  name: p5
spec:
  agent: poco
  tool: bash
  pattern: "*"
  action: deny
YAML
}

# expect_five OUTPUT DIR: the five lines for the files under DIR, in file
# and line order, and the count.
expect_five() {
  local out="$1" d="$2"
  [ "$(grep -c '^pocketctl: ' <<<"$out")" -eq 6 ] || { echo "$out"; return 1; }
  grep -qxF "pocketctl: $d/a.yaml:9:7: unknown kind 'ToolPermision' (did you mean 'ToolPermission'?)" <<<"$out"
  grep -qxF "pocketctl: $d/a.yaml:19:1: spec.pattern: missing required value" <<<"$out"
  grep -qxF "pocketctl: $d/a.yaml:22:3: spec.patern: unknown field 'patern' (did you mean 'pattern'?)" <<<"$out"
  grep -qxF "pocketctl: $d/b.yaml:19:11: spec.action: value 'maybe' is not one of allow|ask|deny" <<<"$out"
  grep -qxF "pocketctl: $d/b.yaml:26:10: spec.agent: value ('poco', 'bash', '*') is not unique for tool_permissions (agent, tool, pattern): ToolPermission/p3 ($d/b.yaml:1:1) has it" <<<"$out"
  [ "$(tail -n 1 <<<"$out")" = "pocketctl: 5 errors, nothing written" ]
  [ "$(grep -o '[ab].yaml:[0-9]*' <<<"$out" | tr '\n' ' ')" = \
    "a.yaml:9 a.yaml:19 a.yaml:22 b.yaml:19 b.yaml:26 b.yaml:1 " ]
}

@test "five errors across two files: all reported with positions, nothing written, exit 2" {
  run pctl apply -f "$T/m/a.yaml" -f "$T/m/b.yaml"
  [ "$status" -eq 2 ]
  expect_five "$output" "$T/m"
  run pctl get AiAgent
  [[ "$output" != *poco* ]]
  run pctl get ToolPermission
  [[ "$output" != *p3* ]]
  # diff checks the same way.
  run pctl diff -f "$T/m"
  [ "$status" -eq 2 ]
  expect_five "$output" "$T/m"
}

@test "a unique clash with a stored record names it KIND/NAME" {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata: {name: poco}\nspec: {mode: primary}\n---\napiVersion: pocketcoder.dev/v1\nkind: ToolPermission\nmetadata: {name: first}\nspec: {agent: poco, tool: bash, pattern: "*", action: ask}\n' >"$T/first.yaml"
  pctl apply -f "$T/first.yaml"
  printf 'apiVersion: pocketcoder.dev/v1\nkind: ToolPermission\nmetadata: {name: second}\nspec: {agent: poco, tool: bash, pattern: "*", action: deny}\n' >"$T/second.yaml"
  run pctl apply -f "$T/second.yaml"
  [ "$status" -eq 2 ]
  [ "$output" = "pocketctl: $T/second.yaml:4:15: spec.agent: value ('poco', 'bash', '*') is not unique for tool_permissions (agent, tool, pattern): ToolPermission/first has it" ]
  ! pctl get ToolPermission second >/dev/null 2>&1
}

@test "did you mean: case-only and misspelt kinds, top-level and metadata keys" {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: toolpermision\nmetadat: {name: x}\nspec: {}\n---\napiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: y, lables: {}}\nspec: {Body: hi}\n' >"$T/dym.yaml"
  run pctl apply -f "$T/dym.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown key 'metadat' (did you mean 'metadata'?)"* ]]
  [[ "$output" == *"unknown kind 'toolpermision' (did you mean 'ToolPermission'?)"* ]]
  [[ "$output" == *"metadata key 'lables' is not supported (did you mean 'labels'?)"* ]]
  # A document whose envelope is bad: its spec is not checked.
  [[ "$output" != *"'Body'"* ]]
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: y}\nspec: {Body: hi}\n' >"$T/case.yaml"
  run pctl apply -f "$T/case.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"case.yaml:4:8: spec.Body: unknown field 'Body' (did you mean 'body'?)"* ]]
  [[ "$output" == *"case.yaml:4:1: spec.body: missing required value"* ]]
}

@test "through a server: the same lines, and POST /api/v1/apply lists every error" {
  run pctl --offline apply -f "$T/m/a.yaml" -f "$T/m/b.yaml"
  [ "$status" -eq 2 ]
  offline="$output"
  start_server
  run pctl apply -f "$T/m/a.yaml" -f "$T/m/b.yaml"
  [ "$status" -eq 2 ]
  expect_five "$output" "$T/m"
  [ "$output" = "$offline" ]
  run pctl get AiAgent
  [[ "$output" != *poco* ]]

  body="$(python3 -c 'import json,sys; print(json.dumps({"files": [{"name": n, "text": open(p).read()} for n, p in (("a.yaml", sys.argv[1]), ("b.yaml", sys.argv[2]))]}))' "$T/m/a.yaml" "$T/m/b.yaml")"
  code="$(curl -sS -o "$T/reply.json" -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/vnd.pocketctl.files+json' --data-binary "$body" "$URL/api/v1/apply")"
  [ "$code" = 400 ]
  python3 - "$T/reply.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == 400, r
assert r["errorCount"] == 5, r
e = r["errors"]
assert [(x["file"], x["line"], x["column"]) for x in e] == [
    ("a.yaml", 9, 7), ("a.yaml", 19, 1), ("a.yaml", 22, 3),
    ("b.yaml", 19, 11), ("b.yaml", 26, 10)], e
# The PocketBase shape describes the first of them.
assert r["message"] == e[0]["message"], r
assert r["message"].startswith("a.yaml:9:7: unknown kind 'ToolPermision'"), r
assert r["data"] == {"kind": {"code": "validation_invalid_value", "message": r["message"]}}, r
assert e[2]["field"] == "spec.patern", e
assert "ToolPermission/p3 (b.yaml:1:1)" in e[4]["message"], e
PY
}

degraded_message() {
  su_api GET /api/v1/status
  python3 -c '
import json, sys
for c in json.load(sys.stdin)["manifests"]["conditions"]:
    if c["type"] == "Degraded" and c["status"] == "True":
        print(c["message"])' <<<"$BODY"
}

degraded() { [ -n "$(degraded_message)" ]; }

@test "the watched checkout: Degraded gives the count and the first errors, nothing applied" {
  mkdir -p "$T/w"
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: one}\nspec: {body: one}\n' >"$T/w/one.yaml"
  start_server --manifests "$T/w" --watch
  pctl get AiPrompt one >/dev/null
  { cat "$T/m/a.yaml"
    printf -- '---\napiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: three}\nspec: {body: three}\n'
  } >"$T/two.yaml"
  mv "$T/two.yaml" "$T/w/two.yaml"
  wait_for 20 degraded
  msg="$(degraded_message)"
  [ "$msg" = "3 errors: $T/w/two.yaml:9:7: unknown kind 'ToolPermision' (did you mean 'ToolPermission'?); $T/w/two.yaml:19:1: spec.pattern: missing required value; $T/w/two.yaml:22:3: spec.patern: unknown field 'patern' (did you mean 'pattern'?)" ] || { echo "$msg"; false; }
  # Nothing of the file was applied, not even its good documents.
  ! pctl get AiPrompt three >/dev/null 2>&1
  ! pctl get AiAgent poco >/dev/null 2>&1
}
