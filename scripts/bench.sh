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

hz=$(getconf CLK_TCK)
# CPU of the whole machine (user+nice+system+irq+softirq+steal ticks, /proc/stat). PostgreSQL's share of a run is the
# machine's CPU over the window less coffer's own (which coffer measures itself): summing live postgres processes loses
# the ticks of backends that exit during the window. The machine is otherwise idle while the benchmark runs.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
wait_for_line() { for _ in $(seq 1 3000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# The SQL floor: what PostgreSQL itself can do for the very rows a batch of Coffer's charges writes — a charge row, its
# ledger_entries row and the wallet update, 64 charges per transaction, in Coffer's own schema (made by `coffer migrate`,
# CHECKs and indexes included) — with no Coffer in between. Coffer ÷ floor is how much of the database's limit it reaches.
echo "== SQL floor: Coffer's rows for 64 charges per transaction, pgbench custom script, 8 clients, ${seconds} s"
psql_admin "DROP DATABASE IF EXISTS coffer_floor" >/dev/null
psql_admin "CREATE DATABASE coffer_floor" >/dev/null
"$bin" migrate --database "$base/coffer_floor" >/dev/null
psql "$base/coffer_floor" -v ON_ERROR_STOP=1 -q <<'SQL'
CREATE SEQUENCE floor_ids;
INSERT INTO accounts (id, type, entity_name, contact_email, currency, time_zone, created_at)
  SELECT 'acc_floor_' || g, 'personal', 'floor', 'floor@example.com', 'CNY', 'Asia/Shanghai', 1 FROM generate_series(0, 999) g;
INSERT INTO wallets (account_id, currency, cash_minor, updated_at) SELECT id, 'CNY', 100000000000, 1 FROM accounts;
SQL
# One transaction per batch of 64 distinct accounts (a random block of the 1,000), in Coffer's order: lock the wallets in
# account order, insert the charges and their journal rows, update the wallets, commit.
cat >"$out/floor.sql" <<'SQL'
\set start random(0, 999)
BEGIN;
SELECT count(*) FROM (SELECT account_id FROM wallets WHERE account_id IN (
  SELECT 'acc_floor_' || ((:start + g) % 1000) FROM generate_series(0, 63) g) ORDER BY account_id FOR UPDATE) locked;
WITH charged AS (
  INSERT INTO charges (account_id, id, mode, amount_minor, cash_minor, gift_minor, created_at)
  SELECT 'acc_floor_' || ((:start + g) % 1000), 'chg_' || nextval('floor_ids'), 'prepaid', 1, 1, 0, 1
  FROM generate_series(0, 63) g RETURNING account_id, id
)
INSERT INTO ledger_entries (account_id, id, entry_id, seq, kind, type, actor, amount_minor, balance_after_minor,
  available_after_minor, cash_minor, gift_minor, share_minor, frozen_minor, advance_minor, channel_clearing_minor,
  revenue_minor, gift_expense_minor, adjustment_minor, hold_control_minor, related_type, related_id, created_at,
  idempotency_key, request_hash, wallet_cash_minor, wallet_gift_minor, wallet_share_minor, wallet_frozen_minor,
  wallet_advance_minor)
SELECT account_id, 'txn_' || substr(id, 5), 'ent_' || substr(id, 5), 0, 'charge', 'deduction', 'system:floor', -1, 0, 0,
  -1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'charge', id, 1, 'floor-' || id, repeat('0', 64), 0, 0, 0, 0, 0
FROM charged;
UPDATE wallets SET cash_minor = cash_minor - 1, updated_at = 1 WHERE account_id IN (
  SELECT 'acc_floor_' || ((:start + g) % 1000) FROM generate_series(0, 63) g);
COMMIT;
SQL
pgbench -n -f "$out/floor.sql" -c 8 -j 2 -T "$seconds" "$base/coffer_floor" >"$out/floor.log" 2>&1 &
floor_bench=$!
# The machine's CPU over the middle of the run (pgbench's own client CPU included: a few per cent).
sleep 1; f0=$(machine_ticks); sleep $((seconds > 3 ? seconds - 2 : 1)); f1=$(machine_ticks)
wait "$floor_bench"
floor_tps=$(grep -oE 'tps = [0-9.]+' "$out/floor.log" | head -n 1 | awk '{printf "%.0f", $3}')
floor_rows=$(awk -v t="$floor_tps" 'BEGIN { printf "%.0f", t * 64 }')
floor_pg_us=$(awk -v d=$((f1 - f0)) -v hz="$hz" -v r="$floor_rows" -v s=$((seconds > 3 ? seconds - 2 : 1)) \
  'BEGIN { printf "%.0f", d / hz / (r * s) * 1e6 }')
echo "floor: $floor_tps transactions/s = $floor_rows charges/s, PostgreSQL CPU $floor_pg_us us per charge"
psql "$base/coffer_floor" -qAt -c "SELECT 'floor check: ' || count(*) || ' charges, ' || sum(cash_minor) || ' posted' FROM ledger_entries"

run() { # name, database, clients, accounts — prints the run and adds PostgreSQL's CPU per charge over the measured window
  echo "== coffer bench ledger: $1"
  "$bin" bench ledger --database "$2" --clients "$3" --accounts "$4" --seconds "$seconds" >"$out/$1.txt" 2>"$out/$1.err" &
  local bench=$! p0 p1
  wait_for_line "$out/$1.err" '^measuring'; p0=$(machine_ticks)
  wait_for_line "$out/$1.err" '^measured'; p1=$(machine_ticks)
  wait "$bench"
  local ops coffer_us; ops=$(grep -oE 'ops_per_s=[0-9]+' "$out/$1.txt" | cut -d= -f2)
  coffer_us=$(grep -oE 'coffer_cpu_us=[0-9]+' "$out/$1.txt" | cut -d= -f2)
  if [[ "$2" == sqlite:* ]]; then
    echo "PGCPU pg_cpu_us=-" >>"$out/$1.txt"
  else
    awk -v d=$((p1 - p0)) -v hz="$hz" -v o="$ops" -v s="$seconds" -v c="$coffer_us" \
      'BEGIN { v = d / hz / (o * s) * 1e6 - c; printf "PGCPU pg_cpu_us=%.0f\n", v < 0 ? 0 : v }' >>"$out/$1.txt"
  fi
  grep -E 'throughput|latency|CPU|verify' "$out/$1.txt"
}

# The headline run, then the same run again under perf for a CPU profile of the coffer process (perf adds to coffer's CPU, so
# the table's figures come from the clean run); PostgreSQL's per-statement times (pg_stat_statements) cover both.
[ "$stats" = yes ] && psql "$base/coffer_bench" -qAt -c 'SELECT pg_stat_statements_reset()' >/dev/null
run pg-64c-1000a "$base/coffer_bench" 64 1000
if command -v perf >/dev/null && perf record -q -o /dev/null -- true >/dev/null 2>&1; then
  # perf attaches once the accounts are funded (the command says "measuring" on stderr), so that set-up, with its bcrypt
  # password hashes, stays out of the profile.
  echo "== profile: pg-64c-1000a under perf"
  "$bin" bench ledger --database "$base/coffer_bench" --clients 64 --accounts 1000 --seconds "$seconds" \
    >"$out/profile.log" 2>"$out/profile.err" &
  bench=$!
  wait_for_line "$out/profile.err" '^measuring'
  window=$((seconds > 3 ? seconds - 2 : 1))
  perf record -q -F 499 -g -p "$bench" -o "$out/perf.data" -- sleep "$window" >/dev/null 2>&1 || true
  wait "$bench"
  perf report -i "$out/perf.data" --children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/ +- +- +$//' |
    swift demangle --simplified | cut -c1-160 | head -n 80 >"$out/perf-top.txt" || true
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
# Order payments with a coupon (W7, C8): each request pays one order, part by a multi-use cash coupon, the rest frozen.
# Beside the single charge of the same run: a payment should cost no more than three charges.
payments_run() { # name, database args...
  local name=$1; shift
  local data; data=$(mktemp -d /tmp/coffer-http.XXXXXX)
  start_server "$data" "$@"
  python3 scripts/bench-payments.py "http://127.0.0.1:$port" "$COFFER_KEY" "$data/payments.txt" --orders "${COFFER_BENCH_ORDERS:-40000}"
  echo "== HTTP: $name (wrk, 64 connections, one order and one coupon per payment)"
  COFFER_PAYMENTS="$data/payments.txt" COFFER_THREADS=2 wrk -t 2 -c 64 -d "${seconds}s" --latency -s scripts/payment-load.lua \
    "http://127.0.0.1:$port" >"$out/$name.wrk" 2>&1 || true
  grep -E 'Requests/sec|50%|99%|Non-2xx' "$out/$name.wrk" | head -5
  kill "$server"; wait "$server" 2>/dev/null || true
  echo "RESULT payments_per_s=$(awk '/Requests\/sec/ {print $2}' "$out/$name.wrk") p99=$(awk '$1 == "99%" {print $2}' "$out/$name.wrk")" >"$out/$name.http"
  "$bin" verify --data-dir "$data" "$@" | tail -n 1
  rm -rf "$data"
}
payments_run http-pg-payments --database "$base/coffer_bench"
payments_run http-sqlite-payments
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

# Postpaid billing (B1, B2): usage through HTTP beside PostgreSQL's COPY of the same rows; one settlement run of 1,000,000
# records over 10,000 resources and 1,000 accounts beside a GROUP BY of the same rows, with the run's peak memory (the
# records are loaded by a separate process, then CHECKPOINT and ANALYZE, as after any bulk load).
if [ "${COFFER_BENCH_BILLING:-1}" = 1 ]; then
  psql_admin "DROP DATABASE IF EXISTS coffer_usage" >/dev/null
  psql_admin "CREATE DATABASE coffer_usage" >/dev/null
  echo "== usage ingestion: 1,000,000 records through HTTP in requests of 10,000, 4 clients, beside psql \\copy"
  python3 scripts/bench-usage.py "$bin" --database "$base/coffer_usage" --records 1000000 | tee "$out/usage.txt"
  psql_admin "DROP DATABASE IF EXISTS coffer_settle" >/dev/null
  psql_admin "CREATE DATABASE coffer_settle" >/dev/null
  echo "== settlement: 1,000,000 records, 10,000 resources, 1,000 accounts, one daily cycle each"
  "$bin" bench settlement --database "$base/coffer_settle" --phase setup | tee "$out/settle-setup.txt"
  psql "$base/coffer_settle" -qAt -c 'CHECKPOINT' -c 'ANALYZE' >/dev/null
  "$bin" bench settlement --database "$base/coffer_settle" --phase run | tee "$out/settle.txt"
  "$bin" verify --database "$base/coffer_settle" | tail -n 1
fi

python3 scripts/chart.py "$out/ledger-throughput.svg" "$pg_tps" \
  "PostgreSQL, 1,000 accounts=$out/pg-*c-1000a.txt" "SQLite, 1,000 accounts=$out/sqlite-*c-1000a.txt"
cp "$out/ledger-throughput.svg" docs/ledger-throughput.svg

echo
echo "## In-process ledger (coffer bench ledger), ${seconds} s per run"
echo
echo "| run | durable charges/s | p50 ms | p99 ms | coffer CPU µs/charge | PostgreSQL CPU µs/charge | ÷ pgbench tps | ÷ SQL floor |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "| pgbench tpcb-like, 8 clients | $pg_tps tps | | | | | 1.00 | |"
echo "| SQL floor (Coffer's rows, 64 per transaction, 8 clients) | $floor_rows | | | — | $floor_pg_us | $(awk -v a="$floor_rows" -v b="$pg_tps" 'BEGIN { printf "%.2f", a / b }') | 1.00 |"
for f in $(ls "$out"/*.txt | sort -V); do
  name=$(basename "$f" .txt)
  line=$(grep '^RESULT' "$f") || continue
  ops=$(echo "$line" | grep -oE 'ops_per_s=[0-9.]+' | cut -d= -f2)
  p50=$(echo "$line" | grep -oE 'p50_ms=[0-9.]+' | cut -d= -f2)
  p99=$(echo "$line" | grep -oE 'p99_ms=[0-9.]+' | cut -d= -f2)
  ccpu=$(echo "$line" | grep -oE 'coffer_cpu_us=[0-9.]+' | cut -d= -f2)
  pcpu=$(grep -oE 'pg_cpu_us=[0-9.-]+' "$f" | cut -d= -f2)
  ratio=$(awk -v a="$ops" -v b="$pg_tps" 'BEGIN { printf "%.2f", a / b }')
  floor_ratio=$(awk -v a="$ops" -v b="$floor_rows" 'BEGIN { printf "%.2f", a / b }')
  [[ "$name" == sqlite* ]] && floor_ratio=—
  echo "| $name | $ops | $p50 | $p99 | $ccpu | $pcpu | $ratio | $floor_ratio |"
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
echo '```'
if [ -f "$out/pg-statements.txt" ]; then echo; echo '```'; cat "$out/pg-statements.txt"; echo '```'; fi
if [ -f "$out/perf-top.txt" ]; then
  # Inclusive CPU of the coffer process by function, without the thread and event-loop frames that include everything.
  echo; echo '```'
  grep -vE 'start_thread|dispatch|swift_job_run|runJob|ThreadOpsPosix|setupThreadAndEventLoop|SelectableEventLoop.run\(\)|thunk for|partial apply' \
    "$out/perf-top.txt" | head -n 30
  echo '```'
fi
if [ -f "$out/settle.txt" ]; then
  echo
  echo "## Postpaid billing"
  echo
  echo '```'
  grep -E '^(http|copy|RESULT)' "$out/usage.txt"
  grep -E '^(floor|settled|peak|RESULT)' "$out/settle.txt"
  echo '```'
fi
"$bin" verify --database "$base/coffer_bench"
