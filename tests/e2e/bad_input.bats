#!/usr/bin/env bats
# Bad manifests: a clear message with file:line:column, exit 2, nothing written.

load helpers

doc() {  # doc KIND NAME SPEC-LINES...
  printf 'apiVersion: pocketcoder.dev/v1\nkind: %s\nmetadata:\n  name: %s\nspec:\n' "$1" "$2"
  shift 2
  local l
  for l in "$@"; do printf '  %s\n' "$l"; done
}

# Apply the default manifests plus a bad file; check exit 2, the message,
# and that the store is exactly as before.
expect_rejected() {  # expect_rejected FILE PATTERN
  pctl apply -f "$REPO/manifests" >/dev/null
  local before; before="$(snapshot)"
  run pctl apply -f "$REPO/manifests" -f "$1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$2"* ]]
  [ "$(snapshot)" = "$before" ]
}

@test "malformed YAML names file:line:column" {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: x\nspec: {}\n' > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "bad.yaml:"
}

@test "unknown kind" {
  doc Gadget g 'a: 1' > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "Gadget"
}

@test "unknown field names the field and its position" {
  { doc AiPrompt p 'body: hi'; printf '  colour: blue\n'; } > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "bad.yaml:7:"
  [[ "$output" == *colour* ]]
}

@test "wrong type" {
  doc AiAgent a2 'temperature: "hot"' > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "temperature"
}

@test "select value outside its list" {
  doc AiAgent a3 'mode: sandbox_agent' > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "sandbox_agent"
  [[ "$output" == *"bad.yaml:6:"* ]]
}

@test "duplicate names in one apply" {
  { doc AiPrompt twin 'body: a'; echo '---'; doc AiPrompt twin 'body: b'; } > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "twin"
}

@test "relation to a missing record" {
  doc AiAgent a4 'prompt: no-such-prompt' > "$T/bad.yaml"
  expect_rejected "$T/bad.yaml" "no-such-prompt"
  [[ "$output" == *"bad.yaml:6:"* ]]
}

@test "invalid UTF-8" {
  { doc AiPrompt u 'body: x'; printf '  description: \xff\xfe\n'; } > "$T/bad.yaml"
  pctl apply -f "$REPO/manifests" >/dev/null
  before="$(snapshot)"
  run pctl apply -f "$T/bad.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *bad.yaml* ]]
  [ "$(snapshot)" = "$before" ]
}

@test "an empty file" {
  : > "$T/empty.yaml"
  expect_rejected "$T/empty.yaml" "empty.yaml"
}

@test "a 100 MB file is refused without reading it" {
  truncate -s 100M "$T/huge.yaml"
  expect_rejected "$T/huge.yaml" "huge.yaml"
}

@test "a symlink loop in the manifests directory" {
  mkdir -p "$T/m/sub"
  doc AiPrompt looped 'body: x' > "$T/m/p.yaml"
  ln -s .. "$T/m/sub/loop"
  expect_rejected "$T/m" "loop"
}

@test "a bad document anywhere means nothing of the apply is written" {
  { doc AiPrompt fine 'body: ok'; echo '---'; doc AiAgent broken 'mode: nope'; } > "$T/bad.yaml"
  run pctl apply -f "$T/bad.yaml"
  [ "$status" -eq 2 ]
  run pctl get aiprompt fine
  [ "$status" -eq 2 ]
}

@test "a missing path" {
  run pctl apply -f "$T/nope.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *nope.yaml* ]]
}
