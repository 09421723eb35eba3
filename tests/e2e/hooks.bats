#!/usr/bin/env bats
# The store's write hooks run for the offline CLI too: with no server
# running, `pocketctl apply` of an approved Proposal seals it into the
# ledger (governance.c's hook runs inside the apply's transaction).

load helpers

@test "offline apply: an approved Proposal is sealed, once" {
  printf 'apiVersion: pocketcoder.dev/v1\nkind: Proposal\nmetadata:\n  name: deploy-check\nspec:\n  description: Check before deploying.\n  content: "Step 1."\n  authored_by: human\n  status: approved\n' >"$T/prop.yaml"
  run pctl apply -f "$T/prop.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"proposal/deploy-check created"* ]]
  run pctl get sop -o record
  [ "$status" -eq 0 ]
  [ "$(jq length <<<"$output")" = 1 ]
  [ "$(jq -r '.[0].data.name' <<<"$output")" = deploy-check ]
  [ "$(jq -r '.[0].data.version' <<<"$output")" = 1 ]
  [ "$(jq -r '.[0].data.content' <<<"$output")" = "Step 1." ]
  run pctl ledger verify --offline
  [ "$status" -eq 0 ]
  [[ "$output" == *"ledger ok: 1 entries"* ]]
  # a re-apply of the same declaration seals nothing more
  run pctl apply -f "$T/prop.yaml"
  [ "$status" -eq 0 ]
  [[ "$output" == *"proposal/deploy-check unchanged"* ]]
  [ "$(pctl get sop -o record | jq length)" = 1 ]
}
