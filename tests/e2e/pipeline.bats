#!/usr/bin/env bats
# Input a pipeline can use: `apply -f -` and `diff -f -` read the standard
# input (any mix of documents, beside files too), offline and through the
# server; errors name <stdin>:LINE:COL and nothing is written.

load helpers

setup() {
  e2e_setup pipeline
  MIX='apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata: {name: helper}
spec: {body: "You help."}
---
apiVersion: pocketcoder.dev/v1
kind: AiModel
metadata: {name: small}
spec: {identifier: provider/small}
---
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: helper}
spec: {description: A helper, mode: subagent, prompt: helper, model: small}'
}

@test "apply -f - takes a mix of documents from stdin; diff -f - then finds nothing" {
  run "$PCTL" diff -f - <<<"$MIX"
  [ "$status" -eq 1 ]
  [[ "$output" == *"You help."* ]]
  run "$PCTL" apply -f - <<<"$MIX"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/helper created"* ]]
  [[ "$output" == *"aimodel/small created"* ]]
  [[ "$output" == *"aiagent/helper created"* ]]
  run "$PCTL" diff -f - <<<"$MIX"
  [ "$status" -eq 0 ]
  run "$PCTL" apply -f - <<<"$MIX"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/helper unchanged"* ]]
}

@test "stdin beside a file: both applied, a duplicate across them refused" {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: other}\nspec: {body: other}\n' >"$T/f.yaml"
  run "$PCTL" apply -f "$T/f.yaml" -f - <<<"$MIX"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/other created"* ]]
  [[ "$output" == *"aiagent/helper created"* ]]
  run "$PCTL" apply -f "$T/f.yaml" -f - <"$T/f.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"<stdin>:1:1: duplicate AiPrompt 'other' (first defined at $T/f.yaml:1:1)"* ]]
}

@test "an error on stdin names <stdin>:line:col and writes nothing, offline and through the server" {
  bad="$MIX
---
apiVersion: pocketcoder.dev/v1
kind: AiModel
metadata: {name: broken}
spec: {identifier: p/b, tempo: 3}"
  run "$PCTL" apply -f - <<<"$bad"
  [ "$status" -eq 2 ]
  [[ "$output" == *"<stdin>:19:"*"unknown field 'tempo'"* ]]
  run "$PCTL" get AiPrompt helper
  [ "$status" -ne 0 ]
  start_server
  run "$PCTL" apply -f - <<<"$bad"
  [ "$status" -eq 2 ]
  [[ "$output" == *"<stdin>:19:"* ]]
  run "$PCTL" apply -f - <<<"$MIX"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/helper created"* ]]
  run "$PCTL" get AiAgent helper -o yaml
  [[ "$output" == *"model: small"* ]]
}

@test "empty stdin is refused naming it" {
  run "$PCTL" apply -f - </dev/null
  [ "$status" -eq 2 ]
  [[ "$output" == *"'<stdin>': no documents"* ]]
}
