#!/usr/bin/env bash
# Installs the Debian packages Sluice builds and tests with, only those missing.
# Usage: scripts/install-deps.sh [build|test|all]   (default: build)
set -euo pipefail
what="${1:-build}"

build_pkgs=(cmake ninja-build g++ ccache pkg-config
  libboost-dev libsimdjson-dev libhiredis-dev libpq-dev libcurl4-openssl-dev libssl-dev
  zlib1g-dev libzstd-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev libexpat1-dev libjemalloc-dev)
test_pkgs=(clang libclang-rt-14-dev curl postgresql-15 postgresql-client-15 hyperfine
  redis-server redis-tools gnuplot-nox python3 chromium)

pkgs=("${build_pkgs[@]}")
if [[ "$what" == test || "$what" == all ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
# Node.js may come from Debian (nodejs + npm) or from a vendor package that bundles npm:
# only ask apt for it when there is no npm command at all.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
