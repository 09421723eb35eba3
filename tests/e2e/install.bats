#!/usr/bin/env bats
# Installing like a daemon: `make install` (DESTDIR, PREFIX) and what it
# puts in place - the man page (man -l, covering every command, serve flag
# and environment variable of the code), the completion scripts generated
# from the command table (bash: complete -p and compgen; zsh: zsh -n), the
# systemd unit (systemd-analyze verify) and the env file; sd_notify READY,
# WATCHDOG and STOPPING on a real notify socket; and the CLI finding the
# installed daemon's data directory from anywhere.
#
# make install installs $PCTL (INSTALL_BIN), so nothing is rebuilt here.

load helpers

setup() {
  e2e_setup install
  STAGE="$T/stage"
}

# install_to ARGS...: make install with ARGS, quietly.
install_to() {
  make -C "$REPO" -s install INSTALL_BIN="$PCTL" "$@" >"$T/make.log" 2>&1 ||
    { cat "$T/make.log" >&2; return 1; }
}

# The man page as text on one very wide line per paragraph, so that no
# word is hyphenated at a line end.
man_text() {
  MANPAGER=cat MANWIDTH=2000 man -l "$1" 2>&1
}

@test "make install DESTDIR PREFIX=/usr puts every file in place, and keeps an edited env file" {
  install_to DESTDIR="$STAGE" PREFIX=/usr
  [ -x "$STAGE/usr/bin/pocketctl" ]
  [ -s "$STAGE/usr/share/man/man1/pocketctl.1" ]
  [ -s "$STAGE/usr/share/bash-completion/completions/pocketctl" ]
  [ -s "$STAGE/usr/share/zsh/site-functions/_pocketctl" ]
  unit="$STAGE/usr/lib/systemd/system/pocketctl.service"
  env="$STAGE/etc/pocketctl/pocketctl.env"
  [ -s "$unit" ] && [ -s "$env" ]
  [ "$(stat -c %a "$env")" = 600 ]
  [ "$(stat -c %a "$unit")" = 644 ]
  "$STAGE/usr/bin/pocketctl" version | grep -q '^pocketctl '
  # the unit names the installed paths, and has no placeholder left
  grep -qx 'ExecStart=/usr/bin/pocketctl serve --root ${POCKETCTL_ROOT} $POCKETCTL_SERVE_FLAGS' "$unit"
  grep -qx 'EnvironmentFile=-/etc/pocketctl/pocketctl.env' "$unit"
  grep -qx 'Type=notify' "$unit"
  grep -qx 'StateDirectory=pocketctl pocketctl-root' "$unit"
  grep -qx 'Environment=POCKETCTL_DATA=/var/lib/pocketctl' "$unit"
  grep -qE '^WatchdogSec=[1-9]' "$unit"
  ! grep -q '@[A-Z]*@' "$unit" "$env"
  # a second install replaces the rest, never the settings
  echo 'DOCKER_HOST=unix:///run/podman/podman.sock' >>"$env"
  install_to DESTDIR="$STAGE" PREFIX=/usr
  grep -qx 'DOCKER_HOST=unix:///run/podman/podman.sock' "$env"
  # uninstall removes what install put there, but the settings
  make -C "$REPO" -s uninstall DESTDIR="$STAGE" PREFIX=/usr
  [ ! -e "$STAGE/usr/bin/pocketctl" ] && [ ! -e "$unit" ]
  [ ! -e "$STAGE/usr/share/man/man1/pocketctl.1" ]
  [ -s "$env" ]
}

@test "systemd-analyze verify accepts the installed unit, and refuses a broken copy" {
  command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
  # verify checks that ExecStart's binary exists on this machine and runs
  # man for Documentation=man:pocketctl(1): install under a prefix that
  # exists here, with MANPATH pointing at its man page.
  install_to PREFIX="$T/prefix" SYSCONFDIR="$T/etc"
  unit="$T/prefix/lib/systemd/system/pocketctl.service"
  grep -qx "ExecStart=$T/prefix/bin/pocketctl serve --root \${POCKETCTL_ROOT} \$POCKETCTL_SERVE_FLAGS" "$unit"
  run env MANPATH="$T/prefix/share/man" systemd-analyze verify "$unit"
  echo "$output"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  # the same check fails on a unit whose binary is missing
  mkdir -p "$T/broken"
  sed "s|^ExecStart=$T/prefix/bin/pocketctl|ExecStart=$T/nowhere/pocketctl|" "$unit" \
    >"$T/broken/pocketctl.service"
  run env MANPATH="$T/prefix/share/man" systemd-analyze verify "$T/broken/pocketctl.service"
  [ "$status" -ne 0 ]
  [[ "$output" == *"$T/nowhere/pocketctl"* ]]
}

@test "man -l shows the page, with every command, serve flag and environment variable" {
  install_to DESTDIR="$STAGE" PREFIX=/usr
  page="$STAGE/usr/share/man/man1/pocketctl.1"
  man_text "$page" >"$T/man.txt"
  grep -q '^NAME' "$T/man.txt"
  for s in SYNOPSIS COMMANDS 'SERVE OPTIONS' 'DATA DIRECTORY' ENVIRONMENT FILES SYSTEMD 'EXIT STATUS'; do
    grep -q "^$s" "$T/man.txt" || { echo "no section $s"; return 1; }
  done
  # every command of `pocketctl help`
  pctl help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' >"$T/commands"
  [ "$(wc -l <"$T/commands")" -ge 10 ]
  while read -r c; do
    grep -qE "^ +$c( |$)" "$T/man.txt" || { echo "command $c is not in the man page"; return 1; }
  done <"$T/commands"
  # every serve flag of its usage line
  # (an entry's heading, or inside one: "--manifests DIR [--watch ...]")
  pctl help -o json | jq -r '.commands[] | select(.name == "serve") | .options[].name' |
    sort -u >"$T/flags"
  [ "$(wc -l <"$T/flags")" -ge 20 ]
  while read -r f; do
    grep -qE -- "^ +(--.* \[)?$f( |\]|,|$)" "$T/man.txt" ||
      { echo "serve flag $f has no entry"; return 1; }
  done <"$T/flags"
  # every environment variable the code reads (fallback names inside an entry)
  grep -rhoE '"(POCKETCTL|POCKETBASE|PN|AGENT|DOCKER)_[A-Z_]*[A-Z]"' \
    "$REPO/controller" "$REPO/reconcilers" --include='*.c' --include='*.h' |
    tr -d '"' | sort -u >"$T/vars"
  [ "$(wc -l <"$T/vars")" -ge 40 ]
  while read -r v; do
    grep -qw -- "$v" "$T/man.txt" || { echo "variable $v is not in the man page"; return 1; }
  done <"$T/vars"
  # exit codes
  grep -qE '^ +0$' "$T/man.txt" && grep -qE '^ +1$' "$T/man.txt" && grep -qE '^ +2$' "$T/man.txt"
}

@test "bash completion from the command table: complete -p, commands, options, -o formats, kinds, files" {
  install_to DESTDIR="$STAGE" PREFIX=/usr
  comp="$STAGE/usr/share/bash-completion/completions/pocketctl"
  run bash -c "source '$comp' && complete -p pocketctl"
  [ "$status" -eq 0 ]
  [ "$output" = "complete -F _pocketctl pocketctl" ]
  # c WORDS...: what completing the last word offers, one per line, sorted
  c() {
    bash -c 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pocketctl;
             printf "%s\n" "${COMPREPLY[@]}" | sort' "$comp" pocketctl "$@"
  }
  [ "$(c app)" = apply ]
  [ "$(c re)" = "$(printf 'reconcile\nrestart\nrestore')" ]
  # the hidden completion command itself is not offered
  ! c "" | grep -qx completion
  # every command of `pocketctl help`, and no other
  pctl help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' | sort >"$T/commands"
  [ "$(c "")" = "$(cat "$T/commands")" ]
  [ "$(c get -o "")" = "$(printf 'json\njsonpath\nname\nrecord\ntable\nwide\nyaml')" ]
  [ "$(c status -o t)" = "$(printf 'table\ntext')" ]
  [ "$(c get McpS)" = McpServer ]
  [ "$(c watch ToolPerm)" = ToolPermission ]
  [ "$(c --data /tmp get toolperm)" = toolpermission ]
  [ "$(c --data = /tmp app)" = apply ]   # --data=/tmp, as bash splits it
  [ "$(c ledger "")" = verify ]
  [ "$(c help resta)" = restart ]
  [ "$(c serve --max-a)" = --max-apply-body ]
  c apply --d | grep -qx -- --dry-run
  c apply --d | grep -qx -- --data
  # a PATH completes files, a DIR directories
  mkdir -p "$T/files/sub"
  : >"$T/files/m.yaml"
  [ "$(c apply -f "$T/files/m")" = "$T/files/m.yaml" ]
  [ "$(c serve --root "$T/files/")" = "$T/files/sub" ]
  # NAME completes nothing
  [ -z "$(c get McpServer "")" ]
}

@test "zsh completion is valid zsh and names every command" {
  command -v zsh >/dev/null || skip "zsh is not installed"
  install_to DESTDIR="$STAGE" PREFIX=/usr
  comp="$STAGE/usr/share/zsh/site-functions/_pocketctl"
  head -1 "$comp" | grep -qx '#compdef pocketctl'
  run zsh -n "$comp"
  echo "$output"
  [ "$status" -eq 0 ]
  pctl help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p' >"$T/commands"
  while read -r c; do
    grep -qE "^		'$c:" "$comp" || { echo "command $c is missing"; return 1; }
    grep -qE "^	$c\)" "$comp" || { echo "command $c has no arguments"; return 1; }
  done <"$T/commands"
  grep -q "'1:KIND:{compadd -a kinds}'" "$comp"
}

@test "completion: a missing or unknown shell is a usage error" {
  run "$PCTL" completion
  [ "$status" -eq 2 ]
  [[ "$output" == *"bash or zsh"* ]]
  run "$PCTL" completion fish
  [ "$status" -eq 2 ]
  [[ "$output" == *"not 'fish'"* ]]
  run "$PCTL" completion bash zsh
  [ "$status" -eq 2 ]
}

# listen: a notify socket at $T/notify whose datagrams go to $T/notify.log
listen() {
  : >"$T/notify.log"
  python3 "$BATS_TEST_DIRNAME/notify_listener.py" "$T/notify" "$T/notify.log" &
  LISTENER=$!
  wait_for 10 test -S "$T/notify"
}

# notes N REGEX: at least N datagrams matched REGEX
notes() {
  [ "$(grep -cE "$2" "$T/notify.log")" -ge "$1" ]
}

unlisten() {
  kill "$LISTENER" 2>/dev/null || true
  wait "$LISTENER" 2>/dev/null || true
}

@test "sd_notify: READY=1 once the server answers, WATCHDOG=1 pings, STOPPING=1 on SIGTERM" {
  listen
  start_server NOTIFY_SOCKET="$T/notify" WATCHDOG_USEC=300000
  wait_for 20 grep -q '^READY=1' "$T/notify.log"
  grep -q "^READY=1|STATUS=serving on $URL\$" "$T/notify.log"
  # pings every 150 ms while the engine loops
  wait_for 30 notes 3 '^WATCHDOG=1$'
  # SIGHUP is still the main thread's (the watchdog thread blocks it)
  kill -HUP "$SERVER_PID"
  wait_for 30 grep -q 'SIGHUP' "$T/server.log"
  curl -fsS -m 5 "$URL/healthz" >/dev/null
  stop_server
  [ "$SERVER_STATUS" -eq 0 ]
  unlisten
  grep -q '^STOPPING=1' "$T/notify.log"
  # in that order: READY before the first ping, STOPPING last
  [ "$(grep -n '' "$T/notify.log" | grep -m1 READY | cut -d: -f1)" = 1 ]
  [ "$(tail -1 "$T/notify.log")" = "STOPPING=1|STATUS=draining" ]
}

@test "sd_notify: no watchdog pings without WATCHDOG_USEC, nor when WATCHDOG_PID names another process" {
  listen
  start_server NOTIFY_SOCKET="$T/notify"
  wait_for 20 grep -q '^READY=1' "$T/notify.log"
  stop_server
  start_server NOTIFY_SOCKET="$T/notify" WATCHDOG_USEC=100000 WATCHDOG_PID=1
  wait_for 20 notes 2 '^READY=1'
  sleep 0.5   # five intervals: pings would have come
  stop_server
  unlisten
  [ "$(grep -c '^STOPPING=1' "$T/notify.log")" -eq 2 ]
  ! grep -q WATCHDOG "$T/notify.log"
}

@test "sd_notify: a server started without NOTIFY_SOCKET runs and stops as before" {
  listen
  start_server
  stop_server
  unlisten
  [ "$SERVER_STATUS" -eq 0 ]
  [ ! -s "$T/notify.log" ]
}

# in_elsewhere CMD...: run pocketctl from a directory without pocket-data,
# with no POCKETCTL_DATA, the installed daemon's directory at $T/sys.
in_elsewhere() {
  mkdir -p "$T/elsewhere"
  (cd "$T/elsewhere" && env -u POCKETCTL_DATA POCKETCTL_SYSTEM_DATA="$T/sys" "$PCTL" "$@")
}

@test "the CLI finds the installed daemon's server from any directory" {
  export POCKETCTL_DATA="$T/sys"
  start_server
  # reconcile needs a server: it is found through $T/sys/server.json
  run in_elsewhere reconcile --wait -o json
  echo "$output"
  [ "$status" -eq 0 ]
  run in_elsewhere get AiAgent -o json
  [ "$status" -eq 0 ]
  # writes go through it (the server's log shows the request)
  printf 'apiVersion: pocketcoder.dev/v1\nkind: AiPrompt\nmetadata: {name: found}\nspec: {body: hello}\n' >"$T/p.yaml"
  run in_elsewhere apply -f "$T/p.yaml"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"aiprompt/found created"* ]]
  grep -q 'POST /api/v1/apply 200' "$T/server.log"
  [ ! -e "$T/elsewhere/pocket-data" ]
  # --data and POCKETCTL_DATA still win
  mkdir -p "$T/elsewhere"
  run bash -c "cd '$T/elsewhere' && POCKETCTL_SYSTEM_DATA='$T/sys' POCKETCTL_DATA='$T/other' '$PCTL' reconcile"
  [ "$status" -eq 2 ]
  [[ "$output" == *"'$T/other'"* ]]
  run in_elsewhere --data "$T/other2" reconcile
  [ "$status" -eq 2 ]
  [[ "$output" == *"'$T/other2'"* ]]
}

@test "the CLI prefers an existing ./pocket-data, and falls back to it without a daemon" {
  export POCKETCTL_DATA="$T/sys"
  start_server
  mkdir -p "$T/elsewhere/pocket-data"
  run in_elsewhere reconcile
  [ "$status" -eq 2 ]
  [[ "$output" == *"'./pocket-data'"* ]]
  stop_server
  rm -r "$T/elsewhere/pocket-data"
  # no server.json there (a clean stop removed it): ./pocket-data again
  [ ! -e "$T/sys/server.json" ]
  run in_elsewhere reconcile
  [ "$status" -eq 2 ]
  [[ "$output" == *"'./pocket-data'"* ]]
}

@test "serve never picks the installed daemon's directory by looking" {
  export POCKETCTL_DATA="$T/sys"
  start_server
  mkdir -p "$T/elsewhere"
  (cd "$T/elsewhere" && exec env -u POCKETCTL_DATA POCKETCTL_SYSTEM_DATA="$T/sys" \
    "$PCTL" serve --listen 127.0.0.1:0 --root "$T/root2" --bcrypt-cost 4 \
    >"$T/serve2.log" 2>&1) &
  pid2=$!
  wait_for 30 grep -q 'serving on' "$T/serve2.log"
  grep -q "data directory './pocket-data'" "$T/serve2.log"
  kill -TERM "$pid2"
  wait "$pid2"
  [ -d "$T/elsewhere/pocket-data" ]
}
