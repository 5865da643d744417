#!/usr/bin/env bash
# Runs every test against a built tree: unit tests, integration tests (which start the real
# sluice binary and the services they need, and a headless chromium for the dashboard), then a
# short fuzz run of the event parser.
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
# Object-store peers (tests/peers: s3rver, azurite, @aws-sdk/client-s3), the same way.
npm install --prefix tests/peers --no-save --omit=optional --no-audit --no-fund --loglevel=error >/dev/null
# The dashboard's browser tests (tests/browser: playwright-core, which drives Debian's chromium
# that scripts/install-deps.sh installs; it never downloads a browser of its own).
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
# The browser test fails, rather than skips, when chromium or playwright-core is missing.
export SLUICE_REQUIRE_BROWSER=1

echo "== starting PostgreSQL 15: a primary and a streaming replica (scripts/pg.sh)"
source "$root/scripts/pg.sh"
pg_tmp="$(mktemp -d /tmp/sluice-test-pg-XXXXXX)"
chmod 755 "$pg_tmp"  # the servers run as user postgres
stop_pg() {
  pg_stop "$pg_tmp/replica"
  pg_stop "$pg_tmp/primary"
  rm -rf "$pg_tmp"
}
stop_peers() {
  if [[ -n "${redis_tmp:-}" ]]; then redis_stop "$redis_tmp"; rm -rf "$redis_tmp"; fi
  if [[ -n "${s3rver_tmp:-}" ]]; then s3rver_stop "$s3rver_tmp"; rm -rf "$s3rver_tmp"; fi
  if [[ -n "${azurite_tmp:-}" ]]; then azurite_stop "$azurite_tmp"; rm -rf "$azurite_tmp"; fi
  stop_pg
}
trap stop_peers EXIT
pg_port="$(pg_free_port)"
pg_start_primary "$pg_tmp/primary" "$pg_port"
pg_replica_port="$(pg_free_port)"
pg_start_replica "$pg_port" "$pg_tmp/replica" "$pg_replica_port"
export SLUICE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$pg_port/sluice"
export SLUICE_TEST_PG_REPLICA_URL="postgresql://postgres@127.0.0.1:$pg_replica_port/sluice"
# Tests that need PostgreSQL fail, rather than skip, when the variables above are missing.
export SLUICE_REQUIRE_PG=1

echo "== starting redis-server (scripts/redis.sh)"
source "$root/scripts/redis.sh"
redis_tmp="$(mktemp -d /tmp/sluice-test-redis-XXXXXX)"
redis_port="$(redis_free_port)"
redis_start "$redis_tmp" "$redis_port"
export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
# Tests that need Redis fail, rather than skip, when the variable above is missing.
export SLUICE_REQUIRE_REDIS=1

echo "== starting s3rver (scripts/s3rver.sh)"
source "$root/scripts/s3rver.sh"
s3rver_tmp="$(mktemp -d /tmp/sluice-test-s3rver-XXXXXX)"
s3rver_port="$(s3rver_free_port)"
export SLUICE_TEST_S3_BUCKET=sluice-test
s3rver_start "$s3rver_tmp" "$s3rver_port" "$SLUICE_TEST_S3_BUCKET"
export SLUICE_TEST_S3_ENDPOINT="http://127.0.0.1:$s3rver_port"
# s3rver's fixed credentials; any region.
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
# Tests that need S3 fail, rather than skip, when the variables above are missing.
export SLUICE_REQUIRE_S3=1

echo "== starting azurite, blob service (scripts/azurite.sh)"
source "$root/scripts/azurite.sh"
azurite_tmp="$(mktemp -d /tmp/sluice-test-azurite-XXXXXX)"
azurite_port="$(azurite_free_port)"
azurite_start "$azurite_tmp" "$azurite_port"
# Azurite's well-known development account, as its published connection string names it.
export SLUICE_TEST_AZURE_CONNECTION_STRING="$(azurite_connection_string "$azurite_port")"
# Tests that need Azure fail, rather than skip, when the variable above is missing.
export SLUICE_REQUIRE_AZURE=1

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
