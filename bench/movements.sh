#!/usr/bin/env bash
# Benchmark: expansa vs the DuckDB peer on a generated book, in the same run.
#
#   bench/movements.sh [CUSTOMERS] [RUNS]     (default 1000000 customers, 3 runs each)
#
# Generates the book with shared/tools/gen_data.py (cached in bench/out/), runs
# `expansa movements --format json` (read CSV, compute, print JSON) and the peer on it,
# checks that both print the same months, and prints median wall time, peak memory and ratios.
# Needs python3 with duckdb (pip install duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-1000000}
runs=${2:-3}
shared=${EXPANSA_SHARED:-../shared}
book=bench/out/book-$customers
from=2023-01 to=2025-12

python3 -c "import duckdb" 2>/dev/null || { echo "the peer needs duckdb: pip install duckdb" >&2; exit 1; }
if [ ! -f "$book/subscriptions.csv" ]; then
  echo "generating $customers customers into $book ..." >&2
  python3 "$shared/tools/gen_data.py" "$book" "$customers" 36 42
fi
cargo build --release --quiet
lines=$(($(wc -l < "$book/subscriptions.csv") - 1))
bytes=$(du -cb "$book"/*.csv | tail -1 | cut -f1)

read -r ours_wall ours_peak < <(python3 bench/measure.py "$runs" bench/out/expansa.json -- \
  target/release/expansa movements --data "$book" --from $from --to $to --format json |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')
read -r peer_wall peer_peak < <(python3 bench/measure.py "$runs" bench/out/peer.json -- \
  python3 "$shared/tools/peer_duckdb.py" "$book" $from $to |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')

python3 - "$ours_wall" "$ours_peak" "$peer_wall" "$peer_peak" "$customers" "$lines" "$bytes" "$(nproc)" <<'PY'
import json, sys
ow, op, pw, pp = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
customers, lines, size, cores = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
ours = json.load(open("bench/out/expansa.json"))["months"]
peer = json.load(open("bench/out/peer.json"))["months"]
same = len(ours) == len(peer) and all(o[k] == v for o, p in zip(ours, peer) for k, v in p.items())
print(f"book: {customers} customers, {lines} lines, {size / 1e6:.0f} MB of CSV; {cores} cores")
print(f"{'':10} {'wall (s)':>9} {'peak (MB)':>10}")
print(f"{'expansa':10} {ow:9.3f} {op / 1024:10.0f}")
print(f"{'duckdb':10} {pw:9.3f} {pp / 1024:10.0f}")
print(f"time: expansa takes {ow / pw:.2f} of the peer's wall time ({pw / ow:.1f}x faster); target <= 0.33")
print(f"memory: expansa peaks at {op / pp:.2f} of the peer's; target <= 0.50")
print(f"same months as the peer: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
PY
