#!/usr/bin/env bats
# The artifacts endpoint end to end, against a real `pocketctl serve` and a
# tree planted under its workspace: symlinks that stay inside and that lead
# out, the secret files pocketctl renders (llm.env, mcp.env) reached
# directly, by symlink and by hard link, a 0600 file, a FIFO, HTML served
# as an attachment, encoded escapes, a file swapped for a symlink, Range /
# ETag / 304 / 416, a 100 MB sparse file fetched by ranges and checked by
# SHA-256, and the paged directory listing.

load helpers
load api

setup_file() {
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
}

setup() {
  e2e_setup artifacts
  W="$T/root/workspace"
  mkdir -p "$W/docs/deep" "$W/site"
  printf 'hello world\n' >"$W/hello.txt"
  printf '# notes\n' >"$W/docs/deep/notes.md"
  printf '<script>alert(1)</script>' >"$W/site/index.html"
  printf '<svg xmlns="http://www.w3.org/2000/svg"/>' >"$W/site/logo.svg"
  printf '<a/>' >"$W/site/feed.xml"
  printf '\x89PNG' >"$W/site/pic.png"
  printf 'private' >"$W/mine.txt"
  chmod 0600 "$W/mine.txt"
  printf 'outside secret\n' >"$T/outside.txt"
  ln -s ../hello.txt "$W/docs/link-in"
  ln -s deep "$W/docs/dir-in"
  ln -s "$T/outside.txt" "$W/abs-out"
  ln -s ../../outside.txt "$W/rel-out"
  ln -s .. "$W/up"
  ln -s /proc/self/root "$W/proc-root"
  ln "$T/outside.txt" "$W/hard-out"
  mkfifo "$W/fifo"
  SERVER_ENV=(POCKETCTL_ADMIN_EMAIL=admin@example.com POCKETCTL_ADMIN_PASSWORD=admin-pass-123)
  start_server
  SU="$(login _superusers admin@example.com admin-pass-123)"
  [ -n "$SU" ]
  declare -gA UID_OF TOK_OF
  new_user alice user
  A="${TOK_OF[alice]}"
  # the secret files are rendered at start-up
  wait_for 30 test -f "$W/.opencode/llm.env"
  wait_for 30 test -f "$T/root/mcp_config/mcp.env"
}

# get PATH [curl options...]: GET /api/pocketcoder/files/PATH as alice,
# the path sent as it is (no dot folding by curl)
get() {
  local p="$1"
  shift
  api GET "/api/pocketcoder/files/$p" "$A" "" --path-as-is "$@"
}

header() {
  sed -n "s/^$1: //p" <<<"$headers"
}

@test "files are served to authenticated callers under both names" {
  get hello.txt
  [ "$code" = 200 ]
  [ "$body" = "hello world" ]
  [ "$(header content-type)" = "text/plain; charset=utf-8" ]
  [ "$(header content-length)" = 12 ]
  [ "$(header x-content-type-options)" = nosniff ]
  [ "$(header content-security-policy)" = sandbox ]
  [ -n "$(header etag)" ]
  [ -n "$(header last-modified)" ]
  api GET /api/pocketcoder/artifact/docs/deep/notes.md "$A"
  [ "$code" = 200 ]
  [ "$body" = "# notes" ]
  grep -q '^content-type: text/markdown' <<<"$headers"
  api GET /api/pocketcoder/files/hello.txt ""
  [ "$code" = 401 ]
  api GET /api/pocketcoder/artifact/hello.txt ""
  [ "$code" = 401 ]
  get nothing-here
  [ "$code" = 404 ]
}

@test "HTML, SVG and XML are attachments in a sandbox; other types by extension" {
  local f
  for f in site/index.html site/logo.svg site/feed.xml; do
    get "$f"
    [ "$code" = 200 ]
    [ "$(header content-disposition)" = attachment ]
    [ "$(header content-security-policy)" = sandbox ]
    [ "$(header x-content-type-options)" = nosniff ]
  done
  get site/index.html
  [ "$(header content-type)" = "text/html; charset=utf-8" ]
  get site/logo.svg
  [ "$(header content-type)" = "image/svg+xml" ]
  get site/pic.png
  [ "$(header content-type)" = "image/png" ]
  [ -z "$(header content-disposition)" ]
  printf 'x' >"$W/blob.weird"
  get blob.weird
  [ "$(header content-type)" = "application/octet-stream" ]
}

@test "symlinks inside are followed; symlinks leading out are 403" {
  get docs/link-in
  [ "$code" = 200 ]
  [ "$body" = "hello world" ]
  get docs/dir-in/notes.md
  [ "$code" = 200 ]
  local p
  for p in abs-out rel-out up/outside.txt up/data/cli.token proc-root/etc/passwd; do
    get "$p"
    [ "$code" = 403 ] || { echo "$p: $code $body"; false; }
    ! grep -q 'outside secret' <<<"$body" || false
  done
}

@test "secret files, a 0600 file, hard links and a FIFO are never served" {
  get .opencode/llm.env
  [ "$code" = 403 ]
  jq -e '.message | test("holds secrets")' <<<"$body"
  # by another name: a symlink inside, a hard link to mcp.env
  ln -s .opencode/llm.env "$W/innocent.txt"
  get innocent.txt
  [ "$code" = 403 ]
  ln "$T/root/mcp_config/mcp.env" "$W/mcp-copy.txt"
  get mcp-copy.txt
  [ "$code" = 403 ]
  jq -e '.message | test("holds secrets")' <<<"$body"
  get mine.txt
  [ "$code" = 403 ]
  jq -e '.message | test("not world-readable")' <<<"$body"
  get hard-out
  [ "$code" = 403 ]
  jq -e '.message | test("2 hard links")' <<<"$body"
  ! grep -q 'outside secret' <<<"$body" || false
  run timeout 10 curl -sS -m 8 -o /dev/null -w '%{http_code}' -H "Authorization: $A" "$URL/api/pocketcoder/files/fifo"
  [ "$output" = 403 ]
}

@test "encoded and textual escapes are refused" {
  local p
  for p in ../data/cli.token %2e%2e/data/cli.token %2E%2E%2Fdata%2Fcli.token \
           docs/..%2f..%2fdata%2fcli.token docs%2fdeep%2fnotes.md 'docs%5c..%5chello.txt' \
           docs/../hello.txt /etc/passwd %2fetc%2fpasswd; do
    get "$p"
    [ "$code" = 403 ] || { echo "$p: $code $body"; false; }
    jq -e '.message | test("path escape")' <<<"$body"
  done
  get "hello.txt%00.png"
  [ "$code" = 400 ]
  get "$(printf 'a/%.0s' $(seq 1 2100))x"
  [ "$code" = 403 ]
  get "$(head -c 300 /dev/zero | tr '\0' a)"
  [ "$code" = 403 ]
}

@test "a file swapped for a symlink to the outside is refused from then on" {
  printf 'v1' >"$W/swap.txt"
  get swap.txt
  [ "$code" = 200 ]
  local tag="$(header etag)"
  ln -s "$T/outside.txt" "$W/swap.tmp"
  mv -T "$W/swap.tmp" "$W/swap.txt"
  get swap.txt
  [ "$code" = 403 ]
  ! grep -q 'outside secret' <<<"$body" || false
  rm "$W/swap.txt"
  printf 'v2, longer' >"$W/swap.txt"
  get swap.txt
  [ "$code" = 200 ]
  [ "$(header etag)" != "$tag" ]
}

@test "Range, ETag, If-None-Match and 416" {
  printf '0123456789' >"$W/digits.txt"
  get digits.txt
  local tag="$(header etag)"
  get digits.txt -H 'Range: bytes=2-5'
  [ "$code" = 206 ]
  [ "$body" = 2345 ]
  [ "$(header content-range)" = "bytes 2-5/10" ]
  [ "$(header content-length)" = 4 ]
  get digits.txt -H 'Range: bytes=7-'
  [ "$code" = 206 ]
  [ "$body" = 789 ]
  get digits.txt -H 'Range: bytes=-3'
  [ "$code" = 206 ]
  [ "$body" = 789 ]
  get digits.txt -H 'Range: bytes=8-100'
  [ "$code" = 206 ]
  [ "$body" = 89 ]
  get digits.txt -H 'Range: bytes=10-'
  [ "$code" = 416 ]
  [ "$(header content-range)" = "bytes */10" ]
  for bad in 'bytes=5-2' 'bytes=x-1' 'items=0-1' 'bytes=' 'bytes=99999999999999999999-'; do
    get digits.txt -H "Range: $bad"
    [ "$code" = 416 ] || { echo "$bad: $code"; false; }
    [ "$(header content-range)" = "bytes */10" ]
  done
  # several ranges: ignored, the whole file
  get digits.txt -H 'Range: bytes=0-1,4-5'
  [ "$code" = 200 ]
  [ "$body" = 0123456789 ]
  get digits.txt -H "If-None-Match: $tag"
  [ "$code" = 304 ]
  [ -z "$body" ]
  [ "$(header etag)" = "$tag" ]
  get digits.txt -H "If-None-Match: \"nope\", W/$tag"
  [ "$code" = 304 ]
  get digits.txt -H 'If-None-Match: "other"'
  [ "$code" = 200 ]
  # If-Range: the range only while the file is unchanged
  get digits.txt -H 'Range: bytes=0-0' -H "If-Range: $tag"
  [ "$code" = 206 ]
  get digits.txt -H 'Range: bytes=0-0' -H 'If-Range: "old"'
  [ "$code" = 200 ]
  [ "$body" = 0123456789 ]
}

@test "a 100 MB sparse file is served by ranges and whole, byte for byte" {
  local f="$W/big.bin" want got i
  truncate -s 100M "$f"
  for i in 0 13 50 99; do
    head -c 65536 /dev/urandom | dd of="$f" bs=1M seek="$i" conv=notrunc status=none
  done
  printf 'end' | dd of="$f" bs=1 seek=$((100 * 1048576 - 3)) conv=notrunc status=none
  want="$(sha256sum <"$f" | cut -d' ' -f1)"
  : >"$T/parts"
  for i in 0 1 2 3; do
    curl -fsS -m 120 -H "Authorization: $A" -r "$((i * 26214400))-$(((i + 1) * 26214400 - 1))" \
      "$URL/api/pocketcoder/files/big.bin" >>"$T/parts"
  done
  got="$(sha256sum <"$T/parts" | cut -d' ' -f1)"
  [ "$got" = "$want" ]
  got="$(curl -fsS -m 120 -H "Authorization: $A" "$URL/api/pocketcoder/files/big.bin" | sha256sum | cut -d' ' -f1)"
  [ "$got" = "$want" ]
  api HEAD /api/pocketcoder/files/big.bin "$A" "" -I
  [ "$code" = 200 ]
  [ "$(header content-length)" = 104857600 ]
  # the server stays well
  get hello.txt
  [ "$code" = 200 ]
}

@test "a directory answers a sorted, paged listing" {
  local i
  mkdir -p "$W/many"
  for i in $(seq -w 1 45); do printf '%s' "$i" >"$W/many/f$i.txt"; done
  mkdir "$W/many/zdir"
  : >"$W/many/"$'bad\xff'
  get many
  [ "$code" = 200 ]
  [ "$(jq -r '.page, .perPage, .totalItems, .totalPages' <<<"$body" | tr '\n' ' ')" = "1 30 46 2 " ]
  [ "$(jq -r '.items[0] | .name, .type, .size' <<<"$body" | tr '\n' ' ')" = "f01.txt file 2 " ]
  jq -e '.items[0].modified | test("^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\\.[0-9]{3}Z$")' <<<"$body"
  get 'many?page=3&perPage=20'
  [ "$code" = 200 ]
  [ "$(jq -r '[.items[].name] | join(",")' <<<"$body")" = "f41.txt,f42.txt,f43.txt,f44.txt,f45.txt,zdir" ]
  [ "$(jq -r '.items[5].type' <<<"$body")" = dir ]
  [ "$(jq -r .totalPages <<<"$body")" = 3 ]
  get 'many?page=9'
  [ "$code" = 200 ]
  [ "$(jq '.items | length' <<<"$body")" = 0 ]
  get 'many?perPage=abc'
  [ "$code" = 400 ]
  jq -e '.data.perPage' <<<"$body"
  get ''
  [ "$code" = 200 ]
  jq -e '[.items[].name] | index("hello.txt")' <<<"$body"
  get docs
  [ "$(jq -r '[.items[] | .name + ":" + .type] | join(",")' <<<"$body")" = "deep:dir,dir-in:symlink,link-in:symlink" ]
}
