#!/usr/bin/env bats
# Protocol strictness against a real `pocketctl serve` (issue 20, items
# 7-9): a request with both Content-Length and Transfer-Encoding is refused
# and its connection closed, so a request hidden behind it is never served;
# a NUL byte or invalid UTF-8 in a decoded path parameter is a 400 naming
# the parameter; a key repeated in a JSON body is a 400 naming the key.
# Raw requests go through python3 sockets or `curl --path-as-is`.

load helpers

setup() {
  e2e_setup strict
  command -v jq >/dev/null || skip "jq is needed"
  start_server
}

# raw: send stdin as bytes to the server, print every byte it answers until
# it closes the connection (or 3 s pass without one).
raw() {
  python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
s.settimeout(3)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            out += b"\n<closed>\n"
            break
        out += d
except socket.timeout:
    out += b"\n<open>\n"
sys.stdout.buffer.write(out)
' "$PORT"
}

# api METHOD PATH [JSON BODY]: as the CLI's superuser, path sent as is;
# sets code and body.
api() {
  local args=(-sS -m 10 --path-as-is -X "$1" -o "$T/body" -w '%{http_code}'
              -H "Authorization: $TOKEN")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  code="$(curl "${args[@]}" "$URL$2")"
  body="$(cat "$T/body")"
}

@test "Content-Length with Transfer-Encoding: 400, closed, the hidden request is not served" {
  printf 'POST /api/collections/ai_prompts/records HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' "$TOKEN" | raw >"$T/out"
  cat "$T/out"
  head -1 "$T/out" | grep -q '^HTTP/1.1 400'
  grep -q 'Content-Length and Transfer-Encoding' "$T/out"
  [ "$(grep -c '^HTTP/1.1 ' "$T/out")" = 1 ]
  grep -q '<closed>' "$T/out"
  # the server keeps serving, and pipelining without the ambiguity still
  # answers both requests
  curl -fsS -m 5 "$URL/healthz" >/dev/null
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw >"$T/out"
  [ "$(grep -c '^HTTP/1.1 200' "$T/out")" = 2 ]
}

@test "a NUL byte in a collection parameter is a 400 naming it" {
  api GET '/api/collections/ai_prompts%00zzz/records'
  echo "$code $body"
  [ "$code" = 400 ]
  jq -e '.data.c.message | test("path parameter .c.")' <<<"$body"
  api GET '/api/collections/chats%00zzz/records/abcdefghijklmno'
  [ "$code" = 400 ]
}

@test "a NUL byte in a container name is a 400 naming it, nothing restarted" {
  api POST '/api/v1/containers/pocketcoder-opencode%00x/restart'
  echo "$code $body"
  [ "$code" = 400 ]
  jq -e '.data.name.message | test("NUL")' <<<"$body"
}

@test "invalid UTF-8 in a path parameter is a 400 naming it" {
  api GET '/api/collections/ai_prompts/records/abc%ff%fe'
  echo "$code $body"
  [ "$code" = 400 ]
  jq -e '.data.id' <<<"$body"
  api GET '/api/v1/manifests/AiPrompt/%c0%80'      # an overlong NUL
  echo "$code $body"
  [ "$code" = 400 ]
  jq -e '.data.name' <<<"$body"
  # valid UTF-8 still passes through to the handler (a plain 404 here)
  api GET '/api/collections/ai_prompts/records/%c3%a9t%c3%a9'
  [ "$code" = 404 ]
}

@test "a duplicate key in a records body is a 400 naming the key, nothing written" {
  api POST /api/collections/ai_prompts/records '{"name":"dup-a","body":"x","name":"dup-b"}'
  echo "$code $body"
  [ "$code" = 400 ]
  jq -e '.data.name.message | test("duplicate key .name.")' <<<"$body"
  api GET "/api/collections/ai_prompts/records?filter=name~'dup-'"
  [ "$(jq -r .totalItems <<<"$body")" = 0 ]
  # the same on an update
  api POST /api/collections/ai_prompts/records '{"name":"dup-c","body":"x"}'
  [ "$code" = 200 ]
  id="$(jq -r .id <<<"$body")"
  api PATCH "/api/collections/ai_prompts/records/$id" '{"body":"y","body":"z"}'
  [ "$code" = 400 ]
  jq -e '.data.body' <<<"$body"
  api GET "/api/collections/ai_prompts/records/$id"
  [ "$(jq -r .body <<<"$body")" = x ]
}

@test "a duplicate key in an auth body is a 400" {
  code="$(curl -sS -m 10 -o "$T/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"identity":"a@example.com","password":"x","identity":"b@example.com"}' \
    "$URL/api/collections/users/auth-with-password")"
  cat "$T/body"
  [ "$code" = 400 ]
  jq -e '.data.identity' "$T/body"
}
