# lib.sh - sourced by the bench_*.sh scripts that run their own server:
#   bench_init NAME        scratch directory $T, removed on exit (with the
#                          server, if one was started)
#   bench_serve [OPTS...]  `pocketctl --data $T/data serve` on a free
#                          loopback port with --root $T/root and OPTS, its
#                          log in $T/server.log; sets PORT, URL, SRV_PID and
#                          returns once /healthz answers
#   bench_reconcile_bin    the timing helper bench_reconcile.c into $B
#                          ($BENCH_RECONCILE when set, as `make bench`
#                          passes it; else built from build/rel into $T)
# PCTL must name the pocketctl binary.

bench_cleanup() {
  if [ -n "${SRV_PID:-}" ]; then
    kill -TERM "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}

bench_init() {
  T="$(mktemp -d "/tmp/pocketctl-bench-$1.XXXXXX")"
  SRV_PID=""
  trap bench_cleanup EXIT
}

bench_serve() {
  PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  URL="http://127.0.0.1:$PORT"
  "$PCTL" --data "$T/data" serve --listen "127.0.0.1:$PORT" --root "$T/root" "$@" \
    >"$T/server.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 1 200); do
    curl -fsS -m 2 "$URL/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$T/server.log" >&2
  echo "bench: the server did not start" >&2
  exit 1
}

bench_reconcile_bin() {
  local here repo objs pkgs
  B="${BENCH_RECONCILE:-}"
  [ -z "$B" ] || return 0
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  repo="$(cd "$here/../.." && pwd)"
  # the libraries the Makefile links, so a new one needs no edit here
  pkgs=$(sed -n 's/^PKGS *:= *//p' "$repo/Makefile")
  objs=$(ls "$repo"/build/rel/controller/*.o "$repo"/build/rel/controller/*/*.o "$repo"/build/rel/reconcilers/*.o 2>/dev/null | grep -v '/main\.o$' || true)
  [ -n "$objs" ] || { echo "bench: build first (make), or set BENCH_RECONCILE" >&2; exit 2; }
  cc -std=c11 -D_GNU_SOURCE -O2 -I"$repo/controller" -I"$repo/reconcilers" \
    $(pkg-config --cflags $pkgs) -o "$T/bench-reconcile" "$here/bench_reconcile.c" \
    $objs $(pkg-config --libs $pkgs) -lcivetweb -lcrypt -lpthread -lm
  B="$T/bench-reconcile"
}
