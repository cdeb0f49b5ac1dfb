#!/usr/bin/env bash
# Runs the README's curl walk-through exactly as written (the block between the walkthrough markers) against a freshly
# started `coffer serve --demo`, then `coffer verify`. Usage: scripts/walkthrough.sh [sqlite | postgres://…]
set -euo pipefail
cd "$(dirname "$0")/.."
database=${1:-sqlite}
bin=.build/debug/coffer
[ -x "$bin" ] || swift build --product coffer
data=$(mktemp -d /tmp/coffer-walkthrough.XXXXXX)
port=18080
while (echo >/dev/tcp/127.0.0.1/$port) >/dev/null 2>&1; do port=$((port + 1)); done
db_args=(--data-dir "$data")
[ "$database" != sqlite ] && db_args+=(--database "$database")

"$bin" serve --demo --port "$port" "${db_args[@]}" >"$data/serve.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q '^platform key:' "$data/serve.log" 2>/dev/null && break; sleep 0.2; done
grep -q '^platform key:' "$data/serve.log" || { cat "$data/serve.log"; echo "server did not start"; exit 1; }

export COFFER="http://127.0.0.1:$port"
export KEY=$(grep '^platform key:' "$data/serve.log" | cut -d' ' -f3)
echo "== walk-through on $database (server on port $port)"
awk '/<!-- walkthrough:start -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on && !/^```/' README.md >"$data/walkthrough.sh"
bash -euo pipefail "$data/walkthrough.sh"
"$bin" verify "${db_args[@]}"
echo "walkthrough: 1 passed, 0 failed"
