#!/usr/bin/env bats
# The watched checkout prunes (reconcilers/rec_manifests.c): with
# `serve --manifests DIR --watch` the directory is an apply set, named
# after it or given with --applyset, so `git rm` of a manifest removes its
# record; removing more than half of the set at once trips the half-set
# guard, a Degraded condition naming the count, and deletes nothing.

load helpers

setup() {
  e2e_setup prune
  command -v git >/dev/null || skip "git not installed"
  mkdir -p "$T/checkout"
  for n in one two three four; do
    printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: %s}\nspec: {body: "prompt %s"}\n' \
      "$n" "$n" >"$T/checkout/$n.yaml"
  done
  git -C "$T/checkout" init -q
  commit init
}

commit() {
  git -C "$T/checkout" -c user.email=t@e -c user.name=t add -A
  git -C "$T/checkout" -c user.email=t@e -c user.name=t commit -qm "$1"
}

status_json() {
  curl -sS -m 10 -H "Authorization: $TOKEN" "$URL/api/v1/status"
}

# manifests_field KEY: a top-level field of the manifests status.
manifests_field() {
  status_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"].get(sys.argv[1]))' "$1"
}

# degraded_message: the manifests Degraded condition's message when True.
degraded_message() {
  status_json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["manifests"]["conditions"]:
    if c["type"] == "Degraded" and c["status"] == "True":
        print(c["message"])'
}

gone() { ! "$PCTL" get AiPrompt "$1" >/dev/null 2>&1; }

@test "git rm of a manifest in the watched checkout removes its record" {
  start_server --manifests "$T/checkout" --watch
  wait_for 5 sh -c "[ \"\$(curl -sS -H 'Authorization: $TOKEN' '$URL/api/v1/status' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"manifests\"].get(\"applyset\"))')\" = checkout ]"
  "$PCTL" get AiPrompt two >/dev/null
  git -C "$T/checkout" rm -q two.yaml
  commit "drop two"
  wait_for 5 gone two
  "$PCTL" get AiPrompt one >/dev/null
  "$PCTL" get AiPrompt three >/dev/null
  [ "$(manifests_field lastApply | python3 -c 'import ast,sys; print(ast.literal_eval(sys.stdin.read())["pruned"])')" = 1 ]
  # A record the checkout never declared is not the set's: it stays.
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: mine}\nspec: {body: mine}\n' >"$T/mine.yaml"
  "$PCTL" apply -f "$T/mine.yaml"
  git -C "$T/checkout" rm -q three.yaml
  commit "drop three"
  wait_for 5 gone three
  "$PCTL" get AiPrompt mine >/dev/null
}

@test "--applyset names the set; a restart keeps pruning the same set" {
  start_server --manifests "$T/checkout" --watch --applyset prompts
  wait_for 5 sh -c "curl -sS -H 'Authorization: $TOKEN' '$URL/api/v1/status' | grep -q '\"applyset\": *\"prompts\"'"
  stop_server
  git -C "$T/checkout" rm -q one.yaml
  commit "drop one while stopped"
  start_server --manifests "$T/checkout" --watch --applyset prompts
  wait_for 5 gone one
  "$PCTL" get AiPrompt four >/dev/null
}

@test "removing more than half of the set trips the guard: Degraded with the count, nothing deleted" {
  start_server --manifests "$T/checkout" --watch
  wait_for 5 sh -c "curl -sS -H 'Authorization: $TOKEN' '$URL/api/v1/status' | grep -q '\"applyset\": *\"checkout\"'"
  git -C "$T/checkout" rm -q one.yaml two.yaml three.yaml
  commit "drop three of four"
  wait_for 5 sh -c "curl -sS -H 'Authorization: $TOKEN' '$URL/api/v1/status' | grep -q 'prune would delete 3 of the 4'"
  [[ "$(degraded_message)" == *"prune would delete 3 of the 4 records in apply set 'checkout'"* ]]
  for n in one two three four; do "$PCTL" get AiPrompt "$n" >/dev/null; done
}

@test "serve --applyset without --watch is refused" {
  run "$PCTL" serve --manifests "$T/checkout" --applyset x
  [ "$status" -eq 2 ]
  [[ "$output" == *"--applyset needs --manifests DIR --watch"* ]]
}
