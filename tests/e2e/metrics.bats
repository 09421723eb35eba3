#!/usr/bin/env bats
# /metrics through a real parser (prometheus_client's, promcheck.py): it
# parses, every family has a TYPE, no series is written twice (GET and POST
# of one route are told apart by a method label), and the reconcile
# figures are there and move after a change and after drift.

load helpers

PROM_PY="${PROM_PY:-/usr/bin/python3}"   # Debian's python3-prometheus-client

setup() {
  e2e_setup metrics
  OC="$T/root/workspace/.opencode"
}

teardown() {
  stop_server
  rm -rf "$T"
}

metrics() { curl -fsS -m 10 "$URL/metrics"; }

# value NAME{LABELS}: the sample's value (the line that starts with it)
value() { metrics | awk -v k="$1" 'index($0, k " ") == 1 { print $NF }'; }

agent() {
  cat >"$T/agent.yaml" <<YAML
apiVersion: pocketcoder.dev/v1
kind: AiAgent
metadata: {name: poco}
spec: {description: "$1", mode: primary}
YAML
  pctl apply -f "$T/agent.yaml" >/dev/null
}

@test "the parser accepts /metrics; no series twice; one route, two methods" {
  start_server
  # GET, POST and PATCH of record routes, 404s and an unmatched path
  curl -s -o /dev/null "$URL/api/collections/users/records"
  curl -s -o /dev/null -X POST "$URL/api/collections/users/records"
  curl -s -o /dev/null -X PATCH "$URL/api/collections/users/records/abc"
  curl -s -o /dev/null -X GET "$URL/api/collections/users/records/abc"
  curl -s -o /dev/null "$URL/no/such/path"
  metrics >"$T/m.txt"
  run "$PROM_PY" "$BATS_TEST_DIRNAME/promcheck.py" <"$T/m.txt"
  [ "$status" -eq 0 ] || { echo "$output"; cat "$T/m.txt"; false; }
  grep -q '^pocketctl_http_requests_total{method="GET",route="/api/collections/:c/records",code="' "$T/m.txt"
  grep -q '^pocketctl_http_requests_total{method="POST",route="/api/collections/:c/records",code="' "$T/m.txt"
  grep -q '^pocketctl_http_requests_total{method="PATCH",route="/api/collections/:c/records/:id",code="' "$T/m.txt"
  grep -q '^pocketctl_http_requests_total{method="GET",route="unmatched",code="404"} 1$' "$T/m.txt"
  grep -q '^pocketctl_http_request_duration_seconds_count{method="POST",route="/api/collections/:c/records"} 1$' "$T/m.txt"
  # every sample line is unique (the parser's check, again by hand)
  [ -z "$(grep -v '^#' "$T/m.txt" | awk '{print $1}' | sort | uniq -d)" ]
  # each family's HELP and TYPE once
  [ -z "$(grep '^# TYPE' "$T/m.txt" | sort | uniq -d)" ]
}

@test "reconcile metrics: per reconciler, queue, engine, containers, outbox and cron" {
  # the default manifests declare containers; the container engine is a
  # socket nobody listens on, so the containers reconciler fails
  start_server -- --manifests "$REPO/manifests" --docker "unix://$T/no-engine.sock"
  metrics >"$T/m.txt"
  "$PROM_PY" "$BATS_TEST_DIRNAME/promcheck.py" <"$T/m.txt" >/dev/null
  for r in llm-env opencode-json agent-bundles containers cron push; do
    grep -q "^pocketctl_reconcile_passes_total{reconciler=\"$r\"} [1-9]" "$T/m.txt"
    grep -q "^pocketctl_reconcile_errors_total{reconciler=\"$r\"} " "$T/m.txt"
    grep -q "^pocketctl_reconcile_duration_seconds_total{reconciler=\"$r\"} " "$T/m.txt"
    grep -q "^pocketctl_reconcile_last_duration_seconds{reconciler=\"$r\"} " "$T/m.txt"
    grep -q "^pocketctl_drift_corrections_total{reconciler=\"$r\"} " "$T/m.txt"
    grep -q "^pocketctl_reconcile_degraded{reconciler=\"$r\"} [01]$" "$T/m.txt"
  done
  for s in ready processing delayed idle; do
    grep -q "^pocketctl_reconcile_queue_depth{state=\"$s\"} [0-9]" "$T/m.txt"
  done
  grep -q '^pocketctl_engine_passes_total [1-9]' "$T/m.txt"
  grep -q '^pocketctl_engine_observed_revision ' "$T/m.txt"
  grep -q '^# TYPE pocketctl_container_actions_total counter$' "$T/m.txt"
  grep -qE '^pocketctl_container_actions_total\{container="[^"]+",action="restart"\} 0$' "$T/m.txt"
  grep -q '^pocketctl_outbox_pending 0$' "$T/m.txt"
  grep -q '^pocketctl_outbox_in_flight 0$' "$T/m.txt"
  grep -q '^pocketctl_cron_jobs ' "$T/m.txt"
  grep -q '^pocketctl_cron_fired_total ' "$T/m.txt"
  # the failing containers reconciler: errors counted, Degraded
  wait_for 20 bash -c "[ \"\$(curl -fsS '$URL/metrics' | awk '\$1 == \"pocketctl_reconcile_errors_total{reconciler=\\\"containers\\\"}\" {print \$2}')\" -ge 1 ]"
  wait_for 20 bash -c "curl -fsS '$URL/metrics' | grep -q '^pocketctl_reconcile_degraded{reconciler=\"containers\"} 1\$'"
}

@test "after a change and after drift the figures move" {
  agent Poco
  start_server
  wait_for 10 test -f "$OC/agents/poco.md"
  key='pocketctl_reconcile_passes_total{reconciler="agent-bundles"}'
  wait_for 10 bash -c "[ -n \"\$(curl -fsS '$URL/metrics' | grep -F '$key ')\" ]"
  before="$(value "$key")"
  writes="$(value 'pocketctl_reconcile_writes_total{reconciler="agent-bundles"}')"
  agent 'Poco, changed'
  wait_for 10 grep -q 'Poco, changed' "$OC/agents/poco.md"
  wait_for 10 bash -c "[ \"\$(curl -fsS '$URL/metrics' | awk -v k='$key' 'index(\$0, k \" \") == 1 {print \$NF}')\" -gt $before ]"
  [ "$(value 'pocketctl_reconcile_writes_total{reconciler="agent-bundles"}')" -gt "$writes" ]
  # a hand edit is drift: corrected and counted
  [ "$(value 'pocketctl_drift_corrections_total{reconciler="agent-bundles"}')" = 0 ]
  echo "hand edit" >"$OC/agents/poco.md"
  wait_for 10 grep -q 'Poco, changed' "$OC/agents/poco.md"
  wait_for 10 bash -c "[ \"\$(curl -fsS '$URL/metrics' | awk '\$1 == \"pocketctl_drift_corrections_total{reconciler=\\\"agent-bundles\\\"}\" {print \$2}')\" -ge 1 ]"
  metrics | "$PROM_PY" "$BATS_TEST_DIRNAME/promcheck.py" >/dev/null
}
