#!/usr/bin/env bash
# Load test of `expansa serve` on loopback: a generated book of CUSTOMERS customers (default
# 100,000) in a store (SQLite by default; pass a postgres:// URL as DB), 200 concurrent
# clients for 60 s reading the movement report and writing lines (some twice under one
# Idempotency-Key); then every acknowledged line is checked (nothing lost or duplicated).
# Prints latency percentiles (crates/api/examples/load.rs).
# Usage: bench/load.sh [CUSTOMERS] [SECONDS] [CLIENTS] [DB]
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-100000}
seconds=${2:-60}
clients=${3:-200}
work=$(mktemp -d)
db=${4:-sqlite:$work/load.db}
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
# Two builds: `--example` would select only examples in every package named, not the binary.
cargo build --release -q -p expansa-cli
cargo build --release -q -p expansa-api --example load
python3 ../shared/tools/gen_data.py "$work/book" "$customers" >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/expansa
start=$EPOCHREALTIME
$bin import --data "$work/book" --db "$db" >/dev/null
end=$EPOCHREALTIME
echo "import of $(($(wc -l < "$work/book/subscriptions.csv") - 1)) lines: $(python3 -c "print(round($end - $start, 2))") s"
key=$($bin keys create --name load --db "$db" | head -1)
# Every client comes from 127.0.0.1: lift the per-client limits (docs/api.md, "Limits").
$bin serve --db "$db" --bind 127.0.0.1:0 --rate-limit 1000000 --rate-burst 1000000 \
  --max-connections 4096 --max-connections-per-client 4096 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 50); do grep -q "serving http" "$work/serve.log" && break; sleep 0.2; done
base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
${CARGO_TARGET_DIR:-target}/release/examples/load "$base" "$key" "$seconds" "$clients" "$customers" 2024-01 2024-12
