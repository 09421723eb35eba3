#!/usr/bin/env bats
# Accounts from the command line: `superuser upsert`, `user create|passwd`,
# online (through the server's records API) and offline (the data
# directory), the password from a terminal prompt without echo or from
# --password-stdin, then a sign-in with the new password; the seeded
# superuser's changed password; the CLI's own superuser kept.

load helpers
load api

setup() {
  e2e_setup accounts
  export POCKETCTL_BCRYPT_COST=4
}

teardown() {
  stop_server
  rm -rf "$T"
}

# signin COLLECTION EMAIL PASSWORD: the token, against the running server
signin() { login "$@"; }

@test "offline: user create, passwd and superuser upsert, then sign in" {
  run pctl user create alice@example.test --role admin --password-stdin <<<'alice-pass-1'
  [ "$status" -eq 0 ]
  [[ "$output" == *"user 'alice@example.test' created (offline)"* ]]
  run pctl user passwd alice@example.test --password-stdin <<<'alice-pass-2'
  [ "$status" -eq 0 ]
  [[ "$output" == *"password changed (offline)"* ]]
  run pctl superuser upsert root@example.test --password-stdin <<<'root-pass-1'
  [ "$status" -eq 0 ]
  [[ "$output" == *"superuser 'root@example.test' created (offline)"* ]]
  run pctl superuser upsert ROOT@example.test --password-stdin <<<'root-pass-2'
  [ "$status" -eq 0 ]
  [[ "$output" == *"password changed (offline)"* ]]
  start_server
  [ -z "$(signin users alice@example.test alice-pass-1)" ]
  tok="$(signin users alice@example.test alice-pass-2)"
  [ -n "$tok" ]
  api GET "/api/collections/users/records" "$tok"
  [ "$code" = 200 ]
  [ "$(jq -r '.items[0].role' <<<"$body")" = admin ]
  [ "$(jq -r '.items[0].verified' <<<"$body")" = true ]
  [ -z "$(signin _superusers root@example.test root-pass-1)" ]
  [ -n "$(signin _superusers root@example.test root-pass-2)" ]
}

@test "online: through the server, the old tokens signed out by a new password" {
  start_server
  run pctl user create bob@example.test --password-stdin <<<'bob-pass-11'
  [ "$status" -eq 0 ]
  [ "$output" = "user 'bob@example.test' created" ]
  old="$(signin users bob@example.test bob-pass-11)"
  [ -n "$old" ]
  api GET "/api/collections/users/records" "$old"
  [ "$(jq -r '.items[0].role' <<<"$body")" = user ]
  run pctl user passwd bob@example.test --role agent --password-stdin <<<'bob-pass-22'
  [ "$status" -eq 0 ]
  [ "$output" = "user 'bob@example.test' password changed" ]
  api GET "/api/collections/users/records" "$old"
  [ "$code" = 401 ] || [ "$(jq -r '.items | length' <<<"$body")" = 0 ]
  new="$(signin users bob@example.test bob-pass-22)"
  [ -n "$new" ]
  api GET "/api/collections/users/records" "$new"
  [ "$(jq -r '.items[0].role' <<<"$body")" = agent ]
  run pctl superuser upsert su@example.test --password-stdin <<<'su-pass-111'
  [ "$status" -eq 0 ]
  [ "$output" = "superuser 'su@example.test' created" ]
  [ -n "$(signin _superusers su@example.test su-pass-111)" ]
  # a second create of the same email is refused, nothing changed
  run pctl user create bob@example.test --password-stdin <<<'bob-pass-33'
  [ "$status" -eq 2 ]
  [[ "$output" == *"exists already"*"user passwd"* ]]
  [ -n "$(signin users bob@example.test bob-pass-22)" ]
}

@test "the password from a terminal: two prompts, no echo, must agree" {
  run "${PY:-python3}" "$BATS_TEST_DIRNAME/pty_prompt.py" tty-pass-123 tty-pass-123 -- \
    "$PCTL" user create tty@example.test
  [ "$status" -eq 0 ]
  [[ "$output" == *"Password:"*"Confirm password:"*"created (offline)"* ]]
  [[ "$output" != *tty-pass-123* ]]
  run "${PY:-python3}" "$BATS_TEST_DIRNAME/pty_prompt.py" new-pass-123 new-pass-456 -- \
    "$PCTL" user passwd tty@example.test
  [ "$status" -eq 2 ]
  [[ "$output" == *"the two passwords differ; nothing was changed"* ]]
  [[ "$output" != *new-pass-* ]]
  start_server
  [ -n "$(signin users tty@example.test tty-pass-123)" ]
}

@test "bad input: no terminal, a weak password, unknown options and roles, exit 2 and nothing written" {
  run pctl user create x@example.test </dev/null
  [ "$status" -eq 2 ]
  [[ "$output" == *"no terminal to ask for the password on; pass --password-stdin"* ]]
  run pctl user create x@example.test --password-stdin <<<'short'
  [ "$status" -eq 2 ]
  [[ "$output" == *"password: password must be at least 8 characters"* ]]
  run pctl user create x@example.test --password-stdin </dev/null
  [ "$status" -eq 2 ]
  [[ "$output" == *"stdin is empty"* ]]
  run pctl user create x@example.test --role root --password-stdin <<<'long-enough-1'
  [ "$status" -eq 2 ]
  [[ "$output" == *"--role takes admin, agent or user, not 'root'"* ]]
  run pctl superuser upsert x@example.test --role admin --password-stdin <<<'long-enough-1'
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown or incomplete option '--role'"* ]]
  run pctl user create 'not"an@email' --password-stdin <<<'long-enough-1'
  [ "$status" -eq 2 ]
  [[ "$output" == *"is not an email address"* ]]
  run pctl user frobnicate x@example.test
  [ "$status" -eq 2 ]
  [[ "$output" == *"usage: pocketctl user create|passwd EMAIL"* ]]
  run pctl user passwd nobody@example.test --password-stdin <<<'long-enough-1'
  [ "$status" -eq 2 ]
  [[ "$output" == *"no users account has the email 'nobody@example.test'"* ]]
  run pctl get User -o json
  [ "$status" -eq 0 ]
  [ "$(jq '.items | length' <<<"$output")" = 0 ]
}

@test "a changed POCKETCTL_ADMIN_PASSWORD is applied to the existing superuser" {
  start_server POCKETCTL_ADMIN_EMAIL=admin@example.test POCKETCTL_ADMIN_PASSWORD=first-pass-1
  [ -n "$(signin _superusers admin@example.test first-pass-1)" ]
  stop_server
  start_server POCKETCTL_ADMIN_EMAIL=admin@example.test POCKETCTL_ADMIN_PASSWORD=second-pass-2
  has "$T/server.log" "superuser 'admin@example.test' already exists: its password is now the one in POCKETCTL_ADMIN_PASSWORD"
  [ -z "$(signin _superusers admin@example.test first-pass-1)" ]
  [ -n "$(signin _superusers admin@example.test second-pass-2)" ]
}

@test "the CLI's own superuser cannot be deleted or re-keyed while the server runs" {
  start_server
  api GET "/api/collections/_superusers/records?filter=$(jq -rn '"email=\"pocketctl-cli@localhost\""|@uri')" "$TOKEN"
  [ "$code" = 200 ]
  cid="$(jq -r '.items[0].id' <<<"$body")"
  [ -n "$cid" ] && [ "$cid" != null ]
  api DELETE "/api/collections/_superusers/records/$cid" "$TOKEN"
  [ "$code" = 400 ]
  [[ "$body" == *"is the local CLI's own credential"*"stop the server first"* ]]
  run pctl delete Superuser "$cid"
  [ "$status" -eq 2 ]
  [[ "$output" == *"deleting it would break every later CLI command"* ]]
  run pctl superuser upsert pocketctl-cli@localhost --password-stdin <<<'take-over-1'
  [ "$status" -eq 2 ]
  [[ "$output" == *"is the local CLI's own credential"* ]]
  # the CLI still works
  run pctl get Superuser
  [ "$status" -eq 0 ]
  # a cli.token the server no longer knows: the message says what to do
  cp "$POCKETCTL_DATA/cli.token" "$T/cli.token"
  printf 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x\n' >"$POCKETCTL_DATA/cli.token"
  run pctl get Superuser
  [ "$status" -eq 2 ]
  [[ "$output" == *"HTTP 401"*"restart the server to have it write a new cli.token"* ]]
  cp "$T/cli.token" "$POCKETCTL_DATA/cli.token"
}
