# curl helpers for the records API tests that run on helpers.bash's
# start_server (handover.bats, relfilter.bats): one request with its
# status in $code and body in $body, and a password login.

# api METHOD PATH [TOKEN] [JSON]: sets code and body.
api() {
  local method="$1" path="$2" tok="${3:-}" data="${4:-}"
  local args=(-sS -m 10 -X "$method" -o "$T/body" -w '%{http_code}')
  [ -n "$tok" ] && args+=(-H "Authorization: $tok")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  code="$(curl "${args[@]}" "$URL$path")"
  body="$(cat "$T/body")"
}

# login COLLECTION IDENTITY PASSWORD: prints the token (empty on failure).
login() {
  curl -sS -m 10 -H 'Content-Type: application/json' \
    --data-binary "{\"identity\":\"$2\",\"password\":\"$3\"}" \
    "$URL/api/collections/$1/auth-with-password" | jq -r '.token // empty'
}

# new_user NAME ROLE: a users record NAME@example.com made by $SU; sets
# UID_OF[NAME] and TOK_OF[NAME] (declare -gA UID_OF TOK_OF first).
new_user() {
  api POST /api/collections/users/records "$SU" \
    "{\"email\":\"$1@example.com\",\"password\":\"$1-pass-123\",\"passwordConfirm\":\"$1-pass-123\",\"role\":\"$2\",\"name\":\"$1\"}"
  [ "$code" = 200 ] || { echo "cannot create $1: $code $body" >&2; return 1; }
  UID_OF[$1]="$(jq -r .id <<<"$body")"
  TOK_OF[$1]="$(login users "$1@example.com" "$1-pass-123")"
  [ -n "${TOK_OF[$1]}" ]
}
