#!/usr/bin/env bats
# Help and version, for every command of the command table: the list of
# commands and their options comes from the binary itself (`help -o json`,
# the table in controller/cli/commands.c), and serve's flags and the
# environment variables are cross-checked against the source, so a flag or
# variable added without its line in the table fails here.

load helpers
bats_require_minimum_version 1.5.0

table() { "$PCTL" help -o json; }
commands() { table | jq -r '.commands[].name'; }

@test "help -o json is the whole table: every command with a usage, a summary and options with help" {
  run table
  [ "$status" -eq 0 ]
  jq -e '.commands | length > 10' <<<"$output" >/dev/null
  run jq -r '.commands[] | .name as $n | select((.usage | startswith($n)) and (.summary | length > 0) | not) | .name' <<<"$output"
  [ -z "$output" ]
  run jq -r '[.commands[].options[], .globalOptions[]] | .[] | select((.name | startswith("--")) and (.help | length > 0) | not) | .name' <<<"$(table)"
  [ -z "$output" ]
  [ "$(table | jq -r '.exitCodes | map(.code) | join(",")')" = "0,1,2,3,4" ]
}

@test "COMMAND --help, COMMAND -h and help COMMAND: stdout, exit 0, every option of the table, nothing touched" {
  local cmd opt n=0
  for cmd in $(commands); do
    for form in "$cmd --help" "$cmd -h" "help $cmd"; do
      # shellcheck disable=SC2086
      run --separate-stderr "$PCTL" $form
      [ "$status" -eq 0 ] || { echo "$form: exit $status: $stderr"; return 1; }
      [ -z "$stderr" ] || { echo "$form wrote to stderr: $stderr"; return 1; }
      [[ "${lines[0]}" == "usage: pocketctl $cmd"* ]] || { echo "$form: ${lines[0]}"; return 1; }
      for opt in $(table | jq -r --arg c "$cmd" '.commands[] | select(.name == $c) | .options[] | .name, (.alias // empty)'); do
        [[ "$output" == *"$opt"* ]] || { echo "$form does not mention $opt"; return 1; }
      done
      if table | jq -e --arg c "$cmd" '.commands[] | select(.name == $c) | .formats != null' >/dev/null; then
        [[ "$output" == *"-o, --output FORMAT"* ]] || { echo "$form: no -o"; return 1; }
      fi
      [[ "$output" == *"exit codes:"* ]]
      n=$((n + 1))
    done
  done
  [ "$n" -ge 45 ]
  # nothing ran: no data directory, no container restarted, no server asked
  [ ! -e "$POCKETCTL_DATA" ]
}

@test "restart --help prints help and restarts nothing (no server is even needed)" {
  run --separate-stderr "$PCTL" restart --help
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "usage: pocketctl restart NAME"* ]]
  [[ "$output" == *"--wait"* && "$output" == *"--timeout DURATION"* ]]
  [[ "$output" != *"restart requested"* ]]
  # "--" makes it a name again: then a server is needed
  run "$PCTL" restart -- --help
  [ "$status" -eq 2 ]
  [[ "$output" != *"usage:"* ]]
}

@test "serve --help documents every flag cmd_serve.c parses" {
  local flags flag
  flags=$(grep -oE '"--[a-z-]+"' "$REPO/controller/server/cmd_serve.c" | tr -d '"' | sort -u)
  [ "$(wc -w <<<"$flags")" -ge 25 ]
  run "$PCTL" serve --help
  [ "$status" -eq 0 ]
  for flag in $flags; do
    grep -qE -- "^  $flag( |$)" <<<"$output" || { echo "serve --help lacks $flag"; return 1; }
  done
}

@test "serve --help documents every environment variable the program reads" {
  local vars v
  # getenv("X"), util_env_int("X", ...), #define ..._ENV "X", and the
  # account variables seed.c reads by name
  vars=$(cd "$REPO" && {
    grep -rhoE '(getenv|util_env_int)\("[A-Z_0-9]+"' controller reconcilers | grep -oE '"[A-Z_0-9]+"'
    grep -rhoE '#define [A-Z_]+_ENV "[A-Z_0-9]+"' controller reconcilers | grep -oE '"[A-Z_0-9]+"'
    grep -hoE '"[A-Z_]+_(EMAIL|PASSWORD)"' controller/server/seed.c
  } | tr -d '"' | sort -u)
  [ "$(wc -w <<<"$vars")" -ge 40 ]
  run "$PCTL" serve --help
  [ "$status" -eq 0 ]
  for v in $vars; do
    grep -qE -- "^  $v( |$)" <<<"$output" || { echo "serve --help lacks $v"; return 1; }
  done
  # and the client's variables are in the global help
  run "$PCTL" help
  for v in POCKETCTL_DATA POCKETCTL_SERVER POCKETCTL_TOKEN POCKETCTL_TIMEOUT; do
    [[ "$output" == *"$v"* ]]
  done
}

@test "--version and version print the same version and exit 0" {
  run --separate-stderr "$PCTL" --version
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^pocketctl\ [^\ ]+\ \(schema\ version\ [0-9]+\)$ ]]
  local v="$output"
  run "$PCTL" version
  [ "$status" -eq 0 ]
  [ "$output" = "$v" ]
  [ "$(table | jq -r .version)" = "$(awk '{print $2}' <<<"$v")" ]
  run "$PCTL" version extra
  [ "$status" -eq 2 ]
}

@test "an unknown option: exit 2, the command's usage on stderr, nothing on stdout" {
  local cmd
  for cmd in $(commands); do
    run --separate-stderr "$PCTL" "$cmd" --no-such-option
    [ "$status" -eq 2 ] || { echo "$cmd: exit $status"; return 1; }
    [ -z "$output" ] || { echo "$cmd wrote to stdout: $output"; return 1; }
    # (delete's parser, in cmd_get.c, says only its usage)
    [ "$cmd" = delete ] || [[ "$stderr" == *"--no-such-option"* ]] || { echo "$cmd: $stderr"; return 1; }
    [[ "$stderr" == *"usage: pocketctl $cmd"* ]] || { echo "$cmd: no usage: $stderr"; return 1; }
  done
  run "$PCTL" help no-such-command
  [ "$status" -eq 2 ]
  [[ "$output" == *"unknown command 'no-such-command'"* ]]
  run "$PCTL" no-such-command
  [ "$status" -eq 2 ]
  [ ! -e "$POCKETCTL_DATA" ]
}
