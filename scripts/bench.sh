#!/usr/bin/env bash
# Measures the ledger side by side with PostgreSQL's own pgbench (tpcb-like) on the same, private PostgreSQL server, and
# prints the tables of docs/PERFORMANCE.md with ratios, the profiles behind them, and a chart.
#
#   bash scripts/bench.sh [seconds per run, default 10]
#
# Environment: COFFER_BENCH_MEMORY_SECONDS (default 300; 0 skips the memory run), COFFER_BENCH_OUT (where the raw outputs
# and chart go, default a fresh /tmp directory; the chart is also copied to docs/ledger-throughput.svg).
# Builds Coffer in release mode, starts its own PostgreSQL (scripts/postgres.sh, with pg_stat_statements loaded) unless
# COFFER_TEST_POSTGRES_URL is set, installs wrk and perf (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
seconds=${1:-10}
memory_seconds=${COFFER_BENCH_MEMORY_SECONDS:-300}

if [ -z "${COFFER_TEST_POSTGRES_URL:-}" ]; then
  COFFER_PG_OPTIONS="-c shared_preload_libraries=pg_stat_statements" start_postgres
  trap stop_postgres EXIT
fi
base=${COFFER_TEST_POSTGRES_URL%/*}
psql_admin() { psql "$base/postgres" -v ON_ERROR_STOP=1 -qAt -c "$1"; }
psql_admin "DROP DATABASE IF EXISTS coffer_bench" >/dev/null
psql_admin "CREATE DATABASE coffer_bench" >/dev/null
psql_admin "DROP DATABASE IF EXISTS pgbench_base" >/dev/null
psql_admin "CREATE DATABASE pgbench_base" >/dev/null
stats=no
psql "$base/coffer_bench" -qAt -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null 2>&1 && stats=yes
echo "synchronous_commit: $(psql "$base/coffer_bench" -qAt -c 'SHOW synchronous_commit'), fsync: $(psql "$base/coffer_bench" -qAt -c 'SHOW fsync')"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v perf >/dev/null || missing+=(linux-perf)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || true
fi
echo "== building coffer (release)"
swift build -c release --product coffer >/dev/null
bin=.build/release/coffer
out=${COFFER_BENCH_OUT:-$(mktemp -d /tmp/coffer-bench.XXXXXX)}
mkdir -p "$out"
echo "raw outputs: $out"

echo "== pgbench tpcb-like, 8 clients, ${seconds} s (baseline)"
pgbench -i -q -s 10 "$base/pgbench_base" >/dev/null 2>&1
pgbench -n -b tpcb-like -c 8 -j 2 -T "$seconds" "$base/pgbench_base" | tee "$out/pgbench.log" | grep -E 'tps|latency'
pg_tps=$(grep -oE 'tps = [0-9.]+' "$out/pgbench.log" | head -n 1 | awk '{print $3}')

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
postgres_ticks() { local t=0 p; for p in $(pgrep -x postgres); do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

run() { # name, database, clients, accounts
  echo "== coffer bench ledger: $1"
  "$bin" bench ledger --database "$2" --clients "$3" --accounts "$4" --seconds "$seconds" | tee "$out/$1.txt" |
    grep -E 'throughput|latency|verify'
}

# The headline run, with both profiles: the writer's own phase timings (printed by the command), PostgreSQL's per-statement
# times (pg_stat_statements) and a CPU profile of the coffer process (perf).
[ "$stats" = yes ] && psql "$base/coffer_bench" -qAt -c 'SELECT pg_stat_statements_reset()' >/dev/null
if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
  # perf attaches once the accounts are funded (the command says "measuring" on stderr), so that set-up, with its bcrypt
  # password hashes, stays out of the profile.
  echo "== coffer bench ledger: pg-64c-1000a (with perf)"
  "$bin" bench ledger --database "$base/coffer_bench" --clients 64 --accounts 1000 --seconds "$seconds" \
    >"$out/pg-64c-1000a.txt" 2>"$out/pg-64c-1000a.err" &
  bench=$!
  for _ in $(seq 1 600); do grep -q '^measuring' "$out/pg-64c-1000a.err" 2>/dev/null && break; sleep 0.1; done
  # CPU time of coffer and of all PostgreSQL processes over the same window (utime+stime from /proc, in clock ticks).
  window=$((seconds > 3 ? seconds - 2 : 1))
  c0=$(cpu_ticks "$bench"); p0=$(postgres_ticks)
  perf record -q -F 499 -g -p "$bench" -o "$out/perf.data" -- sleep "$window" >/dev/null 2>&1 || true
  c1=$(cpu_ticks "$bench"); p1=$(postgres_ticks)
  wait "$bench"
  ops=$(grep -oE 'ops_per_s=[0-9]+' "$out/pg-64c-1000a.txt" | cut -d= -f2)
  awk -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v o="$ops" -v w="$window" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    printf "CPU during the run: coffer %.2f cores, postgres %.2f cores; per charge: coffer %.0f us, postgres %.0f us\n",
      c / hz / w, p / hz / w, c / hz / w / o * 1e6, p / hz / w / o * 1e6 }' >"$out/cpu.txt"
  cat "$out/cpu.txt"
  grep -E 'throughput|latency|verify' "$out/pg-64c-1000a.txt"
  perf report -i "$out/perf.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +- +- +$//' |
    swift demangle --simplified | cut -c1-160 | head -n 80 >"$out/perf-top.txt" || true
else
  run pg-64c-1000a "$base/coffer_bench" 64 1000
fi
if [ "$stats" = yes ]; then
  psql "$base/coffer_bench" -q -P pager=off -c "
    SELECT calls, round(mean_exec_time::numeric, 3) AS mean_ms, round(total_exec_time::numeric) AS total_ms,
           rows / greatest(calls, 1) AS rows_per_call, left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'coffer_bench')
    ORDER BY total_exec_time DESC LIMIT 12" >"$out/pg-statements.txt"
fi
run pg-64c-hot "$base/coffer_bench" 64 1
for c in 1 8 16 32 128 256; do run "pg-${c}c-1000a" "$base/coffer_bench" "$c" 1000; done
for c in 1 8 64 256; do run "sqlite-${c}c-1000a" "sqlite:$out/bench.sqlite" "$c" 1000; done
run sqlite-64c-hot "sqlite:$out/bench.sqlite" 64 1

# HTTP: a running server under wrk. Prints requests/s, latency and the server's resident memory.
start_server() { # data dir, args...; sets server and port
  local data=$1; shift
  port=18480
  while (echo >/dev/tcp/127.0.0.1/$port) >/dev/null 2>&1; do port=$((port + 1)); done
  "$bin" serve --demo --port "$port" --data-dir "$data" "$@" >"$data/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do grep -q '^demo account:' "$data/serve.log" 2>/dev/null && break; sleep 0.2; done
  export COFFER_KEY=$(grep '^platform key:' "$data/serve.log" | cut -d' ' -f3)
  export COFFER_ACCOUNT=$(grep '^demo account:' "$data/serve.log" | cut -d' ' -f3)
}
rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
http_run() { # name, database args...; HTTP_CONNECTIONS and COFFER_BATCH from the environment
  local name=$1; shift
  local data; data=$(mktemp -d /tmp/coffer-http.XXXXXX)
  start_server "$data" "$@"
  export COFFER_RUN=$name-$(date +%s)
  echo "== HTTP: $name (wrk, ${HTTP_CONNECTIONS} connections, batch ${COFFER_BATCH})"
  wrk -t 2 -c "$HTTP_CONNECTIONS" -d "${seconds}s" --latency -s scripts/http-load.lua "http://127.0.0.1:$port" >"$out/$name.wrk" 2>&1 || true
  grep -E 'Requests/sec|50%|99%|unexpected' "$out/$name.wrk" | head -5
  local rss; rss=$(rss_kb "$server")
  kill "$server"; wait "$server" 2>/dev/null || true
  local rps p50 p99 ops
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/$name.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$out/$name.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$out/$name.wrk")
  ops=$(awk -v r="$rps" -v b="$COFFER_BATCH" 'BEGIN { printf "%.0f", r * (b > 0 ? b : 1) }')
  echo "RESULT ops_per_s=$ops p50=$p50 p99=$p99 rss_kb=$rss" >"$out/$name.http"
  "$bin" verify --data-dir "$data" "$@" | tee -a "$out/$name.wrk" | tail -n 1
  rm -rf "$data"
}
HTTP_CONNECTIONS=64 COFFER_BATCH=0 http_run http-pg-single --database "$base/coffer_bench"
HTTP_CONNECTIONS=64 COFFER_BATCH=0 http_run http-sqlite-single
HTTP_CONNECTIONS=8 COFFER_BATCH=100 http_run http-pg-batch100 --database "$base/coffer_bench"
HTTP_CONNECTIONS=8 COFFER_BATCH=100 http_run http-sqlite-batch100

# Memory: the server's resident set under continuous single-charge load, sampled every 30 s.
if [ "$memory_seconds" -gt 0 ]; then
  data=$(mktemp -d /tmp/coffer-mem.XXXXXX)
  start_server "$data"
  export COFFER_RUN=memory-$(date +%s) COFFER_BATCH=0
  echo "== memory: SQLite server under wrk (64 connections) for ${memory_seconds} s"
  echo "seconds rss_kib" >"$out/memory.txt"
  echo "0 $(rss_kb "$server")" >>"$out/memory.txt"
  wrk -t 2 -c 64 -d "${memory_seconds}s" -s scripts/http-load.lua "http://127.0.0.1:$port" >"$out/memory.wrk" 2>&1 &
  load=$!
  for t in $(seq 30 30 "$memory_seconds"); do sleep 30; echo "$t $(rss_kb "$server")" >>"$out/memory.txt"; done
  wait "$load" || true
  grep -E 'Requests/sec' "$out/memory.wrk"
  kill "$server"; wait "$server" 2>/dev/null || true
  "$bin" verify --data-dir "$data" | tail -n 1
  rm -rf "$data"
fi

python3 scripts/chart.py "$out/ledger-throughput.svg" "$pg_tps" \
  "PostgreSQL, 1,000 accounts=$out/pg-*c-1000a.txt" "SQLite, 1,000 accounts=$out/sqlite-*c-1000a.txt"
cp "$out/ledger-throughput.svg" docs/ledger-throughput.svg

echo
echo "## In-process ledger (coffer bench ledger), ${seconds} s per run"
echo
echo "| run | durable charges/s | p50 ms | p99 ms | ratio to pgbench tps |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| pgbench tpcb-like, 8 clients | $pg_tps tps | | | 1.00 |"
for f in $(ls "$out"/*.txt | sort -V); do
  name=$(basename "$f" .txt)
  line=$(grep '^RESULT' "$f") || continue
  ops=$(echo "$line" | grep -oE 'ops_per_s=[0-9.]+' | cut -d= -f2)
  p50=$(echo "$line" | grep -oE 'p50_ms=[0-9.]+' | cut -d= -f2)
  p99=$(echo "$line" | grep -oE 'p99_ms=[0-9.]+' | cut -d= -f2)
  ratio=$(awk -v a="$ops" -v b="$pg_tps" 'BEGIN { printf "%.2f", a / b }')
  echo "| $name | $ops | $p50 | $p99 | $ratio |"
done
echo
echo "## HTTP (wrk against coffer serve, one account, postpaid charges of 0.01)"
echo
echo "| run | charges/s | p50 | p99 | server RSS at end | ratio to pgbench tps |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for f in "$out"/*.http; do
  line=$(cat "$f")
  ops=$(echo "$line" | grep -oE 'ops_per_s=[0-9.]+' | cut -d= -f2)
  echo "| $(basename "$f" .http) | $ops | $(echo "$line" | grep -oE 'p50=[^ ]+' | cut -d= -f2) | $(echo "$line" | grep -oE 'p99=[^ ]+' | cut -d= -f2) | $(( $(echo "$line" | grep -oE 'rss_kb=[0-9]+' | cut -d= -f2) / 1024 )) MiB | $(awk -v a="$ops" -v b="$pg_tps" 'BEGIN { printf "%.2f", a / b }') |"
done
if [ -f "$out/memory.txt" ]; then
  echo
  echo "## Server memory under load (KiB resident, every 30 s)"
  echo
  echo '```'
  cat "$out/memory.txt"
  echo '```'
fi
echo
echo "## Profiles of pg-64c-1000a"
echo
echo '```'
sed -n '/^batch profile/,$p' "$out/pg-64c-1000a.txt" | grep -v '^verify'
[ -f "$out/cpu.txt" ] && cat "$out/cpu.txt"
echo '```'
if [ -f "$out/pg-statements.txt" ]; then echo; echo '```'; cat "$out/pg-statements.txt"; echo '```'; fi
if [ -f "$out/perf-top.txt" ]; then
  # Inclusive CPU of the coffer process by function, without the thread and event-loop frames that include everything.
  echo; echo '```'
  grep -vE 'start_thread|dispatch|swift_job_run|runJob|ThreadOpsPosix|setupThreadAndEventLoop|SelectableEventLoop.run\(\)|thunk for|partial apply' \
    "$out/perf-top.txt" | head -n 30
  echo '```'
fi
"$bin" verify --database "$base/coffer_bench"
