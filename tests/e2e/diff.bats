#!/usr/bin/env bats
# pocketctl diff: kubectl exit codes (0 same, 1 different, 2 error).

load helpers

@test "diff exits 1 with a readable diff before apply and 0 after" {
  run pctl diff -f "$REPO/manifests"
  [ "$status" -eq 1 ]
  [[ "$output" == *"+kind: AiAgent"* ]]
  pctl apply -f "$REPO/manifests" >/dev/null
  run pctl diff -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "diff shows the changed field only and writes nothing" {
  pctl apply -f "$REPO/manifests" >/dev/null
  sed 's/temperature: 0.1/temperature: 0.7/' "$REPO/manifests/agents.yaml" > "$T/agents.yaml"
  before="$(snapshot)"
  run pctl diff -f "$T/agents.yaml"
  [ "$status" -eq 1 ]
  [[ "$output" == *"-  temperature: 0.1"* ]]
  [[ "$output" == *"+  temperature: 0.7"* ]]
  [ "$(snapshot)" = "$before" ]
}

@test "diff exits 2 on bad input" {
  printf 'kind: [\n' > "$T/bad.yaml"
  run pctl diff -f "$T/bad.yaml"
  [ "$status" -eq 2 ]
}
