#!/usr/bin/env bash
# Measures the ledger side by side with PostgreSQL's own pgbench (tpcb-like) on the same, private PostgreSQL server, and
# prints a table with ratios. Usage: bash scripts/bench.sh [seconds per run, default 15]
# Builds Coffer in release mode, starts its own PostgreSQL (see scripts/postgres.sh) unless COFFER_TEST_POSTGRES_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
seconds=${1:-15}

if [ -z "${COFFER_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
  trap stop_postgres EXIT
fi
base=${COFFER_TEST_POSTGRES_URL%/*}
psql_admin() { psql "$base/postgres" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
psql_admin "DROP DATABASE IF EXISTS coffer_bench" >/dev/null
psql_admin "CREATE DATABASE coffer_bench" >/dev/null
psql_admin "DROP DATABASE IF EXISTS pgbench_base" >/dev/null
psql_admin "CREATE DATABASE pgbench_base" >/dev/null
echo "synchronous_commit: $(psql "$base/coffer_bench" -qAt -c 'SHOW synchronous_commit'), fsync: $(psql "$base/coffer_bench" -qAt -c 'SHOW fsync')"

echo "== building coffer (release)"
swift build -c release --product coffer >/dev/null
bin=.build/release/coffer
out=$(mktemp -d /tmp/coffer-bench.XXXXXX)

echo "== pgbench tpcb-like, 8 clients, ${seconds} s (baseline)"
pgbench -i -q -s 10 "$base/pgbench_base" >/dev/null 2>&1
pgbench -n -b tpcb-like -c 8 -j 2 -T "$seconds" "$base/pgbench_base" | tee "$out/pgbench.txt" | grep -E 'tps|latency'
pg_tps=$(grep -oE 'tps = [0-9.]+' "$out/pgbench.txt" | head -n 1 | awk '{print $3}')

run() { # name, database, clients, accounts
  echo "== coffer bench ledger: $1"
  "$bin" bench ledger --database "$2" --clients "$3" --accounts "$4" --seconds "$seconds" | tee "$out/$1.txt" | grep -E 'throughput|latency|verify'
}
run pg-64c-1000a "$base/coffer_bench" 64 1000
run pg-64c-hot "$base/coffer_bench" 64 1
run sqlite-64c-1000a "sqlite:$out/bench.sqlite" 64 1000
run sqlite-64c-hot "sqlite:$out/bench.sqlite" 64 1
for c in 1 8 16 32 128; do run "pg-${c}c-1000a" "$base/coffer_bench" "$c" 1000; done

echo
echo "| run | durable charges/s | p50 ms | p99 ms | ratio to pgbench tps |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| pgbench tpcb-like, 8 clients | $pg_tps tps | | | 1.00 |"
for f in "$out"/*.txt; do
  name=$(basename "$f" .txt)
  [ "$name" = pgbench ] && continue
  line=$(grep '^RESULT' "$f") || continue
  ops=$(echo "$line" | grep -oE 'ops_per_s=[0-9.]+' | cut -d= -f2)
  p50=$(echo "$line" | grep -oE 'p50_ms=[0-9.]+' | cut -d= -f2)
  p99=$(echo "$line" | grep -oE 'p99_ms=[0-9.]+' | cut -d= -f2)
  ratio=$(awk -v a="$ops" -v b="$pg_tps" 'BEGIN { printf "%.2f", a / b }')
  echo "| $name | $ops | $p50 | $p99 | $ratio |"
done
"$bin" verify --database "$base/coffer_bench"
rm -rf "$out"
