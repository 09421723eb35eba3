#!/usr/bin/env bats
# Unchanged text (apply.h, store.h "text digests"): a re-apply takes each
# piece of a file between "---" lines that an apply of the same text left
# as it is without parsing it, and gives the same answers as the full path
# in every other case.

load helpers

db() { sqlite3 "$POCKETCTL_DATA/pocket.db" "$@"; }
head_rev() { db 'SELECT coalesce(max(revision), 0) FROM changelog'; }

# set_yaml N: N prompts and N agents using them, one document each.
set_yaml() {
  local i
  for i in $(seq 1 "$1"); do
    printf -- '---\napiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata:\n  name: p%d\nspec:\n  body: "prompt %d"  # the body\n' "$i" "$i"
  done
  for i in $(seq 1 "$1"); do
    printf -- '---\napiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata: {name: a%d}\nspec:\n  description: "agent %d"\n  mode: subagent\n  prompt: p%d\n' "$i" "$i" "$i"
  done
}

@test "a re-apply of the same text is unchanged, keyed by each piece" {
  set_yaml 20 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  # every document is its piece's only one: each has a text digest
  [ "$(db 'SELECT count(text_digest) FROM field_owners')" -eq 40 ]
  before="$(head_rev)"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 40 ]
  [[ "$output" == *"aiagent/a7 unchanged"* ]]
  [ "$(head_rev)" = "$before" ]
  # the JSON result names every record as the full path does
  run pctl apply -f "$T/set.yaml" -o json
  [ "$status" -eq 0 ]
  id="$(db "SELECT id FROM records WHERE collection = 'ai_agents' AND name = 'a7'")"
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
assert r["unchanged"] == 40 and r["created"] == 0 and r["configured"] == 0, r
it = [i for i in r["items"] if i["name"] == "a7"][0]
assert it == {"kind": "AiAgent", "collection": "ai_agents", "name": "a7",
              "id": sys.argv[2], "action": "unchanged"}, it
' "$output" "$id"
}

@test "one changed piece is configured, the others unchanged" {
  set_yaml 20 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  before="$(head_rev)"
  sed -i 's/description: "agent 13"/description: "agent thirteen"/' "$T/set.yaml"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/a13 configured"* ]]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 39 ]
  [ "$(head_rev)" -eq $((before + 1)) ]
  [ "$(pctl get aiagent a13 -o jsonpath='{.spec.description}')" = "agent thirteen" ]
}

@test "a problem in a changed piece is reported at the file's line, as on a first apply" {
  set_yaml 20 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  sed -i 's/  description: "agent 17"/  descripton: "agent 17"/' "$T/set.yaml"
  line="$(grep -n 'descripton:' "$T/set.yaml" | cut -d: -f1)"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"set.yaml:$line:3: "*"descripton"* ]]
  shown="$output"
  # the same message from a store that has never seen the file
  POCKETCTL_DATA="$T/fresh" run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 2 ]
  [ "$output" = "$shown" ]
  # nothing was written
  [ "$(pctl get aiagent a17 -o jsonpath='{.spec.description}')" = "agent 17" ]
}

@test "a YAML syntax error in a changed piece: the file's line and column" {
  set_yaml 10 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  sed -i 's/  mode: subagent/  mode: [subagent/' "$T/set.yaml"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 2 ]
  shown="$output"
  POCKETCTL_DATA="$T/fresh" run pctl apply -f "$T/set.yaml"
  [ "$output" = "$shown" ]
}

@test "a comment edited: unchanged through the full path, the new text remembered" {
  set_yaml 10 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  id="$(db "SELECT id FROM records WHERE collection = 'ai_prompts' AND name = 'p4'")"
  old="$(db "SELECT hex(text_digest) FROM field_owners WHERE id = '$id'")"
  before="$(head_rev)"
  sed -i 's/body: "prompt 4"  # the body/body: "prompt 4"  # the fourth body/' "$T/set.yaml"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p4 unchanged"* ]]
  [ "$(head_rev)" = "$before" ]
  new="$(db "SELECT hex(text_digest) FROM field_owners WHERE id = '$id'")"
  [ -n "$new" ]
  [ "$new" != "$old" ]
}

@test "a piece naming a record another piece of the same apply names is a duplicate" {
  set_yaml 5 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  printf -- '---\napiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: p2}\nspec: {body: other}\n' >> "$T/set.yaml"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"duplicate AiPrompt 'p2' (first defined at $T/set.yaml:9:1)"* ]]
}

@test "a record written by another since is not taken as unchanged" {
  set_yaml 3 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  start_server
  id="$(db "SELECT id FROM records WHERE collection = 'ai_agents' AND name = 'a2'")"
  su_api PATCH "/api/collections/ai_agents/records/$id" '{"description": "from the app"}'
  [ "$CODE" = 200 ]
  stop_server
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/a2 configured (took back spec.description from"* ]]
  [ "$(pctl get aiagent a2 -o jsonpath='{.spec.description}')" = "agent 2" ]
}

@test "after a rename, a relation's name in unchanged text means the record named so now" {
  set_yaml 2 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  old="$(db "SELECT id FROM records WHERE collection = 'ai_prompts' AND name = 'p1'")"
  start_server
  su_api PATCH "/api/collections/ai_prompts/records/$old" '{"name": "p9"}'
  [ "$CODE" = 200 ]
  stop_server
  # p1 is created anew, and agent a1's unchanged text "prompt: p1" now
  # names that one
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p1 created"* ]]
  [[ "$output" == *"aiagent/a1 configured"* ]]
  [[ "$output" == *"aiagent/a2 unchanged"* ]]
  new="$(db "SELECT id FROM records WHERE collection = 'ai_prompts' AND name = 'p1'")"
  [ "$new" != "$old" ]
  [ "$(db "SELECT json_extract(data, '\$.prompt') FROM records WHERE collection = 'ai_agents' AND name = 'a1'")" = "$new" ]
  # and the next apply takes the short cut again
  run pctl apply -f "$T/set.yaml"
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 4 ]
}

@test "another apply set or actor does not take this one's text as its own" {
  set_yaml 3 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  run pctl apply --applyset other -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  # the set's own full path: unchanged data, its ownership recorded
  [[ "$output" != *created* ]]
  run pctl get aiagent a1 -o yaml --show-managed
  [[ "$output" == *"apply:other"* ]]
}

@test "files with a directive, JSON files and lists are parsed whole" {
  { printf '%%YAML 1.1\n'; set_yaml 2; } > "$T/directive.yaml"
  printf '{"apiVersion": "pocketcoder.dev/v1", "kind": "AiModel", "metadata": {"name": "m1"}, "spec": {"identifier": "p/m1"}}\n' > "$T/model.json"
  printf 'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: pocketcoder.dev/v1, kind: AiModel, metadata: {name: m2}, spec: {identifier: p/m2}}\n- {apiVersion: pocketcoder.dev/v1, kind: AiModel, metadata: {name: m3}, spec: {identifier: p/m3}}\n' > "$T/list.yaml"
  for f in directive.yaml model.json list.yaml; do
    run pctl apply -f "$T/$f"
    [ "$status" -eq 0 ]
    run pctl apply -f "$T/$f"
    [ "$status" -eq 0 ]
    [[ "$output" != *created* ]]
    [[ "$output" != *configured* ]]
  done
  [ "$(db 'SELECT count(text_digest) FROM field_owners')" -eq 0 ]
}

@test "through the server: the same short cut, the same messages" {
  set_yaml 10 > "$T/set.yaml"
  start_server
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [ "$(db 'SELECT count(text_digest) FROM field_owners')" -eq 20 ]
  before="$(db 'SELECT max(revision) FROM records')"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 20 ]
  [ "$(db 'SELECT max(revision) FROM records')" = "$before" ]
  sed -i 's/  description: "agent 7"/  descripton: "agent 7"/' "$T/set.yaml"
  line="$(grep -n 'descripton:' "$T/set.yaml" | cut -d: -f1)"
  run pctl apply -f "$T/set.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"set.yaml:$line:3: "*"descripton"* ]]
}

@test "the watched directory (--manifests DIR --watch) re-applies by the same short cut" {
  mkdir -p "$T/m"
  set_yaml 10 > "$T/m/set.yaml"
  start_server --manifests "$T/m" --watch
  last_apply() {
    su_api GET /api/v1/status
    python3 -c 'import json, sys; a = json.load(sys.stdin)["manifests"].get("lastApply", {}); print(a.get("created", 0), a.get("configured", 0), a.get("unchanged", 0))' <<<"$BODY"
  }
  wait_for 10 sh -c "[ \"\$(sqlite3 '$POCKETCTL_DATA/pocket.db' 'SELECT count(text_digest) FROM field_owners')\" = 20 ]"
  before="$(db 'SELECT max(revision) FROM records')"
  # a new file: its two records created, the set's 20 unchanged
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiModel\nmetadata: {name: w1}\nspec: {identifier: p/w1}\n---\napiVersion: pocketcoder.dev/v1\nkind: AiModel\nmetadata: {name: w2}\nspec: {identifier: p/w2}\n' > "$T/m/more.yaml"
  wait_for 10 sh -c "[ \"\$(sqlite3 '$POCKETCTL_DATA/pocket.db' 'SELECT count(text_digest) FROM field_owners')\" = 22 ]"
  last_apply_is() { [ "$(last_apply)" = "$1" ]; }
  wait_for 5 last_apply_is "2 0 20"
  [ "$(db "SELECT count(*) FROM records WHERE revision > $before AND collection IN ('ai_prompts', 'ai_agents')")" -eq 0 ]
}

@test "with an apply set and prune, unparsed documents stay members" {
  set_yaml 10 > "$T/set.yaml"
  pctl apply --applyset s --prune -f "$T/set.yaml" >/dev/null
  # the same text again: all unchanged, nothing pruned
  run pctl apply --applyset s --prune -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 20 ]
  [[ "$output" != *pruned* ]]
  # the last agent's piece taken out: that one record pruned, no other
  python3 - "$T/set.yaml" <<'PY'
import sys
p = sys.argv[1]
pieces = open(p).read().split("---\n")
open(p, "w").write("---\n".join(pieces[:-1]))
PY
  run pctl apply --applyset s --prune -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/a10 pruned"* ]]
  [ "$(grep -c ' pruned$' <<<"$output")" -eq 1 ]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 19 ]
  [ "$(db "SELECT count(*) FROM applysets WHERE name = 's'")" -eq 19 ]
}

@test "another build of pocketctl does not take the text digests of this one" {
  command -v objcopy >/dev/null || skip "objcopy (binutils) not installed"
  set_yaml 3 > "$T/set.yaml"
  pctl apply -f "$T/set.yaml" >/dev/null
  mine="$(db 'SELECT group_concat(hex(text_digest)) FROM field_owners ORDER BY id')"
  # the same program without its build id: another build as far as
  # anyone can tell
  objcopy --remove-section=.note.gnu.build-id "$PCTL" "$T/other"
  before="$(head_rev)"
  run "$T/other" apply -f "$T/set.yaml"
  [ "$status" -eq 0 ]
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 6 ]
  [ "$(head_rev)" = "$before" ]
  theirs="$(db 'SELECT group_concat(hex(text_digest)) FROM field_owners ORDER BY id')"
  [ "$theirs" != "$mine" ]
  run pctl apply -f "$T/set.yaml"
  [ "$(grep -c ' unchanged$' <<<"$output")" -eq 6 ]
  [ "$(db 'SELECT group_concat(hex(text_digest)) FROM field_owners ORDER BY id')" = "$mine" ]
}
