#!/usr/bin/env bats
# `pocketctl serve` itself: health and metrics, the data-directory lock,
# clean SIGTERM, superuser bootstrap and the auth endpoints, tokens (bad,
# tampered, expired), the local CLI token, PocketBase error shapes, body
# limits, and manifests applied at start.
#
# Every test has its own data directory and its own server, listening on
# port 0 (the kernel picks a free port; the server writes the real URL to
# DATA/server.json). teardown always kills the server.

load helpers

setup() {
  e2e_setup serve
}

# http METHOD PATH [curl args...]: sets CODE and BODY.
http() {
  local method="$1" path="$2"
  shift 2
  BODY="$(curl -sS -m 10 -o - -w '\n%{http_code}' -X "$method" "$URL$path" "$@")"
  CODE="${BODY##*$'\n'}"
  BODY="${BODY%$'\n'*}"
  BODY="${BODY%$'\n'}"   # a JSON body's own final newline, as $(...) drops it
}

# json_str KEY: the first "KEY":"value" string in $BODY.
json_str() {
  sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$BODY" | head -1
}

admin_env() {
  export POCKETCTL_ADMIN_EMAIL="admin@example.com"
  export POCKETCTL_ADMIN_PASSWORD="correct-horse-9"
}

login() {  # login COLLECTION EMAIL PASSWORD
  http POST "/api/collections/$1/auth-with-password" \
    -H 'Content-Type: application/json' \
    -d "{\"identity\":\"$2\",\"password\":\"$3\"}"
}

@test "healthz, readyz, api/health and metrics answer" {
  start_server
  http GET /healthz
  [ "$CODE" = 200 ]
  [ "${BODY%$'\n'}" = ok ]
  http GET /readyz
  [ "$CODE" = 200 ]
  http GET /api/health
  [ "$CODE" = 200 ]
  [ "$BODY" = '{"code":200,"message":"API is healthy.","data":{}}' ]
  run curl -sS -D - -o /dev/null "$URL/api/health"
  [[ "$output" == *"Content-Type: application/json"* ]]
  http GET /metrics
  [ "$CODE" = 200 ]
  echo "$BODY"
  [[ "$BODY" == *'pocketctl_http_requests_total{method="GET",route="/healthz",code="200"}'* ]]
  [[ "$BODY" == *'pocketctl_http_requests_total{method="GET",route="/api/health",code="200"} 2'* ]]
  [[ "$BODY" == *'pocketctl_http_request_duration_seconds_bucket{method="GET",route="/readyz",le="+Inf"} 1'* ]]
  [[ "$BODY" == *'pocketctl_http_request_duration_seconds_count{method="GET",route="/healthz"} '* ]]
  [[ "$BODY" == *'pocketctl_sse_streams_open 0'* ]]
  [[ "$BODY" == *'pocketctl_changelog_head_revision '* ]]
  # group commit: commits, batches and syncs count up with writes
  commits="$(sed -n 's/^pocketctl_store_commits_total //p' <<<"$BODY")"
  [[ "$commits" =~ ^[0-9]+$ ]]
  [[ "$BODY" == *'pocketctl_store_syncs_total '* ]]
  curl -fsS -o /dev/null -H "Authorization: $(cat "$POCKETCTL_DATA/cli.token")" \
    -H 'Content-Type: application/json' --data '{"name":"m1","status":"ready"}' \
    "$URL/api/collections/healthchecks/records"
  http GET /metrics
  [ "$(sed -n 's/^pocketctl_store_commits_total //p' <<<"$BODY")" -gt "$commits" ]
  # one log line per request, without the query string
  http GET '/healthz?secret=1'
  grep -qE '^[0-9T:.-]+Z info http: GET /healthz 200 ' "$T/server.log"
  ! grep -q 'secret=1' "$T/server.log"
}

@test "a stray /.htpasswd does not put civetweb's digest auth in front of the API" {
  # civetweb looks for a passwords file for each request unless the server
  # handles authorization itself; serving no directory, it looks at "/".
  [ "$(id -u)" = 0 ] || skip "needs root to write /.htpasswd"
  [ ! -e /.htpasswd ] || skip "/.htpasswd exists already"
  echo 'someone:example.com:0123456789abcdef0123456789abcdef' >/.htpasswd
  admin_env
  start_server || { rm -f /.htpasswd; false; }
  http GET /api/health
  local health="$CODE"
  login _superusers admin@example.com correct-horse-9
  local code="$CODE"
  rm -f /.htpasswd
  [ "$health" = 200 ]
  [ "$code" = 200 ]
}

@test "a stored field the schema no longer has stays out of lists and views" {
  # Lists copy stored rows out verbatim only while every row holds fields
  # of the schema alone; a row written under an older schema is parsed.
  admin_env
  start_server
  http POST /api/collections/ai_prompts/records \
    -H "Authorization: $(cat "$POCKETCTL_DATA/cli.token")" \
    -H 'Content-Type: application/json' -d '{"name":"old-p","body":"b"}'
  [ "$CODE" = 200 ]
  stop_server
  python3 - "$POCKETCTL_DATA/pocket.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE records SET data = json_set(data, '$.gone', 'from an old schema') "
               "WHERE collection = 'ai_prompts' AND name = 'old-p'").rowcount
db.commit()
assert n == 1, n
EOF
  start_server
  local su id
  su="$(cat "$POCKETCTL_DATA/cli.token")"
  http GET "/api/collections/ai_prompts/records?filter=name%3D'old-p'" -H "Authorization: $su"
  [ "$CODE" = 200 ]
  echo "$BODY"
  [[ "$BODY" == *'"body":"b"'* ]]
  [[ "$BODY" != *gone* ]]
  id="$(sed -n 's/.*"id":"\([a-z0-9]*\)".*/\1/p' <<<"$BODY")"
  http GET "/api/collections/ai_prompts/records/$id" -H "Authorization: $su"
  [ "$CODE" = 200 ]
  [[ "$BODY" != *gone* ]]
}

@test "a second server on the same data directory is refused" {
  start_server
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"another pocketctl serve is using data directory '$POCKETCTL_DATA' (pid $SERVER_PID)"* ]]
  # the first one still serves
  http GET /readyz
  [ "$CODE" = 200 ]
}

@test "SIGTERM exits 0, removes server.json, and the store reopens" {
  admin_env
  start_server
  [ -f "$POCKETCTL_DATA/server.json" ]
  stop_server TERM
  [ "$SERVER_STATUS" -eq 0 ]
  grep -q 'stopped' "$T/server.log"
  [ ! -e "$POCKETCTL_DATA/server.json" ]
  # second start on the same directory: the bootstrap superuser is still
  # there (not created twice) and can log in
  start_server
  ! grep -q "created superuser" "$T/server.log"
  login _superusers admin@example.com correct-horse-9
  [ "$CODE" = 200 ]
  stop_server INT
  [ "$SERVER_STATUS" -eq 0 ]
}

@test "the bootstrap superuser authenticates and refreshes; failures are uniform" {
  admin_env
  start_server
  grep -q "created superuser 'admin@example.com'" "$T/server.log"
  login _superusers admin@example.com correct-horse-9
  [ "$CODE" = 200 ]
  token="$(json_str token)"
  [ -n "$token" ]
  [[ "$BODY" == *'"collectionName":"_superusers"'* ]]
  [[ "$BODY" == *'"email":"admin@example.com"'* ]]
  [[ "$BODY" != *password* ]]
  [[ "$BODY" != *tokenKey* ]]
  # by collection id too, and the email is case-insensitive
  login pbc_3142635823 ADMIN@example.com correct-horse-9
  [ "$CODE" = 200 ]

  http POST /api/collections/_superusers/auth-refresh -H "Authorization: $token"
  [ "$CODE" = 200 ]
  [ -n "$(json_str token)" ]
  [[ "$BODY" == *'"email":"admin@example.com"'* ]]
  http POST /api/collections/_superusers/auth-refresh -H "Authorization: Bearer $token"
  [ "$CODE" = 200 ]
  # a superuser token is no users token
  http POST /api/collections/users/auth-refresh -H "Authorization: $token"
  [ "$CODE" = 401 ]
  # no token at all
  http POST /api/collections/_superusers/auth-refresh
  [ "$CODE" = 401 ]

  fail='{"status":400,"message":"Failed to authenticate.","data":{}}'
  login _superusers admin@example.com wrong-password-1
  [ "$CODE" = 400 ]
  [ "$BODY" = "$fail" ]
  login _superusers nobody@example.com correct-horse-9
  [ "$CODE" = 400 ]
  [ "$BODY" = "$fail" ]
  login users admin@example.com correct-horse-9
  [ "$CODE" = 400 ]
  [ "$BODY" = "$fail" ]
  # missing fields name the field
  http POST /api/collections/_superusers/auth-with-password -d '{"identity":"admin@example.com"}'
  [ "$CODE" = 400 ]
  [[ "$BODY" == *'"data":{"password":{"code":"validation_invalid_value"'* ]]
  # not an auth collection
  login ai_agents admin@example.com correct-horse-9
  [ "$CODE" = 404 ]
}

@test "bad, tampered and expired tokens get 401 on any route" {
  admin_env
  start_server --token-ttl 1
  login _superusers admin@example.com correct-horse-9
  [ "$CODE" = 200 ]
  token="$(json_str token)"

  http GET /api/health -H "Authorization: not-a-token"
  [ "$CODE" = 401 ]
  [[ "$BODY" == '{"status":401,"message":"'*'","data":{}}' ]]

  # change one character of the payload: the signature no longer matches
  head="${token%%.*}"; rest="${token#*.}"; payload="${rest%%.*}"; sig="${rest#*.}"
  c="${payload:10:1}"; [ "$c" = A ] && n=B || n=A
  tampered="$head.${payload:0:10}$n${payload:11}.$sig"
  http GET /api/health -H "Authorization: Bearer $tampered"
  [ "$CODE" = 401 ]
  # an alg=none token
  http GET /healthz -H "Authorization: eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.$payload."
  [ "$CODE" = 401 ]

  sleep 2.1
  http POST /api/collections/_superusers/auth-refresh -H "Authorization: $token"
  [ "$CODE" = 401 ]
  [[ "$BODY" == *expired* ]]
  # an empty Authorization header is a guest, not an error
  http GET /api/health -H "Authorization:"
  [ "$CODE" = 200 ]
}

@test "a cached token sees its user change at once; a password change signs it out" {
  admin_env
  start_server
  login _superusers admin@example.com correct-horse-9
  su="$(json_str token)"
  http POST /api/collections/users/records -H "Authorization: $su" \
    -H 'Content-Type: application/json' \
    -d '{"email":"u1@example.com","password":"first-pass-1","passwordConfirm":"first-pass-1","role":"user"}'
  [ "$CODE" = 200 ]
  uid="$(json_str id)"
  login users u1@example.com first-pass-1
  [ "$CODE" = 200 ]
  old="$(json_str token)"
  # used twice: the second use is served from the verified-token cache
  http POST /api/collections/users/auth-refresh -H "Authorization: $old"
  [ "$CODE" = 200 ]
  http POST /api/collections/users/auth-refresh -H "Authorization: $old"
  [ "$CODE" = 200 ]
  # writes elsewhere keep the entry; a write to the user is seen at once
  http POST /api/collections/healthchecks/records -H "Authorization: $su" \
    -H 'Content-Type: application/json' -d '{"name":"elsewhere","status":"starting"}'
  [ "$CODE" = 200 ]
  http POST /api/collections/users/auth-refresh -H "Authorization: $old"
  [ "$CODE" = 200 ]
  [ "$(jq -r .record.name <<<"$BODY")" = "" ]
  http PATCH "/api/collections/users/records/$uid" -H "Authorization: $su" \
    -H 'Content-Type: application/json' -d '{"name":"Renamed"}'
  [ "$CODE" = 200 ]
  http POST /api/collections/users/auth-refresh -H "Authorization: $old"
  [ "$CODE" = 200 ]
  [ "$(jq -r .record.name <<<"$BODY")" = "Renamed" ]
  http PATCH "/api/collections/users/records/$uid" -H "Authorization: $su" \
    -H 'Content-Type: application/json' \
    -d '{"password":"second-pass-2","passwordConfirm":"second-pass-2"}'
  [ "$CODE" = 200 ]
  http POST /api/collections/users/auth-refresh -H "Authorization: $old"
  [ "$CODE" = 401 ]
  login users u1@example.com first-pass-1
  [ "$CODE" = 400 ]
  login users u1@example.com second-pass-2
  [ "$CODE" = 200 ]
  # mismatched confirmation is refused by the shared helper
  http PATCH "/api/collections/users/records/$uid" -H "Authorization: $su" \
    -H 'Content-Type: application/json' \
    -d '{"password":"third-pass-3","passwordConfirm":"nope-nope-3"}'
  [ "$CODE" = 400 ]
  [[ "$BODY" == *'"passwordConfirm"'* ]]
}

@test "unknown routes, wrong methods, bad JSON and oversized bodies" {
  start_server
  http GET /api/nothing/here
  [ "$CODE" = 404 ]
  [ "$BODY" = '{"status":404,"message":"The requested resource wasn'"'"'t found.","data":{}}' ]
  http DELETE /api/health
  [ "$CODE" = 405 ]
  [[ "$BODY" == '{"status":405,'* ]]

  http POST /api/collections/users/auth-with-password -d '{"identity": "a",
  "password": }'
  [ "$CODE" = 400 ]
  [[ "$BODY" == *'line 2, column '* ]]
  http POST /api/collections/users/auth-with-password -d '[1,2]'
  [ "$CODE" = 400 ]
  [[ "$BODY" == *'must be a JSON object'* ]]
  # invalid UTF-8 in the body still gives a well-formed JSON error
  printf '{"identity":"\xff\xfe"}' > "$T/bad.json"
  http POST /api/collections/users/auth-with-password --data-binary @"$T/bad.json"
  [ "$CODE" = 400 ]
  [[ "$BODY" == '{"status":400,'* ]]
  # JSON nested far deeper than any record needs: refused before parsing,
  # on every JSON endpoint (a recursive parse would overflow the stack)
  python3 -c 'print("{\"clientId\":" + "[" * 3000 + "]" * 3000 + "}")' > "$T/deep.json"
  for p in /api/realtime /api/collections/users/auth-with-password /api/pocketcoder/permission; do
    http POST "$p" --data-binary @"$T/deep.json" \
      -H "Authorization: $(cat "$POCKETCTL_DATA/cli.token")"
    [ "$CODE" = 400 ]
    [[ "$BODY" == *'nested deeper than 64 levels'* ]]
  done

  # Content-Length over the cap: 413 before the body is read
  head -c 2000000 /dev/zero | tr '\0' 'a' > "$T/big"
  http POST /api/collections/users/auth-with-password --data-binary @"$T/big"
  [ "$CODE" = 413 ]
  [[ "$BODY" == '{"status":413,"message":"request body of 2000000 bytes is larger than the limit'* ]]
  # chunked: counted while reading
  # The server may answer 413 and close before curl has sent the whole
  # body; then curl reports a send failure (55) or a reset (56) after the
  # 413 arrived. Either way the body was refused.
  run curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST \
    "$URL/api/collections/users/auth-with-password" \
    -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
  [[ "$output" == *413* ]] || [ "$status" -eq 55 ] || [ "$status" -eq 56 ]
  # and the server keeps serving
  http GET /readyz
  [ "$CODE" = 200 ]
}

@test "streams beyond --max-streams get 503; SIGTERM ends open streams" {
  start_server --max-streams 1
  token="$(cat "$POCKETCTL_DATA/cli.token")"
  curl -sN -m 30 -H "Authorization: $token" "$URL/api/v1/watch" >"$T/w1.out" 2>&1 &
  w1=$!
  for i in $(seq 1 100); do
    http GET /metrics
    [[ "$BODY" == *'pocketctl_sse_streams_open 1'* ]] && break
    sleep 0.05
  done
  [[ "$BODY" == *'pocketctl_sse_streams_open 1'* ]]
  http GET /api/v1/watch -H "Authorization: $token"
  [ "$CODE" = 503 ]
  [[ "$BODY" == '{"status":503,"message":"too many open streams (the limit is 1)'* ]]
  # ordinary requests are unaffected
  http GET /readyz
  [ "$CODE" = 200 ]
  # SIGTERM drains: the open stream ends and the server exits 0 quickly
  start=$SECONDS
  stop_server TERM
  [ "$SERVER_STATUS" -eq 0 ]
  [ $((SECONDS - start)) -le 5 ]
  wait "$w1" || true
}

@test "cli.token is 0600 and authenticates as a superuser" {
  start_server
  [ "$(stat -c %a "$POCKETCTL_DATA/cli.token")" = 600 ]
  [ "$(stat -c %a "$POCKETCTL_DATA/secret.key")" = 600 ]
  token="$(cat "$POCKETCTL_DATA/cli.token")"
  http POST /api/collections/_superusers/auth-refresh -H "Authorization: $token"
  [ "$CODE" = 200 ]
  [[ "$BODY" == *'"collectionName":"_superusers"'* ]]
  [[ "$BODY" == *'"email":"pocketctl-cli@localhost"'* ]]
  # its password can never match
  login _superusers pocketctl-cli@localhost 'any-password-1'
  [ "$CODE" = 400 ]
  [ "$BODY" = '{"status":400,"message":"Failed to authenticate.","data":{}}' ]
  # a restart issues a fresh token; the CLI record is not duplicated
  stop_server
  start_server
  [ "$(stat -c %a "$POCKETCTL_DATA/cli.token")" = 600 ]
  http POST /api/collections/_superusers/auth-refresh -H "Authorization: $(cat "$POCKETCTL_DATA/cli.token")"
  [ "$CODE" = 200 ]
  grep -q '"pid": '"$SERVER_PID" "$POCKETCTL_DATA/server.json"
}

@test "--manifests applies them before serving" {
  start_server --manifests "$REPO/manifests"
  grep -q "applied $REPO/manifests: [1-9][0-9]* created" "$T/server.log"
  stop_server
  [ "$SERVER_STATUS" -eq 0 ]
  # a second start finds everything in place
  start_server --manifests "$REPO/manifests"
  grep -q "applied $REPO/manifests: 0 created, 0 configured" "$T/server.log"
}

@test "a bad manifest at start stops the server with file:line:col and exit 2" {
  mkdir -p "$T/m"
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata:\n  name: p\nspec:\n  body: hi\n  colour: blue\n' \
    > "$T/m/bad.yaml"
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root" --manifests "$T/m"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"bad.yaml:7:"* ]]
  [[ "$output" == *colour* ]]
  [ ! -e "$POCKETCTL_DATA/server.json" ]
  # the lock went with the process: a good start works
  start_server
}

@test "admin password from the environment is checked" {
  export POCKETCTL_ADMIN_EMAIL="admin@example.com" POCKETCTL_ADMIN_PASSWORD="short"
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *POCKETCTL_ADMIN_PASSWORD* ]]
  unset POCKETCTL_ADMIN_PASSWORD
  run "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"POCKETCTL_ADMIN_EMAIL and POCKETCTL_ADMIN_PASSWORD"* ]]
}

@test "bad serve options are usage errors" {
  run "$PCTL" serve --workers 0
  [ "$status" -eq 2 ]
  [[ "$output" == *"--workers needs a whole number"* ]]
  run "$PCTL" serve --listen
  [ "$status" -eq 2 ]
  run "$PCTL" serve --frobnicate
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown argument '--frobnicate'"* ]]
  # a port that is taken
  start_server
  hostport="${URL#http://}"
  run "$PCTL" --data "$T/other" serve --listen "$hostport" --root "$T/root"
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot listen on $hostport: address in use"* ]]
}
