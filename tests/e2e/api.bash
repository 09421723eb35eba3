# api.bash - HTTP helpers for the bats files that drive the records API
# with curl (load it with `load api`):
#   api METHOD PATH [TOKEN] [JSON] [curl options...]
#       one request to ${API_URL:-$URL}PATH; sets code (the HTTP status),
#       body and headers (lower-cased, without CR)
#   login COLLECTION IDENTITY PASSWORD
#       auth-with-password; prints the token, or nothing when refused
#   new_user NAME ROLE
#       a users record NAME@example.com made by $SU; sets UID_OF[NAME] and
#       TOK_OF[NAME] (declare -gA UID_OF TOK_OF first)
#   api_serve_file TAG [DIR...]
#       for setup_file: DIRs made under $RT/root first (paths under the
#       root the server should find in place), then one `pocketctl serve`
#       for the whole file on a free
#       loopback port (three tries), data and root under a new $RT, its
#       log in $RT/server.log, ready once /healthz answers and server.json
#       is written; then the superuser's token in SU and three users,
#       alice and bob (role user) and root (role admin): their tokens in
#       ALICE, BOB, ROOT, their ids in ALICE_ID, BOB_ID
#   api_serve_file_end
#       for teardown_file: stops that server, fails on a sanitizer report
#       in its log, removes $RT

api() {
  local method="$1" path="$2" tok="${3:-}" data="${4:-}" out
  shift 4 2>/dev/null || shift $#
  out="$(mktemp "${BATS_TMPDIR:-/tmp}/pocketctl-api.XXXXXX")"
  local args=(-sS -m 10 -X "$method" -o "$out" -D "$out.h" -w '%{http_code}')
  [ -n "$tok" ] && args+=(-H "Authorization: $tok")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  code="$(curl "${args[@]}" "$@" "${API_URL:-$URL}$path")"
  body="$(cat "$out")"
  headers="$(tr 'A-Z' 'a-z' <"$out.h" | tr -d '\r')"
  rm -f "$out" "$out.h"
}

login() {
  curl -sS -m 10 -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$2\",\"password\":\"$3\"}" \
    "${API_URL:-$URL}/api/collections/$1/auth-with-password" | jq -r '.token // empty'
}

new_user() {
  api POST /api/collections/users/records "$SU" \
    "{\"email\":\"$1@example.com\",\"password\":\"$1-pass-123\",\"passwordConfirm\":\"$1-pass-123\",\"role\":\"$2\",\"name\":\"$1\"}"
  [ "$code" = 200 ] || { echo "cannot create $1: $code $body" >&2; return 1; }
  UID_OF[$1]="$(jq -r .id <<<"$body")"
  TOK_OF[$1]="$(login users "$1@example.com" "$1-pass-123")"
  [ -n "${TOK_OF[$1]}" ]
}

api_serve_file() {
  : "${PCTL:?set PCTL to the pocketctl binary}"
  command -v jq >/dev/null || { echo "jq is needed" >&2; return 1; }
  export RT="$(mktemp -d "${BATS_TMPDIR:-/tmp}/pocketctl-$1.XXXXXX")"
  export ADMIN_EMAIL="admin@example.com" ADMIN_PASSWORD="admin-pass-123"
  local i try u role dir
  shift
  for dir in "$@"; do
    mkdir -p "$RT/root/$dir"
  done
  for try in 1 2 3; do
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    export URL="http://127.0.0.1:$PORT"
    POCKETCTL_ADMIN_EMAIL="$ADMIN_EMAIL" POCKETCTL_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
      "$PCTL" --data "$RT/data" serve --listen "127.0.0.1:$PORT" \
      --root "$RT/root" --bcrypt-cost 4 >"$RT/server.log" 2>&1 &
    echo $! >"$RT/server.pid"
    for i in $(seq 1 200); do
      curl -fsS -m 2 "$URL/healthz" >/dev/null 2>&1 && [ -s "$RT/data/server.json" ] && break 2
      kill -0 "$(cat "$RT/server.pid")" 2>/dev/null || break
      sleep 0.05
    done
    kill "$(cat "$RT/server.pid")" 2>/dev/null || true
    wait "$(cat "$RT/server.pid")" 2>/dev/null || true
    rm -f "$RT/server.pid"
  done
  [ -f "$RT/server.pid" ] || { cat "$RT/server.log" >&2; return 1; }

  export SU="$(login _superusers "$ADMIN_EMAIL" "$ADMIN_PASSWORD")"
  [ -n "$SU" ]
  for u in alice bob root; do
    role=user
    [ "$u" = root ] && role=admin
    api POST /api/collections/users/records "$SU" \
      "{\"email\":\"$u@example.com\",\"password\":\"$u-pass-123\",\"passwordConfirm\":\"$u-pass-123\",\"role\":\"$role\",\"name\":\"$u\"}"
    [ "$code" = 200 ] || { echo "cannot create $u: $code $body" >&2; return 1; }
  done
  export ALICE_ID="$(api GET "/api/collections/users/records?filter=email='alice@example.com'" "$SU"; jq -r '.items[0].id' <<<"$body")"
  export BOB_ID="$(api GET "/api/collections/users/records?filter=email='bob@example.com'" "$SU"; jq -r '.items[0].id' <<<"$body")"
  export ALICE="$(login users alice@example.com alice-pass-123)"
  export BOB="$(login users bob@example.com bob-pass-123)"
  export ROOT="$(login users root@example.com root-pass-123)"
  [ -n "$ALICE" ] && [ -n "$BOB" ] && [ -n "$ROOT" ]
}

api_serve_file_end() {
  local bad=0
  if [ -f "$RT/server.pid" ]; then
    kill "$(cat "$RT/server.pid")" 2>/dev/null || true
    # not our child here: wait for it to go away by polling
    for _ in $(seq 1 100); do
      kill -0 "$(cat "$RT/server.pid")" 2>/dev/null || break
      sleep 0.05
    done
  fi
  # a sanitizer report or a crash in the server fails the file
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$RT/server.log"; then
    cat "$RT/server.log" >&2
    bad=1
  fi
  rm -rf "$RT"
  return $bad
}
