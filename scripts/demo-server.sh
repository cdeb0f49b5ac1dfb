# Sourced by scripts that test a started server: `start_demo_server sqlite|postgres://… [first port]` starts
# `coffer serve --demo` (the debug build) on a free loopback port with a fresh data directory and sets
# server, port, data, db_args and key (the platform key); `stop_demo_server` stops it and removes the directory.
start_demo_server() {
  local database=$1
  bin=.build/debug/coffer
  [ -x "$bin" ] || swift build --product coffer
  data=$(mktemp -d /tmp/coffer-server.XXXXXX)
  port=${2:-18080}
  while (echo >/dev/tcp/127.0.0.1/$port) >/dev/null 2>&1; do port=$((port + 1)); done
  db_args=(--data-dir "$data")
  [ "$database" != sqlite ] && db_args+=(--database "$database")
  "$bin" serve --demo --port "$port" --log-format json "${db_args[@]}" >"$data/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do grep -q '^platform key:' "$data/serve.log" 2>/dev/null && break; sleep 0.2; done
  grep -q '^platform key:' "$data/serve.log" || { cat "$data/serve.log"; echo "server did not start"; return 1; }
  key=$(grep '^platform key:' "$data/serve.log" | cut -d' ' -f3)
}

stop_demo_server() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  # The test command greps every server's log for secrets afterwards (scripts/check-logs.py).
  if [ -n "${COFFER_LOG_DIR:-}" ]; then mkdir -p "$COFFER_LOG_DIR" && cp "$data/serve.log" "$COFFER_LOG_DIR/serve-$(basename "$data").log"; fi
  rm -rf "$data"
}
