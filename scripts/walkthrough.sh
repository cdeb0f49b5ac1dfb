#!/usr/bin/env bash
# Runs the README's curl walk-through exactly as written (the block between the walkthrough markers) against a freshly
# started `coffer serve --demo`, then `coffer verify`. Usage: scripts/walkthrough.sh [sqlite | postgres://…]
set -euo pipefail
cd "$(dirname "$0")/.."
database=${1:-sqlite}
source scripts/demo-server.sh
trap stop_demo_server EXIT
start_demo_server "$database" 18080

export COFFER="http://127.0.0.1:$port"
export KEY=$key
echo "== walk-through on $database (server on port $port)"
awk '/<!-- walkthrough:start -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on && !/^```/' README.md >"$data/walkthrough.sh"
bash -euo pipefail "$data/walkthrough.sh"
"$bin" verify "${db_args[@]}"
echo "walkthrough: 1 passed, 0 failed"
