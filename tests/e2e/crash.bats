#!/usr/bin/env bats
# Crash safety of the rendered files: while a writer keeps changing records
# through the API and a checker keeps reading every rendered file, the
# server is killed with SIGKILL again and again (and restarted). Every
# read must see a complete old or new version: opencode.json parses as
# JSON with its permission block, llm.env is sourced by sh and yields a
# whole marker value ("v<N>-<padding>-END"), mcp.env lines are whole
# KEY=value lines, authorized_keys and docker-mcp.yaml end with a newline.
# After the loop the files converge to the last committed records and no
# temporary file is left behind.
#
# CRASH_CYCLES (default 12) sets the number of kills.

load helpers

setup() {
  e2e_setup crash
  R="$T/root"
  OC="$R/workspace/.opencode"
  BG_PIDS=""
  SERVER_LOG_APPEND=1   # one log across the kills
}

teardown() {
  local p
  for p in $BG_PIDS; do kill "$p" 2>/dev/null || true; done
  stop_server KILL
  rm -rf "$T"
}

# start_server (helpers.bash), and the address and token where the writer
# script reads them before each request, so that it follows the restarts.
start_published() {
  start_server && echo "$URL" >"$T/url" && echo "$TOKEN" >"$T/token"
}

api() {  # api METHOD PATH [JSON] -> BODY (fails on non-2xx)
  BODY="$(curl -fsS -m 10 -X "$1" -H "Authorization: $TOKEN" \
    ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$URL$2")"
}

# The checker: reads every rendered file in a loop until $T/stop exists;
# any torn or invalid file is recorded in $T/bad (with a copy).
write_checker() {
  cat >"$T/check.py" <<'PY'
import json, os, re, subprocess, sys, time
root, out = sys.argv[1], sys.argv[2]
oc = os.path.join(root, "workspace/.opencode")
files = {
    "json": [os.path.join(oc, "opencode.json")],
    "env": [os.path.join(oc, "llm.env"), os.path.join(root, "llm_keys/llm.env")],
    "mcpenv": [os.path.join(root, "mcp_config/mcp.env")],
    "nl": [os.path.join(root, "mcp_config/docker-mcp.yaml"),
           os.path.join(root, "ssh_keys/authorized_keys")],
}
marker = re.compile(r"^v[0-9]+-x{2000}-END$")
line = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*=.*|#.*)$")
checks = 0
def bad(path, why, data):
    with open(out, "a") as f:
        f.write("%s: %s (%d bytes)\n" % (path, why, len(data)))
    with open(out + ".%d" % checks, "wb") as f:
        f.write(data)
while not os.path.exists(os.path.join(os.path.dirname(out), "stop")):
    for kind, paths in files.items():
        for p in paths:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except (FileNotFoundError, IsADirectoryError):
                continue
            checks += 1
            if kind == "json":
                try:
                    d = json.loads(data)
                    assert isinstance(d.get("permission"), dict)
                except Exception as e:
                    bad(p, "not a whole opencode.json: %s" % e, data)
            elif kind == "env":
                if b"BIG=" not in data:
                    continue      # before the first key was rendered
                r = subprocess.run(["sh", "-c", '. "$0" && printf %s "$BIG"', p],
                                   capture_output=True)
                v = r.stdout.decode("utf-8", "replace")
                if r.returncode != 0 or not marker.match(v):
                    bad(p, "llm.env not whole (rc %d, BIG %d bytes)" % (r.returncode, len(v)), data)
            elif kind == "mcpenv":
                text = data.decode("utf-8", "replace")
                if text and (not text.endswith("\n") or
                             not all(line.match(l) for l in text.splitlines())):
                    bad(p, "mcp.env not whole", data)
            elif data and not data.endswith(b"\n"):
                bad(p, "no final newline", data)
    time.sleep(0.002)
with open(out + ".count", "w") as f:
    f.write(str(checks))
PY
}

# The writer: patches one llm_keys record and one tool permission in a
# loop; the last value the server acknowledged is kept in $T/acked.
write_writer() {
  cat >"$T/write.sh" <<'SH'
#!/bin/bash
T="$1" KEY_ID="$2" PERM_ID="$3"
pad="$(printf 'x%.0s' $(seq 1 2000))"
i=0
while [ ! -e "$T/stop" ]; do
  i=$((i + 1))
  url="$(cat "$T/url")" token="$(cat "$T/token")"
  if curl -fsS -m 5 -o /dev/null -X PATCH -H "Authorization: $token" \
       -H 'Content-Type: application/json' \
       --data-binary "{\"env_vars\":{\"BIG\":\"v$i-$pad-END\",\"N\":$i}}" \
       "$url/api/collections/llm_keys/records/$KEY_ID" 2>/dev/null; then
    echo "$i" >"$T/acked"
  fi
  curl -fsS -m 5 -o /dev/null -X PATCH -H "Authorization: $token" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"priority\":$i}" \
    "$url/api/collections/tool_permissions/records/$PERM_ID" 2>/dev/null || true
done
SH
  chmod +x "$T/write.sh"
}

@test "SIGKILL in a loop during writes: every rendered file is always a whole old or new version" {
  local cycles="${CRASH_CYCLES:-12}" c
  start_published
  api POST /api/collections/users/records \
    '{"email":"c@example.com","password":"password123","passwordConfirm":"password123"}'
  user="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$BODY")"
  api POST /api/collections/llm_keys/records \
    "{\"provider_id\":\"p\",\"user\":\"$user\",\"env_vars\":{\"BIG\":\"v0-$(printf 'x%.0s' $(seq 1 2000))-END\"}}"
  key="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$BODY")"
  api POST /api/collections/tool_permissions/records \
    '{"tool":"bash","pattern":"ls *","action":"allow","active":true,"priority":0}'
  perm="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$BODY")"
  api POST /api/collections/mcp_servers/records \
    '{"name":"git","status":"approved","config":{"TOKEN":"t 1"}}'

  write_checker
  write_writer
  python3 "$T/check.py" "$R" "$T/bad" >/dev/null 2>&1 3>&- &
  BG_PIDS="$BG_PIDS $!"
  checker=$!
  "$T/write.sh" "$T" "$key" "$perm" >/dev/null 2>&1 3>&- &
  BG_PIDS="$BG_PIDS $!"
  writer=$!

  for c in $(seq 1 "$cycles"); do
    # Run for 0.2 .. 1.0 s under writes, then SIGKILL.
    sleep "0.$(( (RANDOM % 9) + 2 ))"
    stop_server KILL
    start_published
  done

  touch "$T/stop"
  wait "$writer" || true
  wait "$checker" || true
  if [ -s "$T/bad" ]; then
    echo "torn or invalid files seen:" >&2
    head -20 "$T/bad" >&2
    return 1
  fi
  echo "checker reads: $(cat "$T/bad.count")" >&3
  [ "$(cat "$T/bad.count")" -gt 100 ]

  # Converged to the last acknowledged value, nothing left behind, every
  # reconciler Ready.
  run "$PCTL" reconcile --wait
  [ "$status" -eq 0 ]
  acked="$(cat "$T/acked")"
  run sh -c '. "$0" && printf %s "$N"' "$OC/llm.env"
  [ "$output" -ge "$acked" ]
  cmp "$OC/llm.env" "$R/llm_keys/llm.env"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$OC/opencode.json"
  [ -z "$(find "$R" -name '*.tmp.*')" ]
}
