#!/usr/bin/env bash
# Measures the ledger side by side with PostgreSQL's own pgbench (tpcb-like) on the same, private PostgreSQL server, and
# prints a table with ratios. Usage: bash scripts/bench.sh [seconds per run, default 15]
# Builds Coffer in release mode, starts its own PostgreSQL (see scripts/postgres.sh) unless COFFER_TEST_POSTGRES_URL is set,
# installs wrk (Debian) for the HTTP runs when it is missing.
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

if ! command -v wrk >/dev/null; then
  apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
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

http_run() { # name, database args..., then wrk connections and batch size via env
  local name=$1; shift
  local data; data=$(mktemp -d /tmp/coffer-http.XXXXXX)
  local port=18480
  while (echo >/dev/tcp/127.0.0.1/$port) >/dev/null 2>&1; do port=$((port + 1)); done
  "$bin" serve --demo --port "$port" --data-dir "$data" "$@" >"$data/serve.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do grep -q '^demo account:' "$data/serve.log" 2>/dev/null && break; sleep 0.2; done
  export COFFER_KEY=$(grep '^platform key:' "$data/serve.log" | cut -d' ' -f3)
  export COFFER_ACCOUNT=$(grep '^demo account:' "$data/serve.log" | cut -d' ' -f3)
  export COFFER_RUN=$name-$(date +%s)
  echo "== HTTP: $name (wrk, ${HTTP_CONNECTIONS} connections, batch ${COFFER_BATCH})"
  wrk -t 2 -c "$HTTP_CONNECTIONS" -d "${seconds}s" --latency -s scripts/http-load.lua "http://127.0.0.1:$port" >"$out/$name.wrk" 2>&1 || true
  grep -E 'Requests/sec|50%|99%|unexpected' "$out/$name.wrk" | head -5
  local rss; rss=$(ps -o rss= -p "$server" | tr -d ' ')
  kill "$server"; wait "$server" 2>/dev/null || true
  local rps p50 p99 ops
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$out/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$out/$name.wrk")
  ops=$(awk -v r="$rps" -v b="$COFFER_BATCH" 'BEGIN { printf "%.0f", r * (b > 0 ? b : 1) }')
  echo "RESULT ops_per_s=$ops p50=$p50 p99=$p99 rss_kb=$rss" >"$out/$name.http"
  "$bin" verify --data-dir "$data" "$@" >/dev/null
  rm -rf "$data"
}
HTTP_CONNECTIONS=64 COFFER_BATCH=0 http_run http-pg-single --database "$base/coffer_bench"
HTTP_CONNECTIONS=64 COFFER_BATCH=0 http_run http-sqlite-single
HTTP_CONNECTIONS=8 COFFER_BATCH=100 http_run http-pg-batch100 --database "$base/coffer_bench"
HTTP_CONNECTIONS=8 COFFER_BATCH=100 http_run http-sqlite-batch100

echo
echo "| HTTP run | charges/s | p50 | p99 | server RSS at end |"
echo "| --- | ---: | ---: | ---: | ---: |"
for f in "$out"/*.http; do
  line=$(cat "$f")
  echo "| $(basename "$f" .http) | $(echo "$line" | grep -oE 'ops_per_s=[0-9.]+' | cut -d= -f2) | $(echo "$line" | grep -oE 'p50=[^ ]+' | cut -d= -f2) | $(echo "$line" | grep -oE 'p99=[^ ]+' | cut -d= -f2) | $(( $(echo "$line" | grep -oE 'rss_kb=[0-9]+' | cut -d= -f2) / 1024 )) MiB |"
done

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
