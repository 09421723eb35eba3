#!/usr/bin/env bats
# One revision per change, against a real `pocketctl serve`: a record
# change costs its own revision and nothing is written into the record
# afterwards (the reconcilers' status records are written at most once a
# pass), yet `get -o record` and the watch stream show its
# observedGeneration, computed when read from the reconcilers'
# observedRevision (controller/observed.h).

load helpers

setup() {
  e2e_setup revisions
}

teardown() {
  stop_server
  rm -rf "$T"
}

perm() {  # perm NAME ACTION: a ToolPermission manifest in $T/p.yaml
  printf 'apiVersion: pocketcoder.dev/v1\nkind: ToolPermission\nmetadata: {name: %s}\nspec: {tool: bash, pattern: "git *", action: %s, active: true, priority: 5}\n' "$1" "$2" >"$T/p.yaml"
}

head_rev() {
  su_api GET /api/v1/status
  python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])' <<<"$BODY"
}

# quiet: a full pass, then until the head stays put for half a second.
quiet() {
  local h p=-1 i
  pctl reconcile --wait --timeout 60 >/dev/null || true
  for i in $(seq 1 120); do
    h=$(head_rev)
    [ "$h" = "$p" ] && return 0
    p=$h
    sleep 0.5
  done
  return 1
}

# field NAME KEY: a key of the ToolPermission record NAME (-o record);
# status.KEY for "status.KEY", "" when absent.
field() {
  pctl get ToolPermission "$1" -o record | python3 -c '
import json, sys
r = json.load(sys.stdin)
r = r[0] if isinstance(r, list) else r
k = sys.argv[1]
v = r["status"].get(k[7:]) if k.startswith("status.") else r.get(k)
print("" if v is None else v)' "$2"
}

observed_is() { [ "$(field "$1" status.observedGeneration)" = "$2" ]; }

@test "a change costs its own revision; observedGeneration is read, not written" {
  pctl apply -f "$BATS_TEST_DIRNAME/../../manifests/agents.yaml" >/dev/null
  start_server
  quiet
  perm git-ask ask
  run pctl apply -f "$T/p.yaml" -o json
  [ "$status" -eq 0 ]
  rev=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["revision"])' <<<"$output")
  wait_for 10 observed_is git-ask 1
  quiet
  # Nothing was written into the record after its own change...
  [ "$(field git-ask revision)" = "$rev" ]
  [ "$(field git-ask generation)" = 1 ]
  [ -z "$(field git-ask status.observedGenerations)" ]
  # ...and the reconcilers' status reports are a few revisions, not one
  # per record.
  h=$(head_rev)
  [ $(( h - rev )) -le 3 ]

  perm git-ask allow
  pctl apply -f "$T/p.yaml" >/dev/null
  wait_for 10 observed_is git-ask 2
  [ "$(field git-ask generation)" = 2 ]
  grep -q '"bash"' "$T/root/workspace/.opencode/opencode.json"
}

@test "the watch stream carries no per-record status event and shows observedGeneration" {
  start_server
  quiet
  since=$(head_rev)
  perm w-one ask
  pctl apply -f "$T/p.yaml" >/dev/null
  perm w-one allow
  pctl apply -f "$T/p.yaml" >/dev/null
  wait_for 10 observed_is w-one 2
  quiet
  curl -sS -m 3 -H "Authorization: $TOKEN" \
    "$URL/api/v1/watch?since=$since&collection=tool_permissions,reconcile_status" \
    >"$T/watch.out" || true
  run python3 -c '
import json, sys
ev = [json.loads(l[5:]) for l in open(sys.argv[1]) if l.startswith("data:")]
ev = [e for e in ev if "collection" in e]
perms = [e for e in ev if e["collection"] == "tool_permissions"]
print(" ".join(e["action"] + ("/status" if e["statusOnly"] else "") for e in perms))
# Replayed after the pass, the update event shows its generation as
# observed; a reconcile_status report follows it past its revision.
upd = [e for e in perms if e["action"] == "update"][0]
print(upd["record"]["generation"], upd["record"]["status"].get("observedGeneration"))
after = [e for e in ev if e["collection"] == "reconcile_status" and
         e["record"]["status"].get("observedRevision", 0) >= upd["revision"]]
print(len(after) > 0)' "$T/watch.out"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "create update" ]
  [ "${lines[1]}" = "2 2" ]
  [ "${lines[2]}" = "True" ]
}
