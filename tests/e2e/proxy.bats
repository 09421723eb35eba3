#!/usr/bin/env bats
# The observability proxy end to end: a real `pocketctl serve
# --observability-url` in front of a real local HTTP server
# (proxy_upstream.py): who may use it, the prefix stripped, which headers
# arrive upstream and back, 50 MB streamed each way (Content-Length and
# chunked uploads, a chunked download) checked by SHA-256, and an upstream
# that hangs, talks nonsense or is not there.

load helpers
load api

setup_file() {
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
}

setup() {
  e2e_setup proxy
  python3 "$BATS_TEST_DIRNAME/proxy_upstream.py" "$T/up.port" 3>&- &
  UP_PID=$!
  wait_for 10 test -s "$T/up.port"
  UP="http://127.0.0.1:$(cat "$T/up.port")"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=admin-pass-123
              POCKETCTL_PROXY_STALL_S=2)
  start_server --observability-url "$UP"
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF
  new_user root admin
  new_user alice user
  P=/api/pocketcoder/proxy/observability
}

teardown() {
  stop_server
  [ -z "${UP_PID:-}" ] || { kill "$UP_PID" 2>/dev/null; wait "$UP_PID" 2>/dev/null || true; }
  rm -rf "$T"
}

@test "admins and superusers only; 503 without an upstream" {
  api GET "$P/echo" ""
  [ "$code" = 401 ]
  api GET "$P/echo" "${TOK_OF[alice]}"
  [ "$code" = 403 ]
  api GET "$P/echo" "${TOK_OF[root]}"
  [ "$code" = 200 ]
  api GET "$P/echo" "$SU"
  [ "$code" = 200 ]
  stop_server
  start_server
  api GET "$P/echo" "$TOKEN"
  [ "$code" = 503 ]
  jq -e '.message | test("not configured")' <<<"$body"
  run "$PCTL" serve --observability-url ftp://x
  [ "$status" = 2 ]
}

@test "the prefix is stripped; credentials and hop-by-hop headers stay behind" {
  api GET "$P/a/b%20c?x=1&y=2" "${TOK_OF[root]}" "" \
    -H 'Cookie: pb_auth=secret' -H 'X-Custom: kept' -H 'X-Forwarded-For: 6.6.6.6' \
    -H 'Connection: keep-alive, X-Drop-Me' -H 'X-Drop-Me: 1' -H 'Proxy-Authorization: Basic eA=='
  [ "$code" = 200 ]
  [ "$(jq -r .path <<<"$body")" = "/a/b%20c" ]
  [ "$(jq -r .query <<<"$body")" = "x=1&y=2" ]
  [ "$(jq -r '.headers["x-custom"]' <<<"$body")" = kept ]
  [ "$(jq -r '.headers["x-forwarded-prefix"]' <<<"$body")" = "$P" ]
  [ "$(jq -r '.headers["x-forwarded-host"]' <<<"$body")" = "127.0.0.1:$PORT" ]
  [ "$(jq -r '.headers["x-forwarded-proto"]' <<<"$body")" = http ]
  [ "$(jq -r '.headers["x-forwarded-for"]' <<<"$body")" = 127.0.0.1 ]
  local h
  for h in authorization cookie x-drop-me proxy-authorization; do
    [ "$(jq -r --arg h "$h" '.headers[$h] // "absent"' <<<"$body")" = absent ] || { echo "$h arrived"; false; }
  done
  # the bare prefix is "/"
  api GET "$P" "${TOK_OF[root]}"
  [ "$(jq -r .path <<<"$body")" = / ]
  # back: hop-by-hop and Set-Cookie dropped, the rest kept
  api GET "$P/hop" "${TOK_OF[root]}"
  [ "$code" = 200 ]
  grep -q '^x-kept: yes' <<<"$headers"
  ! grep -qE '^(x-secret-hop|set-cookie|keep-alive):' <<<"$headers" || false
  # redirects come back as they are
  api GET "$P/redirect" "${TOK_OF[root]}"
  [ "$code" = 302 ]
  grep -q '^location: /elsewhere' <<<"$headers"
  api GET "$P/x/../../etc" "${TOK_OF[root]}" "" --path-as-is
  [ "$code" = 400 ]
}

@test "50 MB streams each way, byte for byte" {
  head -c 52428800 /dev/urandom >"$T/up.bin"
  local want="$(sha256sum <"$T/up.bin" | cut -d' ' -f1)" got
  # a Content-Length upload
  got="$(curl -fsS -m 120 -H "Authorization: ${TOK_OF[root]}" -X POST --data-binary @"$T/up.bin" "$URL$P/echo")"
  [ "$(jq -r .method <<<"$got")" = POST ]
  [ "$(jq -r .length <<<"$got")" = 52428800 ]
  [ "$(jq -r .sha256 <<<"$got")" = "$want" ]
  # a chunked upload
  got="$(curl -fsS -m 120 -H "Authorization: ${TOK_OF[root]}" -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T/up.bin" "$URL$P/echo")"
  [ "$(jq -r .method <<<"$got")" = PUT ]
  [ "$(jq -r .sha256 <<<"$got")" = "$want" ]
  # a chunked download
  want="$(python3 -c 'import hashlib,sys; p=bytes(i % 251 for i in range(251*1024)); h=hashlib.sha256(); n=52428800
while n: b=p[:min(len(p),n)]; h.update(b); n-=len(b)
print(h.hexdigest())')"
  got="$(curl -fsS -m 120 -H "Authorization: ${TOK_OF[root]}" "$URL$P/big?n=52428800" | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$want" ]
  # an empty POST
  got="$(curl -fsS -m 10 -H "Authorization: ${TOK_OF[root]}" -X POST --data-binary '' "$URL$P/echo")"
  [ "$(jq -r '.headers["content-length"]' <<<"$got")" = 0 ]
}

@test "an upstream that hangs, talks nonsense or is gone is a clear 5xx" {
  api GET "$P/hang" "${TOK_OF[root]}" "" -m 30
  [ "$code" = 504 ]
  jq -e '.message | test("observability upstream")' <<<"$body"
  api GET "$P/bad" "${TOK_OF[root]}"
  [ "$code" = 502 ]
  kill "$UP_PID"
  wait "$UP_PID" 2>/dev/null || true
  UP_PID=""
  api GET "$P/echo" "${TOK_OF[root]}"
  [ "$code" = 502 ]
  # the server keeps serving
  api GET /api/health ""
  [ "$code" = 200 ]
}
