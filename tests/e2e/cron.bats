#!/usr/bin/env bats
# cron: scheduled agent tasks through the agent endpoints and the real
# scheduler. The clock is real; POCKETCTL_CRON_CLOCK_OFFSET shifts it so
# that a test starts a few seconds before a minute (instead of waiting up to
# a minute), and a restart with a larger offset plays a server that was down.

load helpers
load api

setup() {
  e2e_setup cron
  SERVER_CHECK_LOG=1
  declare -gA UID_OF TOK_OF CHAT_OF
}

# at_second S: the offset that puts the scheduler's clock at second S now.
at_second() {
  echo $(( ($1 - 10#$(date +%S) + 60) % 60 ))
}

# boot OFFSET [serve options...]
boot() {
  OFFSET="$1"
  shift
  start_server POCKETCTL_CRON_CLOCK_OFFSET="$OFFSET" -- "$@"
  SU="$TOKEN"
}

# alice and bob (users) with a chat each (sessions ses-a, ses-b), poco the
# agent.
people() {
  new_user alice user
  new_user bob user
  new_user poco agent
  local who
  for who in alice bob; do
    api POST /api/collections/chats/records "$SU" \
      "{\"title\":\"$who chat\",\"user\":\"${UID_OF[$who]}\",\"ai_engine_session_id\":\"ses-${who:0:1}\"}"
    [ "$code" = 200 ]
    CHAT_OF[$who]="$(jq -r .id <<<"$body")"
  done
}

# schedule JSON-BODY (as poco): sets JOB.
schedule() {
  api POST /api/pocketcoder/schedule_task "${TOK_OF[poco]}" "$1"
  [ "$code" = 200 ] || { echo "schedule: $code $body" >&2; return 1; }
  JOB="$(jq -r .id <<<"$body")"
}

# count COLLECTION [FILTER]: the number of records.
count() {
  local f=""
  [ -n "${2:-}" ] && f="&filter=$(jq -rn --arg f "$2" '$f|@uri')"
  api GET "/api/collections/$1/records?perPage=1$f" "$SU"
  jq -r .totalItems <<<"$body"
}
count_is() { [ "$(count "$@" 2>/dev/null | tail -1)" = "$N" ]; }
messages_are() { N="$1"; shift; count_is messages "$@"; }

job() { api GET "/api/collections/cron_jobs/records/$1" "$SU"; }

# The scheduler has made a pass since the server started.
scheduled() {
  su_api GET /api/v1/status
  jq -e '.reconcilers[] | select(.name == "cron") | .passes >= 1' <<<"$BODY" >/dev/null
}

@test "cron: an every-minute job from the agent gives one message a minute, on the real clock" {
  boot "$(at_second 50)"
  people
  schedule '{"name":"tick","cron_expression":"* * * * *","prompt":"ping","session_id":"ses-a"}'
  [ "$(jq -r .status <<<"$body")" = scheduled ]
  [ "$(jq -r .next_run <<<"$body")" != "" ]
  [ "$(count messages)" = 0 ]
  wait_for 40 messages_are 1
  sleep 3
  [ "$(count messages)" = 1 ]
  wait_for 80 messages_are 2
  sleep 2
  [ "$(count messages)" = 2 ]
  job "$JOB"
  [ "$(jq -r .last_status <<<"$body")" = ok ]
  [ "$(jq -r .last_error <<<"$body")" = "" ]
  # the NEXT RUN column shows the status the scheduler wrote
  run pctl get CronJob
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == *"NEXT RUN"* ]]
  [[ "${lines[1]}" =~ [0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\.000Z$ ]]
}

@test "cron: new creates a titled chat of the user, existing writes into the session's chat" {
  boot "$(at_second 55)"
  people
  schedule '{"name":"nightly","cron_expression":"* * * * *","prompt":"fresh","session_id":"ses-a","timezone":"Europe/Berlin","description":"d"}'
  NEWJOB="$JOB"
  schedule '{"name":"here","cron_expression":"* * * * *","prompt":"same chat","session_id":"ses-a","session_mode":"existing"}'
  job "$JOB"
  [ "$(jq -r .chat <<<"$body")" = "${CHAT_OF[alice]}" ]
  wait_for 40 messages_are 2
  # existing: the message is in alice's chat, pending, with the prompt
  api GET "/api/collections/messages/records?filter=$(jq -rn --arg c "${CHAT_OF[alice]}" '"chat=\"\($c)\""|@uri')" "$SU"
  [ "$(jq -r .totalItems <<<"$body")" = 1 ]
  [ "$(jq -r '.items[0].role' <<<"$body")" = user ]
  [ "$(jq -r '.items[0].user_message_status' <<<"$body")" = pending ]
  [ "$(jq -c '.items[0].parts' <<<"$body")" = '[{"type":"text","text":"same chat"}]' ]
  # new: a chat of alice, turn user, titled with the slot in Berlin time
  api GET "/api/collections/chats/records?filter=$(jq -rn '"title~\"nightly\""|@uri')" "$SU"
  [ "$(jq -r .totalItems <<<"$body")" = 1 ]
  [ "$(jq -r '.items[0].user' <<<"$body")" = "${UID_OF[alice]}" ]
  [ "$(jq -r '.items[0].turn' <<<"$body")" = user ]
  title="$(jq -r '.items[0].title' <<<"$body")"
  job "$NEWJOB"
  slot="$(jq -r .last_slot <<<"$body")"
  want="nightly — $(TZ=Europe/Berlin date -d "$(sed 's/\.000Z$/ UTC/' <<<"$slot")" '+%b %-d %H:%M')"
  [ "$title" = "$want" ]
  # the agent's list: that user's jobs, newest first
  api GET /api/pocketcoder/scheduled_tasks?session_id=ses-a "${TOK_OF[poco]}"
  [ "$code" = 200 ]
  [ "$(jq -r '[.[].name] | join(",")' <<<"$body")" = "here,nightly" ]
  [ "$(jq -r '.[1].timezone' <<<"$body")" = Europe/Berlin ]
  [ "$(jq -r '.[0].last_status' <<<"$body")" = ok ]
  api GET /api/pocketcoder/scheduled_tasks?session_id=ses-b "${TOK_OF[poco]}"
  [ "$body" = "[]" ]
}

@test "cron: a cancelled job stops; another user's job cannot be cancelled" {
  boot "$(at_second 5)"
  people
  schedule '{"name":"a1","cron_expression":"* * * * *","prompt":"one","session_id":"ses-a"}'
  A1="$JOB"
  schedule '{"name":"a2","cron_expression":"* * * * *","prompt":"two","session_id":"ses-a"}'
  A2="$JOB"
  # the agent acting for bob cannot cancel alice's job
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[poco]}" "{\"task_id\":\"$A1\",\"session_id\":\"ses-b\"}"
  [ "$code" = 403 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = task_id ]
  # without a session (the original tool's body, {task_id}) it may cancel
  # only what it scheduled itself, not a job alice made in the app
  api POST /api/collections/cron_jobs/records "${TOK_OF[alice]}" \
    "{\"name\":\"mine\",\"cron_expression\":\"0 0 1 1 *\",\"prompt\":\"p\",\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 200 ]
  MINE="$(jq -r .id <<<"$body")"
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[poco]}" "{\"task_id\":\"$MINE\"}"
  [ "$code" = 403 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = session_id ]
  schedule '{"name":"a3","cron_expression":"* * * * *","prompt":"three","session_id":"ses-a"}'
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[poco]}" "{\"task_id\":\"$JOB\"}"
  [ "$code" = 200 ]
  [ "$(jq -r .status <<<"$body")" = cancelled ]
  # alice herself is not the agent; guests are nobody
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[alice]}" "{\"task_id\":\"$A1\",\"session_id\":\"ses-a\"}"
  [ "$code" = 403 ]
  api POST /api/pocketcoder/cancel_scheduled_task "" "{\"task_id\":\"$A1\",\"session_id\":\"ses-a\"}"
  [ "$code" = 401 ]
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[poco]}" '{"task_id":"nosuchtask00000","session_id":"ses-a"}'
  [ "$code" = 404 ]
  job "$A1"
  [ "$(jq -r .enabled <<<"$body")" = true ]
  # for alice's session it works
  api POST /api/pocketcoder/cancel_scheduled_task "${TOK_OF[poco]}" "{\"task_id\":\"$A1\",\"session_id\":\"ses-a\"}"
  [ "$code" = 200 ]
  [ "$(jq -c . <<<"$body")" = "{\"id\":\"$A1\",\"name\":\"a1\",\"status\":\"cancelled\"}" ]
  job "$A1"
  [ "$(jq -r .enabled <<<"$body")" = false ]
  # five minutes later: the job still enabled catches up once, the
  # cancelled one never runs
  stop_server
  boot $(( OFFSET + 300 ))
  wait_for 30 messages_are 1
  wait_for 30 scheduled
  sleep 2
  [ "$(count messages)" = 1 ]
  job "$A1"
  [ "$(jq -r .last_executed <<<"$body")" = "" ]
  job "$A2"
  [ "$(jq -r .last_status <<<"$body")" = ok ]
}

@test "cron: SIGKILL just after a fire neither repeats nor loses the slot" {
  boot "$(at_second 56)"
  people
  schedule '{"name":"k","cron_expression":"* * * * *","prompt":"once","session_id":"ses-a"}'
  wait_for 40 messages_are 1
  stop_server KILL
  job_slot_before="$(sqlite3 "$POCKETCTL_DATA/pocket.db" "select json_extract(data,'\$.last_slot') from records where collection='cron_jobs'")"
  [ -n "$job_slot_before" ]
  # back within the same minute: that slot is done
  boot "$OFFSET"
  wait_for 30 scheduled
  sleep 2
  [ "$(count messages)" = 1 ]
  job "$JOB"
  [ "$(jq -r .last_slot <<<"$body")" = "$job_slot_before" ]
  # and the next slot still comes, once
  stop_server KILL
  boot $(( OFFSET + 60 ))
  wait_for 40 messages_are 2
  sleep 2
  [ "$(count messages)" = 2 ]
}

@test "cron: downtime across slots gives one catch-up run, not a burst; --cron-grace 0 gives none" {
  boot "$(at_second 5)"
  people
  schedule '{"name":"every","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a"}'
  # bob's job is due once an hour, two minutes from now (scheduler clock)
  m=$(( (10#$(date -u -d "@$(( $(date +%s) + OFFSET ))" +%M) + 2) % 60 ))
  schedule "{\"name\":\"hourly\",\"cron_expression\":\"$m * * * *\",\"prompt\":\"h\",\"session_id\":\"ses-b\"}"
  HOURLY="$JOB"
  BOBS="chat.user=\"${UID_OF[bob]}\""
  ALICES="chat.user=\"${UID_OF[alice]}\""
  stop_server
  # ten minutes down, catch-up off: the hourly slot, 8 minutes old, is
  # dropped; this minute's slot of the other job (less than a minute
  # late) runs once, not ten times
  boot $(( OFFSET + 600 )) --cron-grace 0
  wait_for 30 messages_are 1 "$ALICES"
  wait_for 30 scheduled
  sleep 2
  [ "$(count messages "$BOBS")" = 0 ]
  [ "$(count messages "$ALICES")" = 1 ]
  job "$HOURLY"
  [ "$(jq -r .last_executed <<<"$body")" = "" ]
  stop_server
  # with the default grace (1 h): one catch-up run, flagged as such
  boot $(( OFFSET + 60 ))
  wait_for 30 messages_are 1 "$BOBS"
  sleep 3
  [ "$(count messages "$BOBS")" = 1 ]
  [ "$(count messages "$ALICES")" = 2 ]
  job "$HOURLY"
  [ "$(jq -r .last_status <<<"$body")" = ok ]
  run pctl get CronJob "$HOURLY" -o record
  [ "$status" -eq 0 ]
  [ "$(jq -r .status.catchUp <<<"$output")" = true ]
  [ "$(jq -r .status.lastRun <<<"$output")" != null ]
}

@test "cron: bad input is a 4xx naming the field, and nothing is stored" {
  boot 0
  people
  P="${TOK_OF[poco]}"
  bad() {  # bad CODE FIELD BODY [MESSAGE]
    api POST /api/pocketcoder/schedule_task "$P" "$3"
    [ "$code" = "$1" ] || { echo "$3 -> $code $body" >&2; return 1; }
    [ "$(jq -r '.data | keys[0]' <<<"$body")" = "$2" ] || { echo "$3 -> $body" >&2; return 1; }
    [ -z "${4:-}" ] || [ "$(jq -r .message <<<"$body")" = "$4" ] || { echo "$body" >&2; return 1; }
  }
  bad 400 cron_expression '{"name":"x","cron_expression":"* 25 * * *","prompt":"p","session_id":"ses-a"}' \
    "cron_expression: field 2 (hour): 25 is out of range 0-23"
  bad 400 cron_expression '{"name":"x","cron_expression":"0 0 30 2 *","prompt":"p","session_id":"ses-a"}' \
    "cron_expression: never fires (no matching day in the next 8 years)"
  bad 400 cron_expression '{"name":"x","cron_expression":"@often","prompt":"p","session_id":"ses-a"}'
  bad 400 timezone '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a","timezone":"Mars/Olympus"}'
  bad 400 timezone '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a","timezone":"../../etc/passwd"}'
  bad 400 session_mode '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a","session_mode":"sometimes"}'
  bad 400 session_id '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"no-such-session"}' \
    "Could not resolve user from session"
  bad 400 session_id '{"name":"x","cron_expression":"* * * * *","prompt":"p"}'
  bad 400 prompt '{"name":"x","cron_expression":"* * * * *","session_id":"ses-a"}'
  bad 400 name '{"name":7,"cron_expression":"* * * * *","prompt":"p","session_id":"ses-a"}'
  # a prompt over the field's limit (64 KiB)
  printf '{"name":"x","cron_expression":"* * * * *","session_id":"ses-a","prompt":"%s"}' \
    "$(head -c 70000 /dev/zero | tr '\0' a)" >"$T/big.json"
  api POST /api/pocketcoder/schedule_task "$P" "" -H 'Content-Type: application/json' --data-binary "@$T/big.json"
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = prompt ]
  api POST /api/pocketcoder/schedule_task "${TOK_OF[alice]}" '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a"}'
  [ "$code" = 403 ]
  api POST /api/pocketcoder/schedule_task "" '{"name":"x","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a"}'
  [ "$code" = 401 ]
  # the records API runs the same checks
  api POST /api/collections/cron_jobs/records "${TOK_OF[alice]}" \
    "{\"name\":\"x\",\"cron_expression\":\"61 * * * *\",\"prompt\":\"p\",\"session_mode\":\"new\",\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = cron_expression ]
  api POST /api/collections/cron_jobs/records "${TOK_OF[alice]}" \
    "{\"name\":\"x\",\"cron_expression\":\"* * * * *\",\"prompt\":\"p\",\"session_mode\":\"existing\",\"user\":\"${UID_OF[alice]}\"}"
  [ "$code" = 400 ]
  [ "$(jq -r '.data | keys[0]' <<<"$body")" = chat ]
  # and so do manifests: exit 2 naming the field
  cat >"$T/job.yaml" <<EOF
apiVersion: pocketcoder.dev/v1
kind: CronJob
metadata: {name: fromyaml}
spec: {name: fromyaml, cron_expression: "* * * * *", prompt: p, session_mode: new, user: ${UID_OF[alice]}, timezone: Nowhere/Land}
EOF
  run pctl apply -f "$T/job.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"timezone 'Nowhere/Land'"* ]]
  [ "$(count cron_jobs)" = 0 ]
  # a good one still goes in through every path
  sed -i 's|Nowhere/Land|America/New_York|' "$T/job.yaml"
  run pctl apply -f "$T/job.yaml"
  [ "$status" -eq 0 ]
  [ "$(count cron_jobs)" = 1 ]
}

@test "cron: a job whose target is gone is Degraded with the reason; the others keep running" {
  boot "$(at_second 50)"
  people
  schedule '{"name":"lost","cron_expression":"* * * * *","prompt":"p","session_id":"ses-a","session_mode":"existing"}'
  LOST="$JOB"
  schedule '{"name":"fine","cron_expression":"* * * * *","prompt":"p","session_id":"ses-b"}'
  stop_server
  # a row written before the checks existed: existing without a chat
  sqlite3 "$POCKETCTL_DATA/pocket.db" \
    "update records set data=json_set(data,'\$.chat','') where collection='cron_jobs' and id='$LOST'"
  boot $(( OFFSET + 60 ))
  wait_for 40 messages_are 1
  wait_for 20 eval '[ "$(condition cron Degraded)" = True ]'
  msg="$(condition cron Degraded message)"
  [[ "$msg" == *"cron job 'lost'"*"no chat"* ]]
  job "$LOST"
  [ "$(jq -r .last_status <<<"$body")" = error ]
  [[ "$(jq -r .last_error <<<"$body")" == *"no chat"* ]]
}
