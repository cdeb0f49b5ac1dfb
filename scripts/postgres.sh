# Sourced by the test and benchmark scripts: a private PostgreSQL server for this run.
#   start_postgres  installs Debian's postgresql when missing, starts a throwaway cluster on a free loopback port and
#                   exports COFFER_TEST_POSTGRES_URL (and PGHOST/PGPORT/PGUSER for pgbench);
#   stop_postgres   stops it and removes its files.
# COFFER_PG_OPTIONS adds server options (the benchmark loads pg_stat_statements with it).
# max_connections 600 and max_locks_per_transaction 256: the tests migrate many schemas at once (a fresh migration
# creates and drops dozens of tables in one transaction; 64 locks per slot ran out of shared memory), each store with
# a pool of up to 16 connections.
# The cluster keeps PostgreSQL's durable defaults (fsync=on, synchronous_commit=on): benchmarks measure real commits.

pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_pg_user() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ -z "$(pg_bin_dir)" ] || [ ! -x "$(pg_bin_dir)/initdb" ]; then
    echo "== installing PostgreSQL (Debian package postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
  fi
  local bin; bin=$(pg_bin_dir)
  if [ "$(id -u)" = "0" ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres; fi
  COFFER_PG_DIR=$(mktemp -d /tmp/coffer-pg.XXXXXX)
  [ "$(id -u)" = "0" ] && chown postgres "$COFFER_PG_DIR"
  local port
  for port in $(seq 55432 55532); do
    (echo >/dev/tcp/127.0.0.1/$port) >/dev/null 2>&1 || break
  done
  as_pg_user "$bin/initdb" -D "$COFFER_PG_DIR/data" -U coffer --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg_user "$bin/pg_ctl" -D "$COFFER_PG_DIR/data" -l "$COFFER_PG_DIR/server.log" -w \
    -o "-p $port -k $COFFER_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=600 -c max_locks_per_transaction=256 ${COFFER_PG_OPTIONS:-}" start >/dev/null
  as_pg_user "$bin/createdb" -h 127.0.0.1 -p "$port" -U coffer coffer_test
  export COFFER_TEST_POSTGRES_URL="postgres://coffer@127.0.0.1:$port/coffer_test"
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=coffer PGDATABASE=coffer_test
  export COFFER_PG_DIR COFFER_PG_BIN=$bin
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') started on 127.0.0.1:$port"
}

stop_postgres() {
  if [ -n "${COFFER_PG_DIR:-}" ] && [ -d "$COFFER_PG_DIR/data" ]; then
    as_pg_user "$COFFER_PG_BIN/pg_ctl" -D "$COFFER_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$COFFER_PG_DIR"
    echo "== PostgreSQL stopped"
  fi
}
