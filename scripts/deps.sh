#!/usr/bin/env bash
# Installs the Debian packages gotuned needs to build and test, when they are
# missing. As root it runs apt-get; otherwise it prints the exact command.
#
#   scripts/deps.sh           what building and testing need
#   scripts/deps.sh --bench   that, and what `make bench` needs as well: wrk and
#                             the reference servers of bench/http.sh
#
# Installing nginx, etcd or the Pushgateway on Debian starts their system
# services (ports 80, 2379, 9091). The benchmark starts its own instances on
# free loopback ports and wants nothing else running, so during an install
# a temporary /usr/sbin/policy-rc.d that answers 101 ("action forbidden")
# keeps invoke-rc.d from starting any service. It is removed afterwards,
# also when the install fails or is interrupted; an existing policy-rc.d is
# left as it is (and then decides on its own).
set -euo pipefail

bench=
case "${1:-}" in
  '') ;;
  --bench) bench=1 ;;
  *) echo "usage: scripts/deps.sh [--bench]" >&2; exit 2 ;;
esac

pkgs=(
  gcc make pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libcgroup-dev libcmocka-dev
  libcurl4-gnutls-dev
  # the sqlite3 CLI: the HTTP suites dump the database and run integrity_check
  sqlite3
  golang-go nodejs curl
  # fuzzing (tests/fuzz): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # browser tests (tests/browser): the browser, and a font so screenshots show text
  chromium fonts-dejavu-core
)
if [ -n "$bench" ]; then
  pkgs+=(
    wrk                     # HTTP load generator with Lua scripting
    nginx-light             # reference: the cost floor of a small HTTP request
    prometheus-pushgateway  # reference: the same data in Prometheus text format
    etcd-server             # reference: the same data as a key, fsync'd per write
    valgrind
  )
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# nodejs may come from elsewhere than Debian (e.g. a vendor repository);
# what the suites need is a node >= 18 on PATH.
if command -v node >/dev/null 2>&1; then
  major=$(node -e 'process.stdout.write(process.versions.node.split(".")[0])')
  if [ "$major" -ge 18 ]; then
    missing=("${missing[@]/nodejs}")
  fi
fi
# The browser tests install playwright-core with npm, which Debian packages
# apart from nodejs (vendor builds of nodejs bring it along).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
read -r -a missing <<<"${missing[*]}"

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "gotuned needs these Debian packages: ${missing[*]}" >&2
  echo "Install them as root with:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
ours=
remove_policy() {
  if [ -n "$ours" ]; then
    rm -f "$policy"
    ours=
  fi
}
trap remove_policy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -e "$policy" ] || [ -L "$policy" ]; then
  echo "deps.sh: $policy exists; leaving it alone (services may start)" >&2
elif (set -o noclobber
      printf '#!/bin/sh\n# scripts/deps.sh: no service starts during the install\nexit 101\n' >"$policy") 2>/dev/null; then
  # noclobber: one that appeared meanwhile is not ours
  ours=1
  chmod 0755 "$policy"
fi

echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
