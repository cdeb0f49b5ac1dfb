#!/usr/bin/env bash
# Runs every test of Coffer on SQLite and PostgreSQL:
#   1. starts a private PostgreSQL (installing Debian's package if needed) unless COFFER_TEST_POSTGRES_URL is set;
#   2. builds once (`swift build --build-tests`) and runs every suite from that build;
#   3. runs the README's curl walk-through against a started server on SQLite and on PostgreSQL, then `coffer verify`;
#   4. stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh

if [ -z "${COFFER_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
  trap stop_postgres EXIT
fi
export COFFER_REQUIRE_POSTGRES=1

echo "== building (debug, with tests)"
swift build --build-tests

echo "== unit, storage and HTTP suites (SQLite and PostgreSQL)"
swift test --skip-build

echo "== README walk-through against a started server"
bash scripts/walkthrough.sh sqlite
bash scripts/walkthrough.sh "$COFFER_TEST_POSTGRES_URL"
