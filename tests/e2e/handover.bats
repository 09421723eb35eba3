#!/usr/bin/env bats
# No hand-over of records, generated from schema/collections.json rather
# than hand-picked: for every API-writable collection whose rules compare a
# relation field with @request.auth.id (its owner fields, e.g. "user"),
# bob tries to (a) move his record to alice, (b) point each relation at
# alice's records, (c) create a record owned by alice or tied to hers. All
# must be refused with the store unchanged (pocketctl get -o json before
# and after), while bob's own writes and the same writes by a superuser
# succeed.

load helpers
load api

setup() {
  e2e_setup handover
  command -v jq >/dev/null || skip "jq is needed"
  SCHEMA="$REPO/schema/collections.json"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com
              POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  start_server
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF REC
  new_user alice user
  new_user bob user
}

# The owner fields of collection $1, from its rules: relation fields some
# rule compares with @request.auth.id.
owner_fields() {
  jq -r --arg c "$1" '
    .collections[] | select(.name == $c) as $k
    | $k.fields[] | select(.type == "relation") | .name as $f
    | select([$k.rules[]? | strings
              | test("(^|[^.A-Za-z0-9_])" + $f + " *= *@request\\.auth\\.id($|[^.A-Za-z0-9_])")
                or test("@request\\.auth\\.id *= *" + $f + "($|[^.A-Za-z0-9_])")]
             | any)
    | $f' "$SCHEMA"
}

# Every API-writable collection with an owner field.
owned_collections() {
  local c
  for c in $(jq -r '.collections[] | select(.apiWritable) | .name' "$SCHEMA"); do
    [ -z "$(owner_fields "$c")" ] || echo "$c"
  done
}

is_owned() {
  [ "$1" = users ] || [ -n "$(owner_fields "$1")" ]
}

# Relation fields of $1 a caller may set (not system ones), as "name
# target" lines.
relations() {
  jq -r --arg c "$1" '.collections[] | select(.name == $c) | .fields[]
    | select(.type == "relation" and (.system | not))
    | "\(.name) \(.collection)"' "$SCHEMA"
}

# A create body for collection $1 owned by user $2: every required field
# filled with a fresh value of its type, every relation to users set to the
# owner, every other relation to the owner's record there (REC, made first),
# into BODY (no subshell, so that REC keeps what it made).
body_for() {
  local c="$1" u="$2" refs='{}' f t
  while read -r f t; do
    [ -n "$f" ] || continue
    if [ "$t" = users ]; then
      refs="$(jq -c --arg f "$f" --arg v "${UID_OF[$u]}" '.[$f] = $v' <<<"$refs")"
    elif [ "$t" != "$c" ] && { is_owned "$t" || jq -e --arg c "$c" --arg f "$f" \
        '.collections[] | select(.name == $c) | .fields[] | select(.name == $f) | .required' \
        "$SCHEMA" >/dev/null; }; then
      record_of "$u" "$t"
      refs="$(jq -c --arg f "$f" --arg v "${REC[$u/$t]}" '.[$f] = $v' <<<"$refs")"
    fi
  done < <(relations "$c")
  # Values the store's hooks parse: ssh_keys.public_key a real key (a
  # fresh ed25519 blob), a cron expression, an https push URL
  local pk
  pk="$(python3 -c 'import base64,os,struct; t=b"ssh-ed25519"; k=os.urandom(32)
print("ssh-ed25519 " + base64.b64encode(struct.pack(">I", len(t)) + t + struct.pack(">I", 32) + k).decode())')"
  BODY="$(jq -c --arg c "$c" --arg n "$RANDOM$RANDOM" --arg pk "$pk" --argjson refs "$refs" '
    .collections[] | select(.name == $c)
    | [.fields[] | select(.required and .type != "relation")
       | {key: .name, value: (
           if .name == "public_key" then $pk
           elif .name == "cron_expression" then "*/5 * * * *"
           elif .name == "push_token" then "https://push.example.com/\($n)"
           elif .type == "select" then .values[0]
           elif .type == "number" then (.min // 1)
           elif .type == "bool" then true
           elif .type == "json" then {}
           elif .type == "date" then "2026-01-01 00:00:00.000Z"
           elif .type == "email" then "x\($n)@example.com"
           elif .type == "url" then "https://example.com/\($n)"
           else "\(.name)-\($n)" end)}]
    | from_entries + $refs' "$SCHEMA")"
}

# User $1's record of collection $2, made by the superuser once; its id is
# ${REC[$1/$2]} (call this outside a subshell).
record_of() {
  local key="$1/$2"
  if [ -z "${REC[$key]:-}" ]; then
    body_for "$2" "$1"
    api POST "/api/collections/$2/records" "$SU" "$BODY"
    [ "$code" = 200 ] || { echo "cannot create $key from $BODY: $code $body" >&2; return 1; }
    REC[$key]="$(jq -r .id <<<"$body")"
  fi
}

# Every record of every collection the test touches, as pocketctl prints it.
store_state() {
  local c
  for c in users $(owned_collections); do
    pctl get "$(jq -r --arg c "$c" '.collections[] | select(.name == $c) | .kind' "$SCHEMA")" -o record
  done
}

# Make bob's record of every owned collection (alice's are made only where
# an attack points at them, so that no unique index such as
# notification_rules (user) refuses a write for the wrong reason).
make_records() {
  local c
  for c in $(owned_collections); do
    record_of bob "$c"
  done
}

# Refused, and not by a unique index (which would prove nothing).
refused() {
  case "$code" in 400|403|404) ;; *) return 1 ;; esac
  ! grep -q validation_not_unique <<<"$body"
}

# The hand-overs of one collection, each as "METHOD PATH BODY" on stdout.
attacks() {
  local c="$1" f t
  record_of bob "$c"
  for f in $(owner_fields "$c"); do
    echo "PATCH /api/collections/$c/records/${REC[bob/$c]} {\"$f\":\"${UID_OF[alice]}\"}"
  done
  while read -r f t; do
    [ -n "$f" ] && is_owned "$t" || continue
    [ "$t" = users ] && continue   # the owner fields, above
    record_of alice "$t"
    echo "PATCH /api/collections/$c/records/${REC[bob/$c]} {\"$f\":\"${REC[alice/$t]}\"}"
    # bob's own create, with one relation reaching alice's record
    body_for "$c" bob
    echo "POST /api/collections/$c/records $(jq -c --arg f "$f" --arg v "${REC[alice/$t]}" '.[$f] = $v' <<<"$BODY")"
  done < <(relations "$c")
  body_for "$c" alice
  echo "POST /api/collections/$c/records $BODY"
}

# The schema has collections with owner fields (or the test proves nothing).
some_owned_collections() {
  run owned_collections
  [ "$status" -eq 0 ]
  echo "$output"
  # chats, ssh_keys, devices, llm_keys, cron_jobs at least
  [ "$(wc -l <<<"$output")" -ge 5 ]
  grep -qx cron_jobs <<<"$output"
}

@test "handover: bob cannot give records to alice or tie them to hers; his own and a superuser's writes go through" {
  local c line method path data failures="" before after n=0
  some_owned_collections
  own_writes_work
  make_records
  # all the attacks first, so the records they need exist before the snapshot
  for c in $(owned_collections); do attacks "$c"; done >"$T/attacks"
  before="$(store_state)"
  while read -r method path data; do
    api "$method" "$path" "${TOK_OF[bob]}" "$data"
    n=$((n + 1))
    refused || failures+=$'\n'"$method $path $data -> $code $body"
  done <"$T/attacks"
  after="$(store_state)"
  echo "$n attacks"
  [ "$n" -ge 10 ]
  [ -z "$failures" ] || { echo "not refused:$failures"; return 1; }
  [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); return 1; }
  superuser_writes_work
}

@test "handover: a relation to alice's record is refused naming the field" {
  make_records
  record_of alice chats
  api PATCH "/api/collections/cron_jobs/records/${REC[bob/cron_jobs]}" \
    "${TOK_OF[bob]}" "{\"chat\":\"${REC[alice/chats]}\"}"
  [ "$code" = 400 ]
  jq -e '.data.chat.message | test("no chats record")' <<<"$body"
  api PATCH "/api/collections/cron_jobs/records/${REC[bob/cron_jobs]}" \
    "${TOK_OF[bob]}" "{\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 403 ]
  jq -e '.data.user' <<<"$body"
}

# Bob's own creates and updates, owner and relations his, go through; the
# records he makes are his records of REC.
own_writes_work() {
  local c id
  for c in $(owned_collections); do
    body_for "$c" bob
    api POST "/api/collections/$c/records" "${TOK_OF[bob]}" "$BODY"
    [ "$code" = 200 ] || { echo "$c: $code $body"; return 1; }
    id="$(jq -r .id <<<"$body")"
    REC[bob/$c]="$id"
    # a PATCH that sets his own owner and relations again
    body_for "$c" bob
    api PATCH "/api/collections/$c/records/$id" "${TOK_OF[bob]}" "$BODY"
    [ "$code" = 200 ] || { echo "$c: $code $body"; return 1; }
  done
}

# The attacks ($T/attacks), by a superuser, succeed, but for the one that
# an integrity rule of the store refuses whoever writes (a cron job fires
# into its own user's chat only: cron.c).
superuser_writes_work() {
  local method path data old failures=""
  # each write is undone after it, so that none meets another's unique key
  while read -r method path data; do
    [ "$method" = PATCH ] && { api GET "$path" "$SU"; old="$body"; }
    api "$method" "$path" "$SU" "$data"
    if [ "$code" = 400 ] && [[ "$path" == */cron_jobs/* || "$path" == */cron_jobs/records ]] &&
       jq -e '.data.chat.message | test("belongs to another user")' <<<"$body" >/dev/null; then
      continue
    fi
    [ "$code" = 200 ] || failures+=$'\n'"$method $path $data -> $code $body"
    if [ "$method" = POST ]; then
      api DELETE "$path/$(jq -r .id <<<"$body")" "$SU"
    else
      api PATCH "$path" "$SU" "$(jq -c --argjson d "$data" 'with_entries(select(.key | in($d)))' <<<"$old")"
    fi
    [ "$code" = 200 ] || [ "$code" = 204 ] || failures+=$'\n'"undo of $method $path -> $code $body"
  done <"$T/attacks"
  [ -z "$failures" ] || { echo "refused:$failures"; return 1; }
}

@test "handover: an agent that sees every chat cannot tie its cron job to alice's" {
  local job before
  make_records
  new_user agent agent
  record_of agent cron_jobs
  record_of agent chats
  record_of alice chats
  job="${REC[agent/cron_jobs]}"
  # the agent may view alice's chat, so only the create rule on the new
  # row (chat.user = @request.auth.id) stands in the way
  api GET "/api/collections/chats/records/${REC[alice/chats]}" "${TOK_OF[agent]}"
  [ "$code" = 200 ]
  before="$(store_state)"
  api PATCH "/api/collections/cron_jobs/records/$job" "${TOK_OF[agent]}" \
    "{\"chat\":\"${REC[alice/chats]}\"}"
  # refused by the create rule on the new row (403), or first by the
  # cron_jobs integrity rule that holds for every writer (400)
  { [ "$code" = 403 ] && jq -e '.message | test("create rule")' <<<"$body"; } ||
    { [ "$code" = 400 ] && jq -e '.data.chat.message | test("belongs to another user")' <<<"$body"; }
  [ "$(store_state)" = "$before" ]
  # its own chat is fine
  api PATCH "/api/collections/cron_jobs/records/$job" "${TOK_OF[agent]}" \
    "{\"chat\":\"${REC[agent/chats]}\"}"
  [ "$code" = 200 ]
}
