#!/usr/bin/env bats
# pocketctl backup / restore and the server's backups API, end to end:
# online backups under a writer, the restore's checks and what it keeps
# aside, a backup killed mid-way, and the backups endpoint over curl.

load helpers

setup() {
  e2e_setup backup
}

teardown() {
  stop_server
  [ -z "${WRITER_PID:-}" ] || kill "$WRITER_PID" 2>/dev/null || true
  rm -rf "$T"
}

# model NAME: a one-record manifest file for AiModel NAME, printed path.
model() {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiModel\nmetadata: {name: %s}\nspec: {identifier: p/%s}\n' \
    "$1" "$1" >"$T/$1.yaml"
  echo "$T/$1.yaml"
}

# models N FILE: N AiModel documents big-N-i in one manifest.
models() {
  python3 - "$1" >"$2" <<'PY'
import sys
n = int(sys.argv[1])
print("\n---\n".join(
    f"apiVersion: pocketcoder.dev/v1\nkind: AiModel\nmetadata: {{name: big-{i}}}\n"
    f"spec: {{identifier: provider/model-{i}-with-a-longer-identifier}}"
    for i in range(n)))
PY
}

# names DB: the AiModel names in the store file DB, sorted.
names() {
  sqlite3 "$1" "SELECT name FROM records WHERE collection = 'ai_models' ORDER BY name"
}

@test "offline backup writes DATA/backups/pocket-<UTC>-r<rev>.db holding the records" {
  pctl apply -f "$(model m1)"
  pctl apply -f "$(model m2)"
  run pctl backup -o json
  [ "$status" -eq 0 ]
  path="$(echo "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
  rev="$(echo "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])')"
  [ "$rev" -eq 2 ]
  [[ "$path" =~ ^$POCKETCTL_DATA/backups/pocket-[0-9]{8}T[0-9]{6}Z-r2\.db$ ]]
  [ "$(names "$path" | tr '\n' ' ')" = "m1 m2 " ]
  [ "$(sqlite3 "$path" 'PRAGMA integrity_check')" = ok ]
  # a single self-contained file: no WAL beside it
  [ ! -e "$path-wal" ]
  # an existing directory keeps its mode; one made for the backups is 0700
  chmod 0755 "$T"
  pctl backup --to "$T/x.db" >/dev/null
  [ "$(stat -c %a "$T")" = 755 ]
  [ "$(stat -c %a "$POCKETCTL_DATA/backups")" = 700 ]
  [ "$(stat -c %a "$T/x.db")" = 600 ]
  run pctl backup --to "$T/nodir/x.db"
  [ "$status" -eq 2 ]
  [[ "$output" == *"--to '$T/nodir/x.db'"* ]]
}

@test "online backup goes through the server and holds every write acknowledged before it" {
  start_server
  (
    i=0
    while :; do
      "$PCTL" apply -f "$(model "w-$i")" >/dev/null 2>&1 && echo "w-$i" >>"$T/acked"
      i=$((i + 1))
    done
  ) &
  WRITER_PID=$!
  for i in $(seq 1 100); do
    [ -f "$T/acked" ] && [ "$(wc -l <"$T/acked")" -ge 5 ] && break
    sleep 0.1
  done
  cp "$T/acked" "$T/before"
  run pctl backup --to "$T/online.db"
  [ "$status" -eq 0 ]
  [[ "$output" == "backup $T/online.db: "*" bytes, revision "* ]]
  kill "$WRITER_PID"; wait "$WRITER_PID" 2>/dev/null || true; WRITER_PID=""
  [ "$(wc -l <"$T/before")" -ge 5 ]
  names "$T/online.db" >"$T/in-backup"
  missing="$(sort "$T/before" | comm -23 - "$T/in-backup")"
  [ -z "$missing" ]
  [ "$(sqlite3 "$T/online.db" 'PRAGMA integrity_check')" = ok ]
  # the list endpoint; superusers only
  run pctl backup
  [ "$status" -eq 0 ]
  run curl -sS -H "Authorization: $TOKEN" "$URL/api/v1/backups"
  [[ "$output" == '[{"key":"pocket-'*'-r'*'.db","size":'* ]]
  run curl -sS -o /dev/null -w '%{http_code}' "$URL/api/v1/backups"
  [ "$output" = 401 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' -d '{"path":"relative/x.db"}' "$URL/api/v1/backups"
  [[ "$output" == *'must be an absolute path naming a file'*$'\n'400 ]]
  curl -fsS "$URL/healthz" >/dev/null
}

@test "restore refuses while a server runs, and touches nothing" {
  pctl apply -f "$(model m1)"
  pctl backup --to "$T/b.db"
  start_server
  before="$(sha256sum "$POCKETCTL_DATA/pocket.db")"
  run pctl restore "$T/b.db"
  [ "$status" -eq 2 ]
  [[ "$output" == *"a server is running on data directory '$POCKETCTL_DATA' ($URL): stop it before restoring"* ]]
  [ "$(sha256sum "$POCKETCTL_DATA/pocket.db")" = "$before" ]
  [ -z "$(ls "$POCKETCTL_DATA" | grep replaced || true)" ]
  curl -fsS "$URL/healthz" >/dev/null
}

@test "restore of a corrupt, foreign or newer file exits 2 and changes nothing" {
  pctl apply -f "$(model m1)"
  pctl backup --to "$T/good.db"
  before="$(sha256sum "$POCKETCTL_DATA/pocket.db")"
  echo garbage >"$T/garbage.db"
  head -c 20000 "$T/good.db" >"$T/truncated.db"
  cp "$T/good.db" "$T/broken.db"
  # page 2 onwards: the first table's b-tree pages
  dd if=/dev/urandom of="$T/broken.db" bs=4096 seek=1 count=8 conv=notrunc 2>/dev/null
  sqlite3 "$T/foreign.db" 'CREATE TABLE t (x)'
  cp "$T/good.db" "$T/newer.db"; sqlite3 "$T/newer.db" 'PRAGMA user_version = 99'
  for f in garbage truncated broken foreign newer missing; do
    run pctl restore "$T/$f.db"
    echo "$f: $output"
    [ "$status" -eq 2 ]
    [[ "$output" == *"$T/$f.db"* ]]
  done
  run pctl restore "$T/newer.db"
  [[ "$output" == *"migration level 99, newer than this pocketctl"* ]]
  run pctl restore "$T/foreign.db"
  [[ "$output" == *"is not a pocketctl store"* ]]
  [ "$(sha256sum "$POCKETCTL_DATA/pocket.db")" = "$before" ]
  [ -z "$(ls "$POCKETCTL_DATA" | grep -E 'replaced|tmp' || true)" ]
  [ -z "$(ls -A "$POCKETCTL_DATA" | grep -E '^\.pocket-tmp' || true)" ]
  run pctl get aimodel m1
  [ "$status" -eq 0 ]
}

@test "restore of a good backup brings the records back and keeps the old store aside" {
  pctl apply -f "$(model m1)"
  pctl backup --to "$T/b.db"
  pctl apply -f "$(model m2)"
  pctl delete aimodel m1
  run pctl restore "$T/b.db"
  [ "$status" -eq 0 ]
  [[ "$output" == *"kept as $POCKETCTL_DATA/pocket.db.replaced-"* ]]
  run pctl get aimodel m1
  [ "$status" -eq 0 ]
  run pctl get aimodel m2
  [ "$status" -ne 0 ]
  aside="$(ls "$POCKETCTL_DATA"/pocket.db.replaced-*)"
  # the store kept aside is whole on its own (its WAL was folded in)
  [ "$(names "$aside" | tr '\n' ' ')" = "m2 " ]
  # and the restored store serves
  start_server
  run pctl get aimodel m1 -o record
  [ "$status" -eq 0 ]
}

@test "a backup killed mid-way leaves the earlier backup at that path intact" {
  models 20000 "$T/big.yaml"
  pctl apply -f "$T/big.yaml" >/dev/null
  pctl backup --to "$T/b.db"
  sum="$(sha256sum <"$T/b.db")"
  pctl apply -f "$(model after)"
  killed=0
  for delay in 0.02 0.05 0.1 0.2; do
    "$PCTL" backup --to "$T/b.db" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -KILL "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      # killed mid-copy (its temporary file is there, not renamed): the
      # earlier backup is still at the path, whole
      if ls -A "$T" | grep -q '^\.pocket-tmp-'; then
        [ "$(sha256sum <"$T/b.db")" = "$sum" ]
        killed=$((killed + 1))
        rm -f "$T"/.pocket-tmp-*
      fi
    else
      wait "$pid" || true
    fi
    [ "$(sqlite3 "$T/b.db" 'PRAGMA integrity_check')" = ok ]
  done
  [ "$killed" -ge 1 ]
  [ "$(sqlite3 "$T/b.db" "SELECT count(*) FROM records WHERE collection = 'ai_models'")" -ge 20000 ]
}

@test "serve --backup-every 1s --backup-keep 2 keeps exactly its 2 newest files and reports Ready" {
  mkdir -p "$POCKETCTL_DATA/backups"
  pctl apply -f "$(model m1)"
  pctl backup --to "$POCKETCTL_DATA/backups/manual.db"
  pctl backup   # pocket-<UTC>-r<rev>.db: not the scheduler's either
  start_server -- --backup-every 1s --backup-keep 2
  sleep 4.5
  run bash -c "ls '$POCKETCTL_DATA/backups' | grep -c '^pocket-auto-.*-r[0-9]*\.db$'"
  [ "$output" = 2 ]
  # the files it did not make are kept
  [ -f "$POCKETCTL_DATA/backups/manual.db" ]
  [ "$(ls "$POCKETCTL_DATA/backups" | grep -c '^pocket-[0-9]')" = 1 ]
  run pctl status backups -o json
  [ "$status" -eq 0 ]
  echo "$output" | python3 -c '
import json, sys
s = json.load(sys.stdin)
ready = [c for c in s["conditions"] if c["type"] == "Ready"][0]
assert ready["status"] == "True" and ready["reason"] == "BackedUp", ready
assert s["keep"] == 2 and s["count"] == 2 and s["every"] == "1s", s
assert s["lastBackup"]["key"].startswith("pocket-auto-"), s
assert s["lastBackup"]["size"] > 0 and s["lastBackup"]["revision"] > 0, s
'
  newest="$(ls "$POCKETCTL_DATA"/backups/pocket-auto-* | sort | tail -1)"
  [ "$(names "$newest")" = m1 ]
}

@test "serve refuses a bad --backup-every or --backup-keep, naming the flag" {
  for bad in 0s 10 1x -5m ""; do
    run pctl serve --backup-every "$bad"
    [ "$status" -eq 2 ]
    [[ "$output" == *"--backup-every needs a"* ]]
  done
  run pctl serve --backup-every 1h --backup-keep 0
  [ "$status" -eq 2 ]
  [[ "$output" == *"--backup-keep needs a whole number"* ]]
  [ ! -e "$POCKETCTL_DATA/pocket.db" ]
}
