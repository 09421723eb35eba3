#!/usr/bin/env bash
# podman.sh start|stop|status|recreate|env - a private, throw-away Podman
# engine that speaks the Docker Engine API on a unix socket, for the
# container tests (recipe and pitfalls: ../shared/reference/container-engine.md).
#
#   start     install podman + runc from Debian when missing, start the API
#             service on $ST/podman.sock, import a busybox image (no
#             registry), create the managed test containers. Idempotent.
#   stop      remove every container, stop the service, undo everything
#             (mounts, cgroups, store). Safe to run when nothing is up.
#   status    exit 0 when the API answers, 1 otherwise.
#   recreate  remove and create the test containers again (fresh logs).
#   ensure    create missing test containers, start stopped ones.
#   env       print DOCKER_HOST=... for `eval`.
#   service-stop  stop only the API service (containers keep running), for
#             "engine went away" tests; `start` brings it back.
#   starts NAME   how many times NAME's process started (its "started"
#             log lines); `last NAME` prints the checksum of the last start.
#   cli ARGS  podman ARGS on the private store.
#
# The test containers bind-mount the render root $PODMAN_CI_ROOT (default
# $ST/root) read-only at /cfg, print the checksum of what they see there
# when they start, then tick until SIGTERM:
#   pocketcoder-opencode, pocketcoder-mcp-gateway   (managed, see manifests/)
#   pc-unmanaged                                     (never to be touched)
set -euo pipefail
# The service and conmon outlive this script: they must not inherit the
# caller's descriptors (bats' fd 3 would keep it waiting; the e2e lock on
# fd 9 would never be released).
for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done
ST=${PODMAN_CI_DIR:-/tmp/podman-ci}      # short: unix socket paths < 108 bytes
SOCK=$ST/podman.sock
ROOT=${PODMAN_CI_ROOT:-$ST/root}
IMAGE=localhost/tiny:latest
CONTAINERS=(pocketcoder-opencode pocketcoder-mcp-gateway pc-unmanaged)
export CONTAINERS_CONF=$ST/containers.conf
PODMAN=(podman --root "$ST/storage" --runroot "$ST/run" --tmpdir "$ST/libpod")

log() { echo "podman.sh: $*" >&2; }

api() {  # api METHOD PATH [JSON]: print the body, fail on >= 400
  local m=$1 p=$2
  if [ $# -ge 3 ]; then
    curl -fsS --unix-socket "$SOCK" -X "$m" -H 'Content-Type: application/json' \
      --data "$3" "http://d/v1.41$p"
  else
    curl -fsS --unix-socket "$SOCK" -X "$m" "http://d/v1.41$p"
  fi
}

install() {
  local p missing=()
  for p in podman runc conmon catatonit busybox-static curl jq; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  # runc, not crun: crun 1.8 refuses this kernel's hybrid cgroup layout.
  # --no-install-recommends keeps criu, buildah, netavark, ... out.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() {
  mkdir -p "$ST" "$ROOT"
  local nofile; nofile=$(ulimit -Hn)  # no CAP_SYS_RESOURCE: stay under hard limits
  cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=4096:4096"]
netns = "none"
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "$ST/networks"
EOF
}

up() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

image() {  # localhost/tiny:latest = static busybox only (~2 MB)
  if "${PODMAN[@]}" image exists "$IMAGE" 2>/dev/null; then return 0; fi
  local r=$ST/rootfs
  rm -rf "$r"; mkdir -p "$r/bin" "$r/tmp" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/cfg"
  cp /bin/busybox "$r/bin/busybox"
  chroot "$r" /bin/busybox --install -s /bin
  tar -C "$r" -cf "$ST/rootfs.tar" .
  "${PODMAN[@]}" import --change 'CMD ["/bin/sh"]' "$ST/rootfs.tar" "$IMAGE" >/dev/null 2>&1
  rm -rf "$r" "$ST/rootfs.tar"
}

# The command of every test container: report what it was started with,
# then tick; TERM ends it at once (sleep in the background, then wait).
CMD='trap "kill \$! 2>/dev/null; exit 0" TERM; echo "started $(find /cfg -type f 2>/dev/null | sort | xargs -r cat | md5sum | cut -c1-32)"; i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.5 & wait $!; done'

create_one() {
  local name=$1 body
  body=$(printf '{"Image":"%s","Cmd":["/bin/sh","-c",%s],"StopTimeout":10,"Labels":{"pocketctl-test":"yes"},"HostConfig":{"NetworkMode":"none","Init":true,"RestartPolicy":{"Name":"no"},"Binds":["%s:/cfg:ro"]}}' \
    "$IMAGE" "\"$(printf '%s' "$CMD" | sed 's/\\/\\\\/g; s/"/\\"/g')\"" "$ROOT")
  api POST "/containers/create?name=$name" "$body" >/dev/null
  api POST "/containers/$name/start" >/dev/null
}

create() {
  local n
  mkdir -p "$ROOT"
  for n in "${CONTAINERS[@]}"; do
    if api GET "/containers/$n/json" >/dev/null 2>&1; then
      api POST "/containers/$n/start" >/dev/null 2>&1 || true   # 304 when running
    else
      create_one "$n"
    fi
  done
}

recreate() {
  local n
  for n in "${CONTAINERS[@]}"; do
    api DELETE "/containers/$n?force=1&t=0" >/dev/null 2>&1 || true
  done
  create
}

start() {
  install
  write_conf
  if up; then
    log "already up: unix://$SOCK"
  else
    [ -f "$ST/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$ST/ip_forward.orig"
    rm -f "$SOCK"
    # setsid: the service must not share the test runner's process group.
    setsid "${PODMAN[@]}" system service --time=0 "unix://$SOCK" >"$ST/service.log" 2>&1 </dev/null &
    echo $! >"$ST/service.pid"
    local i
    for i in $(seq 1 300); do
      up && break
      sleep 0.1
    done
    if ! up; then log "the API did not come up"; cat "$ST/service.log" >&2; return 1; fi
    log "API up: unix://$SOCK"
  fi
  image
  create
}

# Stop only the API service (containers keep running): for "engine down"
# tests. `start` brings it back.
service_stop() {
  [ -f "$ST/service.pid" ] || return 0
  local pid; pid=$(cat "$ST/service.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$ST/service.pid" "$SOCK"
}

stop() {
  [ -d "$ST" ] || return 0
  if command -v podman >/dev/null; then
    "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1 || true  # containers outlive the service
  fi
  service_stop
  if command -v podman >/dev/null; then
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
  fi
  if [ -f "$ST/ip_forward.orig" ]; then cat "$ST/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward || true; fi
  awk -v st="$ST/" 'index($2, st) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l || true
  rm -rf "$ST"
  for d in /sys/fs/cgroup/*/libpod_parent; do rmdir "$d/conmon" "$d" 2>/dev/null || true; done
  rm -rf /var/lib/containers/cache; rmdir /var/lib/containers 2>/dev/null || true
  # Only when some container ran on podman's default bridge (not ours).
  ip link del cni-podman0 2>/dev/null || true
  rm -rf /var/lib/cni/networks/podman /var/lib/cni/results/podman-* 2>/dev/null || true
  rmdir /var/lib/cni/networks /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  log "stopped and cleaned up"
}

status() { up && echo "up: unix://$SOCK" || { echo "down"; return 1; }; }

env_() { echo "DOCKER_HOST=unix://$SOCK"; }

starts() { "${PODMAN[@]}" logs "$1" 2>/dev/null | grep -c '^started ' || true; }
last() { "${PODMAN[@]}" logs "$1" 2>/dev/null | grep '^started ' | tail -n 1 | cut -d' ' -f2; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  recreate) recreate ;;
  ensure) create ;;
  service-stop) service_stop ;;
  env) env_ ;;
  starts) starts "$2" ;;
  last) last "$2" ;;
  cli) shift; "${PODMAN[@]}" "$@" ;;
  *) echo "usage: $0 start|stop|status|recreate|ensure|service-stop|env|starts NAME|last NAME|cli ARGS" >&2; exit 2 ;;
esac
