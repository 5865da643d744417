#!/usr/bin/env bash
# The dashboard's npm packages and bundle (web/: esbuild and uPlot, pinned by
# web/package-lock.json). `npm ci` runs only when web/node_modules is missing or older than the
# lockfile; the build itself also runs from CMake (src/web/CMakeLists.txt) whenever web/src
# changes, so this script is what `make` calls before configuring.
# Usage: scripts/build-web.sh deps       install the packages only
#        scripts/build-web.sh [OUTDIR]   install, then bundle into OUTDIR (default web/dist);
#                                        cmake -DSLUICE_WEB_DIST=OUTDIR embeds such a bundle
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/web"
stamp="$web/node_modules/.package-lock.json"
if ! command -v npm >/dev/null 2>&1; then
  echo "build-web: npm is missing; run scripts/install-deps.sh (it installs Node.js and npm)" >&2
  exit 1
fi
if [[ ! -f "$stamp" || "$web/package-lock.json" -nt "$stamp" ]]; then
  echo "== installing the dashboard's npm packages (npm ci in web/)"
  npm ci --prefix "$web" --no-audit --no-fund --loglevel=error >/dev/null
fi
if [[ "${1:-}" == deps ]]; then exit 0; fi
node "$web/build.mjs" --outdir "${1:-$web/dist}"
