#!/usr/bin/env bash
# Runs every test against a built tree: unit tests, integration tests (which start the real
# sluice binary and the services they need), then a short fuzz run of the event parser.
# Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
cd "$root"

status=0
echo "== installing test peers from npm (Segment and RudderStack SDKs)"
# Not `npm ci`: npm 11 refuses this lockfile because it lacks other platforms' native builds
# of msgpackr-extract (under bull, an optional dependency of rudder-sdk-node that we omit).
# `install --no-save` installs exactly the versions the lockfile pins and never rewrites it.
npm install --prefix tests/sdk --no-save --omit=optional --no-audit --no-fund --loglevel=error >/dev/null

echo "== unit and integration tests (ctest)"
(cd "$build" && ctest --output-on-failure -j2 --timeout 900) || status=$?

echo "== fuzzing the event parser for ${FUZZ_SECONDS:-30}s"
make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-30}" >"$build/fuzz.log" 2>&1 || {
  echo "fuzz run failed; last lines of $build/fuzz.log:"
  tail -40 "$build/fuzz.log"
  status=1
}
grep -E "^(Done|stat::number_of_executed_units)" "$build/fuzz.log" || true

exit "$status"
