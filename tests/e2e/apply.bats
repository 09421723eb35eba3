#!/usr/bin/env bats
# apply / get / delete on the real binary with the default manifests.

load helpers

@test "apply creates every default record, a second apply changes nothing" {
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created"* ]]
  [[ "$output" == *"toolpermission/global-all-ask created"* ]]
  [[ "$output" == *"container/pocketcoder-opencode created"* ]]
  [[ "$output" == *"mcpserver/duckduckgo created"* ]]
  before="$(snapshot)"
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" != *created* ]]
  [[ "$output" != *configured* ]]
  [[ "$output" == *"aiagent/poco unchanged"* ]]
  [ "$(snapshot)" = "$before" ]
}

@test "a changed field is configured: generation and revision bump" {
  pctl apply -f "$REPO/manifests" >/dev/null
  gen1="$(pctl get aiagent poco -o record | grep '"generation"')"
  sed 's/temperature: 0.1/temperature: 0.3/' "$REPO/manifests/agents.yaml" > "$T/agents.yaml"
  run pctl apply -f "$T/agents.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco configured"* ]]
  [[ "$output" == *"aiprompt/poco-persona unchanged"* ]]
  gen2="$(pctl get aiagent poco -o record | grep '"generation"')"
  [ "$gen1" != "$gen2" ]
}

@test "get -o yaml prints manifests that apply takes back unchanged" {
  pctl apply -f "$REPO/manifests" >/dev/null
  pctl get toolpermission -o yaml > "$T/tp.yaml"
  pctl get aiagent poco -o yaml > "$T/agent.yaml"
  grep -q 'agent: poco' "$T/tp.yaml"
  grep -q 'prompt: poco-persona' "$T/agent.yaml"
  run pctl apply -f "$T/tp.yaml" -f "$T/agent.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" != *configured* ]]
  [[ "$output" != *created* ]]
}

@test "get shows a table, json, and fails cleanly on unknown kind or name" {
  pctl apply -f "$REPO/manifests" >/dev/null
  run pctl get aiagents
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == NAME* ]]
  [[ "$output" == *poco* ]]
  run pctl get AiAgent poco -o record
  [ "$status" -eq 0 ]
  [[ "$output" == *'"collection": "ai_agents"'* ]]
  run pctl get Gadget
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown kind 'Gadget'"* ]]
  run pctl get aiagent nobody
  [ "$status" -eq 2 ]
}

@test "dry run reports and writes nothing" {
  run pctl apply -f "$REPO/manifests" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created (dry run)"* ]]
  run pctl get aiagent -o record
  [[ "$output" != *poco* ]]
}

@test "relations resolve in any document order within one apply" {
  cat > "$T/m.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: helper}
spec: {mode: subagent, prompt: helper-prompt, model: helper-model}
---
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata: {name: helper-prompt}
spec: {body: "hi"}
---
apiVersion: pocketcoder.dev/v1
kind: AiModel
metadata: {name: helper-model}
spec: {identifier: "x/y"}
YAML
  run pctl apply -f "$T/m.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/helper created"* ]]
}

@test "delete refuses to leave a dangling relation, and deletes a free record" {
  pctl apply -f "$REPO/manifests" >/dev/null
  run pctl delete aiprompt poco-persona
  [ "$status" -eq 2 ]
  [[ "$output" == *ai_agents* ]]
  run pctl get aiprompt poco-persona
  [ "$status" -eq 0 ]
  run pctl delete mcpserver duckduckgo
  [ "$status" -eq 0 ]
  [[ "$output" == *"mcpserver/duckduckgo deleted"* ]]
  run pctl get mcpserver duckduckgo
  [ "$status" -eq 2 ]
}

@test "prune deletes what an earlier apply of the set created and is gone now" {
  mkdir -p "$T/set"
  for i in 1 2 3 4; do
    cat > "$T/set/p$i.yaml" <<YAML
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata: {name: p$i}
spec: {body: "prompt $i"}
YAML
  done
  run pctl apply -f "$T/set" --applyset demo
  [ "$status" -eq 0 ]
  rm "$T/set/p4.yaml"
  run pctl apply -f "$T/set" --applyset demo --prune
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p4 pruned"* ]]
  run pctl get aiprompt p4
  [ "$status" -eq 2 ]
  # Removing two of the three remaining is more than half: refused.
  rm "$T/set/p2.yaml" "$T/set/p3.yaml"
  run pctl apply -f "$T/set" --applyset demo --prune
  [ "$status" -eq 2 ]
  [[ "$output" == *"--force"* ]]
  run pctl get aiprompt p2
  [ "$status" -eq 0 ]
  run pctl apply -f "$T/set" --applyset demo --prune --force
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p2 pruned"* ]]
  [[ "$output" == *"aiprompt/p3 pruned"* ]]
  # A record outside the set is never pruned.
  cat > "$T/other.yaml" <<'YAML'
apiVersion: pocketcoder.dev/v1
kind: AiPrompt
metadata: {name: outsider}
spec: {body: "x"}
YAML
  pctl apply -f "$T/other.yaml" >/dev/null
  run pctl apply -f "$T/set" --applyset demo --prune
  [ "$status" -eq 0 ]
  run pctl get aiprompt outsider
  [ "$status" -eq 0 ]
}

@test "prune without an apply set is a usage error" {
  run pctl apply -f "$REPO/manifests" --prune
  [ "$status" -eq 2 ]
  [[ "$output" == *"--applyset"* ]]
}

@test "COMMAND --help, -h and help COMMAND print the usage and exit 0, touching nothing" {
  run pctl apply --help
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "usage: pocketctl apply -f PATH..."* ]]
  run pctl get -h
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "usage: pocketctl get KIND[,KIND...]|all [NAME...] [-l SELECTOR] [-o table|wide|name|json|yaml|record|jsonpath=TEMPLATE] [--show-managed] [--show-secrets]" ]]
  run pctl help serve
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "usage: pocketctl serve "* ]]
  run pctl help no-such-command
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown command 'no-such-command'"* ]]
  [ ! -e "$POCKETCTL_DATA" ]
  # -o is checked once, for every command that takes it
  run pctl get aiagent -o xml
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown output format 'xml' (table, wide, name, json, yaml, record or jsonpath)"* ]]
  run pctl status -o xml
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown output format 'xml' (text or json)"* ]]
}

# What migration 0006 (text digests) added, taken away again: the store
# of an older pocketctl.
UNDO_0006="DROP TRIGGER records_renamed; DROP INDEX field_owners_text; ALTER TABLE field_owners DROP COLUMN text_digest; DELETE FROM meta WHERE key = 'renames';"

@test "a store made before apply digests (migration level 3) opens, applies and upgrades" {
  pctl apply -f "$REPO/manifests" >/dev/null
  # Take the store back to what the pocketctl before digests left.
  sqlite3 "$POCKETCTL_DATA/pocket.db" \
    "$UNDO_0006 ALTER TABLE field_owners DROP COLUMN digest; ALTER TABLE field_owners DROP COLUMN digest_revision; PRAGMA user_version = 3;"
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" != *created* ]]
  [[ "$output" != *configured* ]]
  [ "$(sqlite3 "$POCKETCTL_DATA/pocket.db" 'PRAGMA user_version')" -ge 5 ]
  # That full-path apply stored the digests; the next one uses them.
  [ "$(sqlite3 "$POCKETCTL_DATA/pocket.db" 'SELECT count(digest) FROM field_owners')" -gt 0 ]
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco unchanged"* ]]
  id="$(sqlite3 "$POCKETCTL_DATA/pocket.db" "SELECT id FROM records WHERE collection = 'ai_agents' AND name = 'poco'")"
  [ -n "$id" ]
  [ "$(sqlite3 "$POCKETCTL_DATA/pocket.db" "SELECT count(digest) FROM field_owners WHERE id = '$id'")" -eq 1 ]
}

@test "a store with digests in their own table (migration level 4) keeps them in the ownership rows" {
  pctl apply -f "$REPO/manifests" >/dev/null
  db="$POCKETCTL_DATA/pocket.db"
  want="$(sqlite3 "$db" "SELECT collection, id, hex(digest), digest_revision FROM field_owners WHERE digest IS NOT NULL ORDER BY 1, 2")"
  [ -n "$want" ]
  # The layout migration 0004 made: digests in apply_digests, one of them
  # for a record without an ownership row.
  sqlite3 "$db" "$UNDO_0006 CREATE TABLE apply_digests (collection TEXT NOT NULL, id TEXT NOT NULL, digest BLOB NOT NULL, revision INTEGER NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
    CREATE TRIGGER apply_digests_forget AFTER DELETE ON records BEGIN DELETE FROM apply_digests WHERE collection = old.collection AND id = old.id; END;
    INSERT INTO apply_digests SELECT collection, id, digest, digest_revision FROM field_owners WHERE digest IS NOT NULL;
    ALTER TABLE field_owners DROP COLUMN digest; ALTER TABLE field_owners DROP COLUMN digest_revision;
    PRAGMA user_version = 4;"
  one="$(sqlite3 "$db" "SELECT id FROM apply_digests LIMIT 1")"
  sqlite3 "$db" "DELETE FROM field_owners WHERE id = '$one'"
  # A dry run opens the store read-write (migrating it) and writes nothing.
  run pctl apply --dry-run -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [ "$(sqlite3 "$db" 'PRAGMA user_version')" -eq 6 ]
  [ "$(sqlite3 "$db" "SELECT count(*) FROM sqlite_master WHERE name = 'apply_digests'")" -eq 0 ]
  [ "$(sqlite3 "$db" "SELECT collection, id, hex(digest), digest_revision FROM field_owners WHERE digest IS NOT NULL ORDER BY 1, 2")" = "$want" ]
  [ "$(sqlite3 "$db" "SELECT owners FROM field_owners WHERE id = '$one'")" = '{}' ]
  # ... and they still say "unchanged" without the full path: the
  # records' revisions do not move.
  before="$(sqlite3 "$db" 'SELECT max(revision) FROM changelog')"
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" != *created* ]]
  [[ "$output" != *configured* ]]
  [ "$(sqlite3 "$db" 'SELECT max(revision) FROM changelog')" = "$before" ]
}
