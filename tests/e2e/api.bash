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
