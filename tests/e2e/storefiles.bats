#!/usr/bin/env bats
# The data directory's files (issue 20, item 6 and "clear errors for a
# broken store"): the directory ends up 0700 and every file in it 0600,
# also when it was made beforehand with `mkdir -p` or an older run left
# wider modes; a damaged or foreign pocket.db stops the CLI (exit 2) and
# the server with a message naming the file, SQLite's error and what to do,
# and its bytes are left as they were.

load helpers

setup() {
  e2e_setup storefiles
}

# wide: every path under the data directory readable or writable by group
# or others (none expected), printed with its mode.
wide() {
  find "$POCKETCTL_DATA" -perm /077 -printf '%m %p\n'
}

@test "a data directory made beforehand with mkdir -p becomes 0700, its files 0600" {
  mkdir -p "$POCKETCTL_DATA"
  chmod 0755 "$POCKETCTL_DATA"
  start_server
  # one write, so that the WAL and its index certainly exist
  curl -fsS -m 10 -H "Authorization: $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"name":"modes","body":"x"}' \
    "$URL/api/collections/ai_prompts/records" >/dev/null
  ls -la "$POCKETCTL_DATA"
  [ -e "$POCKETCTL_DATA/pocket.db-wal" ] && [ -e "$POCKETCTL_DATA/pocket.db-shm" ]
  [ "$(stat -c %a "$POCKETCTL_DATA")" = 700 ]
  for f in pocket.db pocket.db-wal pocket.db-shm cli.token server.json lock; do
    [ "$(stat -c %a "$POCKETCTL_DATA/$f")" = 600 ]
  done
  [ -z "$(wide)" ]
}

@test "store files left world-readable by an earlier run are made 0600 at open" {
  start_server
  stop_server
  chmod 0755 "$POCKETCTL_DATA"
  # (secret.key is left alone: the server refuses a readable one, by design)
  chmod 0644 "$POCKETCTL_DATA"/pocket.db* "$POCKETCTL_DATA"/lock
  # the offline CLI opens the store read-write too
  run "$PCTL" apply -f "$BATS_TEST_DIRNAME/../../manifests"
  [ "$status" = 0 ]
  [ "$(stat -c %a "$POCKETCTL_DATA")" = 700 ]
  [ "$(stat -c %a "$POCKETCTL_DATA/pocket.db")" = 600 ]
  chmod 0644 "$POCKETCTL_DATA"/pocket.db* "$POCKETCTL_DATA"/lock
  umask 000
  start_server
  ls -la "$POCKETCTL_DATA"
  [ -z "$(wide)" ]
}

# broken FILE-MAKER: pocket.db made by FILE-MAKER; the offline CLI and the
# server refuse it, naming it and what to do, and leave it unchanged.
broken() {
  mkdir -p "$POCKETCTL_DATA"
  "$@" "$POCKETCTL_DATA/pocket.db"
  local sum="$(sha256sum <"$POCKETCTL_DATA/pocket.db")"
  run "$PCTL" get AiPrompt
  echo "get: $status $output"
  [ "$status" = 2 ]
  [[ "$output" == *"$POCKETCTL_DATA/pocket.db"* ]]
  [[ "$output" == *"backup"* ]]
  run "$PCTL" apply -f "$BATS_TEST_DIRNAME/../../manifests"
  echo "apply: $status $output"
  [ "$status" = 2 ]
  [[ "$output" == *"$POCKETCTL_DATA/pocket.db"* ]]
  run timeout 20 "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --bcrypt-cost 4
  echo "serve: $status $output"
  [ "$status" != 0 ] && [ "$status" != 124 ]
  [[ "$output" == *"$POCKETCTL_DATA/pocket.db"* ]]
  [[ "$output" == *"restore"* ]]
  [ ! -e "$POCKETCTL_DATA/server.json" ]
  [ "$(sha256sum <"$POCKETCTL_DATA/pocket.db")" = "$sum" ]
}

garbage() { head -c 65536 /dev/urandom >"$1"; }

foreign() {
  python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)")
db.executemany("INSERT INTO photos (path) VALUES (?)", [("p%d" % i,) for i in range(100)])
db.commit()' "$1"
}

# a pocketctl store whose pages were overwritten in the middle
damaged() {
  python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA user_version = 1")
db.execute("CREATE TABLE records (a)")
db.execute("CREATE TABLE changelog (a)")
db.commit()
db.close()
with open(sys.argv[1], "r+b") as f:
    f.seek(100)
    f.write(b"\xff" * 3900)' "$1"
}

@test "garbage bytes as pocket.db: exit 2 and no start, naming the file; it is unchanged" {
  broken garbage
  [[ "$output" == *"not a database"* ]]
}

@test "another application's SQLite database as pocket.db: refused, unchanged" {
  broken foreign
  [[ "$output" == *"not a pocketctl store"* ]]
}

@test "a damaged pocketctl store: refused with SQLite's error, unchanged" {
  broken damaged
  [[ "$output" == *"malformed"* || "$output" == *"not a database"* ]]
}
