#!/usr/bin/env bats
# The CLI through a running server, and POST /api/v1/apply at the curl level.
#
# Every test gets its own data directory and a server on a loopback port
# of its own choosing (start_server in helpers.bash), stopped in teardown
# whatever happened. Offline comparisons run the
# same commands on a second, server-less data directory with --offline.

load helpers

setup() {
  e2e_setup e2e
  OFF="$T/offline"
  LISTENER_PID=""
}

teardown() {
  stop_server
  if [ -n "$LISTENER_PID" ]; then
    kill "$LISTENER_PID" 2>/dev/null || true
    wait "$LISTENER_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}

token() {
  cat "$POCKETCTL_DATA/cli.token"
}

# The offline twin of pctl: a server-less data directory.
off() {
  "$PCTL" --data "$OFF" "$@" --offline
}

# How many requests the server counted for the apply route (proves that
# a command went over HTTP).
apply_requests() {
  curl -fsS "$URL/metrics" |
    awk '/^pocketctl_http_requests_total\{method="[A-Z]+",route="\/api\/v1\/apply"/ {s += $NF} END {print s + 0}'
}

# Diff output without the header lines that name temporary paths.
strip_diff() {
  grep -v -E '^((\+\+\+|---) |diff )' || true
}

# ---- the CLI through a server --------------------------------------------

@test "apply, get, diff and delete through a server print what offline prints" {
  start_server
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  served_apply="$output"
  run off apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [ "$output" = "$served_apply" ]
  [[ "$output" == *"aiagent/poco created"* ]]

  for args in "aiagent poco -o yaml" "toolpermission -o yaml" "aiprompt -o yaml"; do
    # shellcheck disable=SC2086
    a="$(pctl get $args)"
    # shellcheck disable=SC2086
    b="$(off get $args)"
    [ "$a" = "$b" ]
    [ -n "$a" ]
  done
  # Tables and JSON differ only by ids and times: compare the rest.
  a="$(pctl get toolpermission | awk '{print $1, $3}')"
  b="$(off get toolpermission | awk '{print $1, $3}')"
  [ "$a" = "$b" ]
  [[ "$a" == NAME* ]]
  a="$(pctl get aiagent poco -o record | jq -S 'del(.id, .created, .updated, .revision, .status, .data.prompt, .data.model)')"
  b="$(off get aiagent poco -o record | jq -S 'del(.id, .created, .updated, .revision, .status, .data.prompt, .data.model)')"
  [ "$a" = "$b" ]
  [ "$(pctl get aiagent -o record | jq length)" = "$(off get aiagent -o record | jq length)" ]

  sed 's/temperature: 0.1/temperature: 0.7/' "$REPO/manifests/agents.yaml" > "$T/agents.yaml"
  run pctl diff -f "$T/agents.yaml"
  [ "$status" -eq 1 ]
  a="$(printf '%s\n' "$output" | strip_diff)"
  run off diff -f "$T/agents.yaml"
  [ "$status" -eq 1 ]
  b="$(printf '%s\n' "$output" | strip_diff)"
  [ "$a" = "$b" ]
  [[ "$a" == *"+  temperature: 0.7"* ]]

  run pctl delete mcpserver duckduckgo
  [ "$status" -eq 0 ]
  a="$output"
  run off delete mcpserver duckduckgo
  [ "$status" -eq 0 ]
  [ "$output" = "$a" ]
  [ "$output" = "mcpserver/duckduckgo deleted" ]
  run pctl get mcpserver duckduckgo
  [ "$status" -eq 2 ]
  served_err="$output"
  run off get mcpserver duckduckgo
  [ "$status" -eq 2 ]
  [ "$output" = "$served_err" ]
}

@test "the CLI goes over HTTP while a server runs, and to the directory after it stops" {
  start_server
  n0="$(apply_requests)"
  pctl apply -f "$REPO/manifests" >/dev/null
  n1="$(apply_requests)"
  [ "$n1" -gt "$n0" ]
  stop_server
  [ ! -e "$POCKETCTL_DATA/server.json" ] || [ -s "$POCKETCTL_DATA/server.json" ]
  run pctl get aiagent poco -o yaml
  [ "$status" -eq 0 ]
  [[ "$output" == *"name: poco"* ]]
}

@test "a command waits for a server that holds the directory but is still starting" {
  PORT="$(free_port)"
  URL="http://127.0.0.1:$PORT"
  "$PCTL" serve --listen "127.0.0.1:$PORT" --root "$T/root" >"$T/server.log" 2>&1 &
  SERVER_PID=$!
  # The server writes its pid into DIR/lock once it holds the lock, and
  # server.json only once it listens.
  for i in $(seq 1 600); do
    [ "$(cat "$POCKETCTL_DATA/lock" 2>/dev/null)" = "$SERVER_PID" ] && break
    sleep 0.05
  done
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created"* ]]
  [ -s "$POCKETCTL_DATA/server.json" ]
  kill -0 "$SERVER_PID"
}

@test "a second apply through the server is all unchanged and writes nothing" {
  start_server
  pctl apply -f "$REPO/manifests" >/dev/null
  before="$(snapshot)"
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" != *created* ]]
  [[ "$output" != *configured* ]]
  [[ "$output" == *"aiagent/poco unchanged"* ]]
  [ "$(snapshot)" = "$before" ]
  run pctl diff -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "apply -o json through the server is apply's result" {
  start_server
  run pctl apply -f "$REPO/manifests" -o json
  [ "$status" -eq 0 ]
  [ "$(printf '%s' "$output" | jq -r '.dryRun')" = false ]
  [ "$(printf '%s' "$output" | jq -r '.created')" -gt 5 ]
  [ "$(printf '%s' "$output" | jq -r '.items[0].action')" = created ]
}

@test "a dry run through the server writes nothing" {
  start_server
  run pctl apply -f "$REPO/manifests" --dry-run
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created (dry run)"* ]]
  run pctl get aiagent -o record
  [ "$status" -eq 0 ]
  [ "$output" = "[]" ]
}

@test "prune through the server deletes what left the set, and refuses too much without --force" {
  start_server
  for n in a b c; do
    printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: p-%s}\nspec: {body: "%s"}\n---\n' "$n" "$n"
  done > "$T/abc.yaml"
  head -n 9 "$T/abc.yaml" > "$T/ab.yaml"
  head -n 4 "$T/abc.yaml" > "$T/a.yaml"
  run pctl apply -f "$T/abc.yaml" --applyset prompts
  [ "$status" -eq 0 ]
  run pctl apply -f "$T/ab.yaml" --applyset prompts --prune
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p-c pruned"* ]]
  run pctl get aiprompt p-c
  [ "$status" -eq 2 ]
  pctl apply -f "$T/abc.yaml" --applyset prompts >/dev/null
  # Two of three would go: refused, nothing deleted.
  run pctl apply -f "$T/a.yaml" --applyset prompts --prune
  [ "$status" -eq 2 ]
  [[ "$output" == *"use --force"* ]]
  pctl get aiprompt p-c >/dev/null
  run pctl apply -f "$T/a.yaml" --applyset prompts --prune --force
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/p-b pruned"* ]]
  [[ "$output" == *"aiprompt/p-c pruned"* ]]
}

@test "bad manifests through the server: file:line:col, exit 2, nothing written" {
  start_server
  pctl apply -f "$REPO/manifests" >/dev/null
  before="$(snapshot)"
  # Caught locally, before any request: malformed YAML.
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: x\nspec: {}\n' > "$T/bad.yaml"
  run pctl apply -f "$REPO/manifests" -f "$T/bad.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$T/bad.yaml:"* ]]
  # Caught by the server (a relation to a missing record): the message
  # still names the user's file, line and column.
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata:\n  name: orphan\nspec:\n  mode: subagent\n  prompt: no-such-prompt\n' > "$T/orphan.yaml"
  run pctl apply -f "$REPO/manifests" -f "$T/orphan.yaml"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$T/orphan.yaml:7:11: spec.prompt"* ]]
  [[ "$output" == *"no-such-prompt"* ]]
  run off apply -f "$REPO/manifests" -f "$T/orphan.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$T/orphan.yaml:7:11: spec.prompt"* ]]
  # A select value out of its list.
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata:\n  name: poco\nspec:\n  mode: sideways\n' > "$T/mode.yaml"
  run pctl apply -f "$T/mode.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"$T/mode.yaml:6:9"* ]]
  run pctl diff -f "$T/orphan.yaml"
  [ "$status" -eq 2 ]
  [ "$(snapshot)" = "$before" ]
}

@test "--offline while a server runs is refused; --offline and --server exclude each other" {
  start_server
  run pctl get aiagent --offline
  [ "$status" -eq 2 ]
  [[ "$output" == *"in use by a running pocketctl server"* ]]
  [[ "$output" == *"--offline refused"* ]]
  run pctl apply -f "$REPO/manifests" --offline
  [ "$status" -eq 2 ]
  run pctl get aiagent -o record
  [ "$output" = "[]" ]
  run pctl --server "$URL" get aiagent --offline
  [ "$status" -eq 2 ]
  [[ "$output" == *"exclude each other"* ]]
}

@test "an offline command holds the directory: no server starts under it" {
  # A shared lock for the life of an offline command: simulate a long one
  # by holding the same lock from the shell.
  mkdir -p "$POCKETCTL_DATA"
  exec 9>"$POCKETCTL_DATA/lock"
  flock -s 9
  run "$PCTL" serve --listen "127.0.0.1:$(free_port)" --root "$T/root"
  exec 9>&-
  [ "$status" -eq 2 ]
  [[ "$output" == *"$POCKETCTL_DATA"* ]]
}

@test "a wrong token is exit 2 with a clear message" {
  start_server
  run pctl get aiagent --token not-a-token
  [ "$status" -eq 2 ]
  [[ "$output" == *"pocketctl server at $URL refused the request (HTTP 401"* ]]
  [[ "$output" == *"--token"* ]]
  POCKETCTL_TOKEN=bad.bad.bad run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 2 ]
  [[ "$output" == *"HTTP 401"* ]]
  [[ "$output" == *"POCKETCTL_TOKEN"* ]]
  # The right token, given explicitly, works with an explicit --server.
  run pctl --server "$URL" get aiagent --token "$(token)"
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == NAME* ]]
}

@test "the local token file goes only to the local server" {
  start_server
  # Same URL as server.json: DIR/cli.token is used.
  run pctl --server "$URL/" get aiagent
  [ "$status" -eq 0 ]
  # Another URL (here the same server under another name): no token sent.
  run pctl --server "http://localhost:$PORT" get aiagent
  [ "$status" -eq 2 ]
  [[ "$output" == *"HTTP 401, using no token"* ]]
}

@test "server down is exit 2: cannot reach" {
  port="$(free_port)"
  POCKETCTL_SERVER="http://127.0.0.1:$port" run pctl get aiagent
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot reach pocketctl server at http://127.0.0.1:$port"* ]]
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: x}\nspec: {body: y}\n' > "$T/p.yaml"
  POCKETCTL_SERVER="http://127.0.0.1:$port" run pctl apply -f "$T/p.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot reach pocketctl server"* ]]
  POCKETCTL_SERVER="ftp://127.0.0.1:$port" run pctl get aiagent
  [ "$status" -eq 2 ]
  [[ "$output" == *"must start with http://"* ]]
}

@test "a server that never answers times out: exit 2, cannot reach" {
  port="$(free_port)"
  python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$port" &
  LISTENER_PID=$!
  for i in $(seq 1 100); do
    ss -ltn | grep -q "127.0.0.1:$port " && break
    sleep 0.05
  done
  start=$SECONDS
  POCKETCTL_TIMEOUT=1 POCKETCTL_SERVER="http://127.0.0.1:$port" run pctl get aiagent
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot reach pocketctl server at http://127.0.0.1:$port"* ]]
  [[ "$output" == *"imed out"* ]]
  [ $((SECONDS - start)) -lt 10 ]
}

@test "a stale server.json without a live server: the CLI refuses, naming it; --offline works" {
  mkdir -p "$POCKETCTL_DATA"
  printf '{"url": "http://127.0.0.1:1", "pid": 999999}\n' > "$POCKETCTL_DATA/server.json"
  run pctl apply -f "$REPO/manifests"
  [ "$status" -eq 2 ]
  [[ "$output" == *"names pid 999999 at http://127.0.0.1:1 but nothing answers"* ]]
  run pctl apply --offline -f "$REPO/manifests"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiagent/poco created"* ]]
}

# ---- POST /api/v1/apply with curl ----------------------------------------

prompt_yaml() {  # prompt_yaml NAME BODY
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata:\n  name: %s\nspec:\n  body: %s\n' "$1" "$2"
}

@test "curl: POST /api/v1/apply with a YAML body" {
  start_server
  { prompt_yaml one "first"; echo '---'; prompt_yaml two "second"; } > "$T/p.yaml"
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" \
    -H 'Content-Type: application/yaml' --data-binary @"$T/p.yaml" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 200 ]
  body="${lines[0]}"
  [ "$(jq -r .created <<<"$body")" = 2 ]
  [ "$(jq -r '.items[1].action' <<<"$body")" = created ]
  [ "$(jq -r '.items[0].kind' <<<"$body")" = AiPrompt ]
  run pctl get aiprompt two -o yaml
  [[ "$output" == *"body: second"* ]]
  # Again: unchanged, with Bearer.
  run curl -sS -H "Authorization: Bearer $(token)" --data-binary @"$T/p.yaml" "$URL/api/v1/apply"
  [ "$(jq -r .unchanged <<<"$output")" = 2 ]
}

@test "curl: POST /api/v1/apply with a JSON body, and dryRun" {
  start_server
  json='[{"apiVersion":"pocketcoder.dev/v1","kind":"AiPrompt","metadata":{"name":"j"},"spec":{"body":"from json"}}]'
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" \
    -H 'Content-Type: application/json' --data-binary "$json" "$URL/api/v1/apply?dryRun=true"
  [ "${lines[-1]}" = 200 ]
  [ "$(jq -r .dryRun <<<"${lines[0]}")" = true ]
  [ "$(jq -r '.items[0].action' <<<"${lines[0]}")" = created ]
  run pctl get aiprompt j
  [ "$status" -eq 2 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" \
    -H 'Content-Type: application/json' --data-binary "$json" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 200 ]
  [ "$(jq -r .dryRun <<<"${lines[0]}")" = false ]
  run pctl get aiprompt j -o yaml
  [[ "$output" == *"body: from json"* ]]
}

@test "curl: errors are PocketBase-shaped with request:line:col, nothing written" {
  start_server
  { prompt_yaml ok "fine"; echo '---'; printf 'apiVersion: pocketcoder.dev/v1\nkind: AiAgent\nmetadata: {name: a}\nspec:\n  mode: sideways\n'; } > "$T/bad.yaml"
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" --data-binary @"$T/bad.yaml" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 400 ]
  [ "$(jq -r .status <<<"${lines[0]}")" = 400 ]
  [[ "$(jq -r .message <<<"${lines[0]}")" == "request:12:9: spec.mode"* ]]
  [ "$(jq -r '.data["spec.mode"].code' <<<"${lines[0]}")" = validation_invalid_value ]
  run pctl get aiprompt ok
  [ "$status" -eq 2 ]
  # Files form: each file's errors carry its own name.
  body="$(jq -n --rawfile a "$T/bad.yaml" '{files: [{name: "x/first.yaml", text: "apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: z}\nspec: {body: z}\n"}, {name: "x/second.yaml", text: $a}]}')"
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" \
    -H 'Content-Type: application/vnd.pocketctl.files+json' --data-binary "$body" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 400 ]
  [[ "$(jq -r .message <<<"${lines[0]}")" == "x/second.yaml:12:9: spec.mode"* ]]
  run pctl get aiprompt z
  [ "$status" -eq 2 ]
  # Malformed YAML, an empty body, a bad flag, a bad files body.
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" --data-binary $'kind: [\n' "$URL/api/v1/apply"
  [ "${lines[-1]}" = 400 ]
  [[ "$(jq -r .message <<<"${lines[0]}")" == request:* ]]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" -X POST "$URL/api/v1/apply"
  [ "${lines[-1]}" = 400 ]
  [[ "$(jq -r .message <<<"${lines[0]}")" == *"no documents"* ]]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" --data-binary @"$T/bad.yaml" "$URL/api/v1/apply?dryRun=maybe"
  [ "${lines[-1]}" = 400 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" \
    -H 'Content-Type: application/vnd.pocketctl.files+json' --data-binary '{"files": [{"name": "a"}]}' "$URL/api/v1/apply"
  [ "${lines[-1]}" = 400 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" --data-binary @"$T/bad.yaml" "$URL/api/v1/apply?prune=true"
  [ "${lines[-1]}" = 400 ]
  [[ "$(jq -r .message <<<"${lines[0]}")" == *"applyset"* ]]
}

@test "curl: an oversized apply body is 413 (default 16 MiB and a configured cap)" {
  start_server
  head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'a' > "$T/big"
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $(token)" \
    --data-binary @"$T/big" "$URL/api/v1/apply"
  [ "$output" = 413 ]
  stop_server
  start_server --max-apply-body 2048
  { for i in $(seq 1 40); do prompt_yaml "p$i" "body $i"; echo '---'; done; } > "$T/many.yaml"
  [ "$(stat -c %s "$T/many.yaml")" -gt 2048 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" --data-binary @"$T/many.yaml" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 413 ]
  [ "$(jq -r .status <<<"${lines[0]}")" = 413 ]
  run pctl get aiprompt -o record
  [ "$output" = "[]" ]
  # The CLI reports the same limit cleanly.
  run pctl apply -f "$T/many.yaml"
  [ "$status" -eq 2 ]
  [[ "$output" == *"larger than the limit"* ]]
}

@test "curl: 401 without a token, 403 for a non-admin user" {
  start_server
  prompt_yaml x y > "$T/p.yaml"
  for path in /api/v1/apply /api/v1/diff; do
    run curl -sS -w '\n%{http_code}' --data-binary @"$T/p.yaml" "$URL$path"
    [ "${lines[-1]}" = 401 ]
    [ "$(jq -r .status <<<"${lines[0]}")" = 401 ]
  done
  run curl -sS -o /dev/null -w '%{http_code}' "$URL/api/v1/manifests/aiprompt"
  [ "$output" = 401 ]
  run curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$URL/api/v1/manifests/aiprompt/x"
  [ "$output" = 401 ]
  # A plain user, made by the superuser through the records API.
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" -H 'Content-Type: application/json' \
    --data '{"email":"u@example.com","password":"secret-pass-1","passwordConfirm":"secret-pass-1","role":"user"}' \
    "$URL/api/collections/users/records"
  [ "${lines[-1]}" = 200 ]
  utok="$(curl -sS -H 'Content-Type: application/json' \
    --data '{"identity":"u@example.com","password":"secret-pass-1"}' \
    "$URL/api/collections/users/auth-with-password" | jq -r .token)"
  [ -n "$utok" ] && [ "$utok" != null ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $utok" --data-binary @"$T/p.yaml" "$URL/api/v1/apply"
  [ "${lines[-1]}" = 403 ]
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $utok" "$URL/api/v1/manifests/aiprompt"
  [ "$output" = 403 ]
  run pctl get aiprompt x
  [ "$status" -eq 2 ]
  run pctl get aiprompt --token "$utok"
  [ "$status" -eq 2 ]
  [[ "$output" == *"HTTP 403"* ]]
}

@test "curl: manifests by kind and name, record view without hidden fields, delete" {
  start_server
  pctl apply -f "$REPO/manifests" >/dev/null
  run curl -sS -H "Authorization: $(token)" "$URL/api/v1/manifests/AiAgent/poco"
  [ "$(jq -r .spec.prompt <<<"$output")" = poco-persona ]
  [ "$(jq -r .kind <<<"$output")" = AiAgent ]
  run curl -sS -H "Authorization: $(token)" "$URL/api/v1/manifests/ai_agents?view=record"
  [ "$(jq -r '.items[0].name' <<<"$output")" = poco ]
  [ "$(jq -r '.items[0].generation' <<<"$output")" = 1 ]
  run curl -sS -H "Authorization: $(token)" "$URL/api/v1/manifests/_superusers?view=record"
  [[ "$output" != *tokenKey* ]]
  [[ "$output" != *password* ]]
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $(token)" "$URL/api/v1/manifests/gadget"
  [ "$output" = 404 ]
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $(token)" "$URL/api/v1/manifests/aiagent/nobody"
  [ "$output" = 404 ]
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $(token)" "$URL/api/v1/manifests/aiagent?view=weird"
  [ "$output" = 400 ]
  run curl -sS -w '\n%{http_code}' -H "Authorization: $(token)" -X DELETE "$URL/api/v1/manifests/mcpserver/duckduckgo"
  [ "${lines[-1]}" = 200 ]
  [ "$(jq -r .action <<<"${lines[0]}")" = deleted ]
  run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: $(token)" -X DELETE "$URL/api/v1/manifests/mcpserver/duckduckgo"
  [ "$output" = 404 ]
}
