#!/usr/bin/env bash
# install-deps.sh run|test|bench - install the Debian packages pocketctl needs
# that are missing. `run`: build and run; `test`: also the test frameworks
# and tools; `bench`: also the load generators. Idempotent: installs nothing
# when everything is present.
set -euo pipefail

run_pkgs=(gcc make pkg-config git diffutils libsqlite3-dev libcurl4-openssl-dev
          libjansson-dev libyaml-dev libcivetweb-dev libssl-dev libcrypt-dev
          libjemalloc-dev libicu-dev libsystemd-dev scdoc tzdata)
test_pkgs=(libcriterion-dev bats curl clang jq python3 python3-yaml openssh-client sqlite3
           python3-prometheus-client systemd man-db zsh chromium)
bench_pkgs=(wrk hyperfine etcd-server)

want=("${run_pkgs[@]}")
case "${1:-run}" in
  run) ;;
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

# The app-compatibility tests need node >= 18 with npm. Machines that
# already have a node toolchain (for example from another packager) keep it:
# installing Debian's npm over it would conflict.
if [ "${1:-run}" != run ] && ! command -v npm >/dev/null 2>&1; then
  want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
