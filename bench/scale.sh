#!/usr/bin/env bash
# Benchmark at scale (issue 18 §4): one book end to end from CSV and from Parquet, against
# the DuckDB peer in the same run.
#
#   bench/scale.sh [CUSTOMERS] [RUNS]     (default 10000000 customers, 1 run each)
#
# Generates the book with shared/tools/gen_data.py if missing (bench/out/book-CUSTOMERS, as
# bench/movements.sh does) and writes its Parquet copy (bench/out/parquet-CUSTOMERS) with
# `expansa export --format parquet` (timed, once). Then it times, with bench/measure.py
# (median wall time, peak RSS):
#   expansa movements --from 2024-01 --to 2024-12 --format json   on the CSV and the Parquet book
#   expansa kpis      --from 2024-01 --to 2024-12 --format json   on the CSV and the Parquet book
#   the DuckDB peer on the Parquet book (bench/peer_duckdb_parquet.py) and on the CSV book
# checks that expansa prints the same JSON from CSV and Parquet and the peer the same months,
# and prints a table (also written to bench/out/scale-CUSTOMERS.txt).
# SCALE_KPIS=0 skips the kpis runs. Needs python3 with duckdb and pyarrow (pip install duckdb
# pyarrow).
# The Spark job at 1 and 2 workers: bench/scale_spark.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-10000000}
runs=${2:-1}
shared=${EXPANSA_SHARED:-../shared}
book=bench/out/book-$customers
parquet=bench/out/parquet-$customers
from=2024-01 to=2024-12
bin=${CARGO_TARGET_DIR:-target}/release/expansa
out=bench/out/scale-$customers

python3 -c "import duckdb" 2>/dev/null || { echo "the peer needs duckdb: pip install duckdb" >&2; exit 1; }
if [ ! -f "$book/subscriptions.csv" ]; then
  echo "generating $customers customers into $book ..." >&2
  python3 "$shared/tools/gen_data.py" "$book.part" "$customers" 36 42
  mv "$book.part" "$book"
fi
cargo build --release --quiet -p expansa-cli

measure() { # OUT RUNS CMD...: prints "wall peak_kb"
  local file=$1 n=$2
  shift 2
  python3 bench/measure.py "$n" "$file" -- "$@" | sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/'
}

export_name="export CSV -> Parquet"
echo "  $export_name ..." >&2
read -r export_wall export_peak < <(measure "$out-export.txt" 1 \
  "$bin" export --data "$book" --out "$parquet" --format parquet --force)
lines=$(($(wc -l < "$book/subscriptions.csv") - 1))
csv_bytes=$(du -cb "$book"/*.csv | tail -1 | cut -f1)
parquet_bytes=$(du -cb "$parquet"/*.parquet | tail -1 | cut -f1)

rows=()
run() { # NAME OUTFILE CMD...
  local name=$1 file=$2 wall peak
  shift 2
  echo "  $name ..." >&2
  read -r wall peak < <(measure "$file" "$runs" "$@")
  rows+=("$name|$wall|$peak")
}
run "expansa movements, CSV" "$out-mv-csv.json" \
  "$bin" movements --data "$book" --from $from --to $to --format json
run "expansa movements, Parquet" "$out-mv-parquet.json" \
  "$bin" movements --data "$parquet" --from $from --to $to --format json
run "DuckDB peer, Parquet" "$out-peer-parquet.json" \
  python3 bench/peer_duckdb_parquet.py "$parquet" $from $to
run "DuckDB peer, CSV" "$out-peer-csv.json" \
  python3 "$shared/tools/peer_duckdb.py" "$book" $from $to
if [ "${SCALE_KPIS:-1}" != 0 ]; then
  run "expansa kpis, CSV" "$out-kpis-csv.json" \
    "$bin" kpis --data "$book" --from $from --to $to --format json
  run "expansa kpis, Parquet" "$out-kpis-parquet.json" \
    "$bin" kpis --data "$parquet" --from $from --to $to --format json
fi

python3 - "$out" "$customers" "$lines" "$csv_bytes" "$parquet_bytes" "$(nproc)" "$runs" \
  "$export_name|$export_wall|$export_peak" "${rows[@]}" <<'PY' | tee "$out.txt"
import json, os, sys
out, customers, lines, csv_bytes, pq_bytes, cores, runs = sys.argv[1:8]
rows = [r.split("|") for r in sys.argv[8:]]
print(f"book: {int(customers):,} customers, {int(lines):,} lines; {int(csv_bytes) / 1e6:.0f} MB of CSV, "
      f"{int(pq_bytes) / 1e6:.0f} MB of Parquet; {cores} cores; median of {runs} run(s)")
print(f"{'':28} {'wall (s)':>9} {'peak (MiB)':>11} {'µs/customer':>12}")
for name, wall, peak in rows:
    if wall == "-":
        continue
    us = float(wall) / int(customers) * 1e6
    print(f"{name:28} {float(wall):9.3f} {int(peak) / 1024:11.0f} {us:12.3f}")
ok = True
mv_csv, mv_pq = open(f"{out}-mv-csv.json").read(), open(f"{out}-mv-parquet.json").read()
same = mv_csv == mv_pq
ok &= same
print(f"movements: same JSON from CSV and Parquet: {'yes' if same else 'NO'}")
ours = json.loads(mv_pq)["months"]
for peer_file in (f"{out}-peer-parquet.json", f"{out}-peer-csv.json"):
    peer = json.load(open(peer_file))["months"]
    agree = len(ours) == len(peer) and all(o[k] == v for o, p in zip(ours, peer) for k, v in p.items())
    ok &= agree
    print(f"movements: same months as {os.path.basename(peer_file)}: {'yes' if agree else 'NO'}")
if os.path.exists(f"{out}-kpis-csv.json") and any(r[0].startswith("expansa kpis") for r in rows):
    same = open(f"{out}-kpis-csv.json").read() == open(f"{out}-kpis-parquet.json").read()
    ok &= same
    print(f"kpis: same JSON from CSV and Parquet: {'yes' if same else 'NO'}")
# Every expansa row, the export ("export CSV -> Parquet") included.
peak_gib = max(int(p) for n, w, p in rows if not n.startswith("DuckDB") and p != "-") / 2**20
print(f"expansa's largest peak: {peak_gib:.2f} GiB (target <= 4 GiB): {'met' if peak_gib <= 4 else 'NOT met'}")
sys.exit(0 if ok else 1)
PY
