#!/usr/bin/env bash
# Benchmark: the same book read from Parquet and from CSV, and the DuckDB peer on the Parquet.
#
#   bench/parquet.sh [CUSTOMERS] [RUNS]     (default 1000000 customers, 3 runs each)
#
# Generates the book with shared/tools/gen_data.py (cached in bench/out/, as
# bench/movements.sh does), writes it as Parquet with `expansa export --data BOOK --format
# parquet` (timed), then runs `expansa movements --from 2024-01 --to 2024-12 --format json`
# on the CSV book and on the Parquet book, and the DuckDB peer on the Parquet book
# (bench/peer_duckdb_parquet.py) and on the CSV book; checks that expansa prints the same
# JSON from both and the peer the same months from both; prints median wall time and peak memory
# (bench/measure.py). Needs python3 with duckdb (pip install duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-1000000}
runs=${2:-3}
shared=${EXPANSA_SHARED:-../shared}
book=bench/out/book-$customers
parquet=bench/out/parquet-$customers
from=2024-01 to=2024-12
bin=${CARGO_TARGET_DIR:-target}/release/expansa

python3 -c "import duckdb" 2>/dev/null || { echo "the peer needs duckdb: pip install duckdb" >&2; exit 1; }
if [ ! -f "$book/subscriptions.csv" ]; then
  echo "generating $customers customers into $book ..." >&2
  python3 "$shared/tools/gen_data.py" "$book" "$customers" 36 42
fi
cargo build --release --quiet -p expansa-cli

measure() { # OUT RUNS CMD...: prints "wall peak_kb"
  local out=$1 n=$2
  shift 2
  python3 bench/measure.py "$n" "$out" -- "$@" | sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/'
}

read -r export_wall export_peak < <(measure bench/out/parquet-export.txt 1 \
  "$bin" export --data "$book" --out "$parquet" --format parquet --force)
csv_bytes=$(du -cb "$book"/*.csv | tail -1 | cut -f1)
parquet_bytes=$(du -cb "$parquet"/*.parquet | tail -1 | cut -f1)
read -r csv_wall csv_peak < <(measure bench/out/parquet-from-csv.json "$runs" \
  "$bin" movements --data "$book" --from $from --to $to --format json)
read -r pq_wall pq_peak < <(measure bench/out/parquet-from-parquet.json "$runs" \
  "$bin" movements --data "$parquet" --from $from --to $to --format json)
read -r peer_wall peer_peak < <(measure bench/out/parquet-peer.json "$runs" \
  python3 bench/peer_duckdb_parquet.py "$parquet" $from $to)
read -r peer_csv_wall peer_csv_peak < <(measure bench/out/parquet-peer-csv.json "$runs" \
  python3 "$shared/tools/peer_duckdb.py" "$book" $from $to)

python3 - "$customers" "$csv_bytes" "$parquet_bytes" "$(nproc)" "$export_wall" "$export_peak" \
  "$csv_wall" "$csv_peak" "$pq_wall" "$pq_peak" "$peer_wall" "$peer_peak" \
  "$peer_csv_wall" "$peer_csv_peak" <<'PY'
import json, sys
a = sys.argv[1:]
customers, csv_bytes, pq_bytes, cores = a[0], int(a[1]), int(a[2]), a[3]
rows = [("export CSV -> Parquet", a[4], a[5]), ("expansa, CSV", a[6], a[7]),
        ("expansa, Parquet", a[8], a[9]), ("DuckDB peer, Parquet", a[10], a[11]),
        ("DuckDB peer, CSV", a[12], a[13])]
ours_csv = open("bench/out/parquet-from-csv.json").read()
ours_pq = open("bench/out/parquet-from-parquet.json").read()
ours = json.loads(ours_pq)["months"]
def same_months(peer_file):
    peer = json.load(open(peer_file))["months"]
    return len(ours) == len(peer) and all(o[k] == v for o, p in zip(ours, peer) for k, v in p.items())
peer_same = same_months("bench/out/parquet-peer.json")
peer_csv_same = same_months("bench/out/parquet-peer-csv.json")
print(f"book: {customers} customers; {csv_bytes / 1e6:.0f} MB of CSV, {pq_bytes / 1e6:.0f} MB of Parquet; {cores} cores")
print(f"{'':24} {'wall (s)':>9} {'peak (MiB)':>11}")
for name, wall, peak in rows:
    print(f"{name:24} {float(wall):9.3f} {int(peak) / 1024:11.0f}")
print(f"Parquet / CSV: {float(a[8]) / float(a[6]):.2f} of the time, {int(a[9]) / int(a[7]):.2f} of the memory")
print(f"expansa on Parquet / the peer on Parquet: {float(a[8]) / float(a[10]):.2f} of the time, {int(a[9]) / int(a[11]):.2f} of the memory")
print(f"same JSON from CSV and Parquet: {'yes' if ours_csv == ours_pq else 'NO'}")
print(f"same months as the peer on Parquet: {'yes' if peer_same else 'NO'}")
print(f"same months as the peer on CSV: {'yes' if peer_csv_same else 'NO'}")
sys.exit(0 if ours_csv == ours_pq and peer_same and peer_csv_same else 1)
PY
