#!/usr/bin/env bats
# The status page's server side, against a real `pocketctl serve`: / and
# /_/ with their security headers and ETags (the page itself is tested in
# Chromium by tests/ui/), and GET /api/v1/files: admins only, every
# rendered file with its hash, size, mode and sources, a secret file's
# variable names and never their values.

load helpers
load api

setup_file() {
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
}

setup() {
  e2e_setup statuspage
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  start_server -- --manifests "$REPO/manifests"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF
  new_user alice user
  new_user root admin
}

@test "/ redirects to /_/; the page and its assets carry the CSP, nosniff and a strong ETag" {
  for p in / /_; do
    api GET "$p"
    [ "$code" = 302 ]
    [[ "$headers" == *"location: /_/"* ]]
  done
  for p in /_/ /_/index.html /_/app.js /_/app.css /_/icon.svg; do
    api GET "$p"
    [ "$code" = 200 ] || { echo "$p: $code"; return 1; }
    [[ "$headers" == *"content-security-policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"* ]]
    [[ "$headers" == *"x-content-type-options: nosniff"* ]]
    etag="$(sed -n 's/^etag: //p' <<<"$headers")"
    [[ "$etag" =~ ^\"[0-9a-f]{32}\"$ ]]
    api GET "$p" "" "" -H "If-None-Match: $etag"
    [ "$code" = 304 ]
    [ -z "$body" ]
  done
  api GET /_/app.js
  [[ "$headers" == *"content-type: text/javascript; charset=utf-8"* ]]
  # The page holds no inline script or style for the CSP to refuse.
  api GET /_/
  ! grep -qE '<script>|<style|style=|on[a-z]+=' <<<"$body"
  api HEAD /_/app.css "" "" -I
  [ "$code" = 200 ]
}

@test "unknown assets are 404, never a file from disk" {
  for p in /_/nope.js "/_/..%2fREADME.md" /_/ui/app.js "/_/app.js%00"; do
    api GET "$p"
    [ "$code" = 404 ] || [ "$code" = 400 ] || { echo "$p: $code $body"; return 1; }
  done
}

@test "GET /api/v1/files: 401 for a guest, 403 for a plain user" {
  api GET /api/v1/files
  [ "$code" = 401 ]
  api GET /api/v1/files "${TOK_OF[alice]}"
  [ "$code" = 403 ]
  api GET /api/v1/files "${TOK_OF[root]}"
  [ "$code" = 200 ]
}

# The published status lists the key (the file is written, its status
# published after).
files_show_key() {
  curl -fsS -H "Authorization: $SU" "$URL/api/v1/files" |
    jq -e --arg k "$1" '.items[] | select(.relPath == "workspace/.opencode/llm.env") | .keys | index($k)' >/dev/null
}

@test "GET /api/v1/files lists every rendered file; a secret one shows its keys, never a value" {
  api POST /api/collections/llm_keys/records "$SU" \
    "{\"provider_id\":\"openai\",\"user\":\"${UID_OF[root]}\",\"env_vars\":{\"OPENAI_API_KEY\":\"sk-very-secret-value\"}}"
  [ "$code" = 200 ]
  wait_for 20 files_show_key OPENAI_API_KEY
  api GET /api/v1/files "$SU"
  [ "$code" = 200 ]
  ! grep -q 'sk-very-secret-value' <<<"$body"
  want="$(curl -sS -H "Authorization: $SU" "$URL/api/v1/status" | jq '[.reconcilers[].artifacts[].path] | length')"
  [ "$(jq '.items | length' <<<"$body")" = "$want" ]
  env="$(jq -c '.items[] | select(.relPath == "workspace/.opencode/llm.env")' <<<"$body")"
  [ "$(jq -r .secret <<<"$env")" = true ]
  [ "$(jq -c .keys <<<"$env")" = '["OPENAI_API_KEY"]' ]
  [ "$(jq -r .mode <<<"$env")" = 0600 ]
  [ "$(jq -r .size <<<"$env")" = "$(stat -c %s "$T/root/workspace/.opencode/llm.env")" ]
  [ "$(jq -r .sha256 <<<"$env")" = "$(sha256sum "$T/root/workspace/.opencode/llm.env" | cut -d' ' -f1)" ]
  [ "$(jq -c .sources <<<"$env")" = '["llm_keys"]' ]
  agent="$(jq -c '.items[] | select(.relPath == "workspace/.opencode/agents/poco.md")' <<<"$body")"
  [ "$(jq -c .record <<<"$agent")" = '{"collection":"ai_agents","name":"poco"}' ]
  [ "$(jq -r .secret <<<"$agent")" = false ]
  [ "$(jq -c .keys <<<"$agent")" = '[]' ]
  rm "$T/root/ssh_keys/authorized_keys"
  api GET /api/v1/files "$SU"
  # Either already put back (drift) or reported missing, never an error.
  [ "$code" = 200 ]
}
