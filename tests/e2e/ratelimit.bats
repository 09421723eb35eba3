#!/usr/bin/env bats
# Login throttling and rate limits (issue 20, item 5): failed password
# logins per identity (case-folded) and per client IP answer 429 with
# Retry-After and PocketBase's error body once the budget is spent, without
# running bcrypt; a success resets the identity; other identities are not
# blocked. The groups of --rate-limit / POCKETCTL_RATE_LIMIT.

load helpers

setup() {
  e2e_setup ratelimit
  command -v jq >/dev/null || skip "jq is needed"
}

# new_user EMAIL PASSWORD: created by the CLI's superuser
new_user() {
  local code
  code="$(curl -sS -m 10 -o "$T/body" -w '%{http_code}' -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"email\":\"$1\",\"password\":\"$2\",\"passwordConfirm\":\"$2\",\"role\":\"user\",\"name\":\"${1%@*}\"}" \
    "$URL/api/collections/users/records")"
  [ "$code" = 200 ] || { cat "$T/body" >&2; return 1; }
}

# login EMAIL PASSWORD: sets code, body, headers (lower-cased) and secs
login() {
  local out
  out="$(curl -sS -m 20 -o "$T/body" -D "$T/headers" -w '%{http_code} %{time_total}' \
    -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$1\",\"password\":\"$2\"}" \
    "$URL/api/collections/users/auth-with-password")"
  code="${out% *}"
  secs="${out#* }"
  body="$(cat "$T/body")"
  headers="$(tr 'A-Z' 'a-z' <"$T/headers" | tr -d '\r')"
}

@test "5 failed logins of one identity: then 429 with Retry-After, the right password too; others log in" {
  start_server
  new_user alice@example.com alice-pass-123
  new_user bob@example.com bob-pass-123
  for i in 1 2 3 4 5; do
    # the identity is case-folded: every spelling counts for alice
    [ "$i" = 3 ] && who=ALICE@Example.com || who=alice@example.com
    login "$who" wrong-password
    [ "$code" = 400 ]
  done
  login alice@example.com wrong-password
  echo "$code $body $headers"
  [ "$code" = 429 ]
  [ "$(jq -c . <<<"$body")" = '{"status":429,"message":"Too Many Requests.","data":{}}' ]
  retry="$(sed -n 's/^retry-after: *\([0-9]*\)$/\1/p' <<<"$headers")"
  [ -n "$retry" ] && [ "$retry" -ge 1 ] && [ "$retry" -le 60 ]
  login alice@example.com alice-pass-123
  [ "$code" = 429 ]
  # another identity from the same address is not blocked
  login bob@example.com bob-pass-123
  [ "$code" = 200 ]
  [ -n "$(jq -r .token <<<"$body")" ]
  curl -fsS -m 5 "$URL/healthz" >/dev/null
}

@test "a blocked attempt costs no bcrypt" {
  start_server -- --bcrypt-cost 12 --rate-limit login-identity=1/60
  new_user carol@example.com carol-pass-123
  login carol@example.com wrong-password
  [ "$code" = 400 ]
  slow="$secs"
  login carol@example.com wrong-password
  [ "$code" = 429 ]
  echo "failed: $slow s, blocked: $secs s"
  # a bcrypt of cost 12 takes a good 0.2 s; the refusal is a lookup
  python3 -c "import sys; s, b = map(float, sys.argv[1:]); sys.exit(0 if s > 0.15 and b < s / 3 else 1)" "$slow" "$secs"
}

@test "after the window the right password works, and a success resets the count" {
  start_server -- --rate-limit login-identity=2/2
  new_user dave@example.com dave-pass-123
  login dave@example.com wrong-password; [ "$code" = 400 ]
  login dave@example.com wrong-password; [ "$code" = 400 ]
  login dave@example.com dave-pass-123; [ "$code" = 429 ]
  sleep 2.2
  login dave@example.com dave-pass-123
  [ "$code" = 200 ]
  # the success gave the budget back: two failures again before a 429
  login dave@example.com wrong-password; [ "$code" = 400 ]
  login dave@example.com dave-pass-123; [ "$code" = 200 ]
  login dave@example.com wrong-password; [ "$code" = 400 ]
  login dave@example.com wrong-password; [ "$code" = 400 ]
  login dave@example.com wrong-password; [ "$code" = 429 ]
}

@test "failed logins per client IP: many identities from one address are stopped too" {
  start_server -- --rate-limit login-ip=4/60
  for i in 1 2 3 4; do
    login "nobody$i@example.com" x; [ "$code" = 400 ]
  done
  login nobody5@example.com x
  [ "$code" = 429 ]
}

@test "--rate-limit and POCKETCTL_RATE_LIMIT: per group budgets with Retry-After" {
  start_server POCKETCTL_RATE_LIMIT=all=0/1,write=2/30 -- --rate-limit all=20/60
  # writes: 2 per 30 s
  for i in 1 2; do
    c="$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: $TOKEN" \
      -H 'Content-Type: application/json' --data-binary "{\"name\":\"rl-$i\",\"body\":\"x\"}" \
      "$URL/api/collections/ai_prompts/records")"
    [ "$c" = 200 ]
  done
  c="$(curl -sS -m 5 -o "$T/body" -D "$T/headers" -w '%{http_code}' -X POST -H "Authorization: $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"name":"rl-3","body":"x"}' \
    "$URL/api/collections/ai_prompts/records")"
  [ "$c" = 429 ]
  grep -qi '^retry-after: [0-9]' "$T/headers"
  # reads are in "all" only: 20 a minute in all (the flag overrides the
  # environment), the loopback CLI token is not exempt
  n=0
  for i in $(seq 1 25); do
    c="$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $TOKEN" "$URL/api/health")"
    [ "$c" = 429 ] && n=$((n + 1))
  done
  echo "429s: $n"
  [ "$n" -ge 5 ] && [ "$n" -le 20 ]
}

@test "bad --rate-limit and POCKETCTL_RATE_LIMIT are usage errors (exit 2)" {
  run timeout 20 "$PCTL" serve --rate-limit auth=5 --listen 127.0.0.1:0 --root "$T/root"
  echo "$output"
  [ "$status" = 2 ]
  [[ "$output" == *"GROUP=N/SECONDS"* ]]
  run timeout 20 env POCKETCTL_RATE_LIMIT=nope=1/1 "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root"
  echo "$output"
  [ "$status" = 2 ]
  [[ "$output" == *"nope"* ]]
}
