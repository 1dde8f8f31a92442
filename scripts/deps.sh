#!/usr/bin/env bash
# Installs the Debian packages gotuned needs to build and test, when they are
# missing. As root it runs apt-get; otherwise it prints the exact command.
set -euo pipefail

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
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
