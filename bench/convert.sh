#!/usr/bin/env bash
# Benchmark: converting a Stripe-shaped export against importing the same book from the
# interchange CSV, in the same run.
#
#   bench/convert.sh [SUBSCRIPTIONS] [RUNS]    (default 1000000 subscriptions, 3 runs each)
#
# Generates the export with bench/stripe_export.py (cached in bench/out/), runs
# `expansa convert --from stripe` on it (read, convert, write the book, check it), then
# `expansa import --data` of the book it wrote into a new SQLite store (importing the
# equivalent book from the interchange CSV: one run), `expansa check` of that book (the
# importer reading it, nothing stored), and a conversion of a quarter of the export, to show
# whether memory grows with the file. Prints median wall time, peak memory and the ratios
# (issue 14's targets: convert <= 2x import; the whole export's peak about a quarter's).
set -euo pipefail
cd "$(dirname "$0")/.."
subs=${1:-1000000}
runs=${2:-3}
export_dir=bench/out/stripe-$subs
quarter_dir=bench/out/stripe-$((subs / 4))
book=bench/out/stripe-book-$subs
quarter_book=bench/out/stripe-book-$((subs / 4))
for d in "$export_dir:$subs" "$quarter_dir:$((subs / 4))"; do
  dir=${d%%:*} n=${d##*:}
  if [ ! -f "$dir/subscription_item_data.csv" ]; then
    echo "generating a Stripe export of $n subscriptions into $dir ..." >&2
    python3 bench/stripe_export.py "$dir" "$n" 42
  fi
done
cargo build --release --quiet
bin=target/release/expansa

read -r conv_wall conv_peak < <(python3 bench/measure.py "$runs" bench/out/convert.txt -- \
  "$bin" convert --from stripe --input "$export_dir" --out "$book" --force --currency USD --mrr-at 2025-12 |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')
read -r chk_wall chk_peak < <(python3 bench/measure.py "$runs" bench/out/check.txt -- \
  "$bin" check --data "$book" --currency USD |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
read -r imp_wall imp_peak < <(python3 bench/measure.py 1 bench/out/import.txt -- \
  "$bin" import --data "$book" --currency USD --db "sqlite:$store/bench.db" |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')
read -r q_wall q_peak < <(python3 bench/measure.py 1 bench/out/convert-quarter.txt -- \
  "$bin" convert --from stripe --input "$quarter_dir" --out "$quarter_book" --force --currency USD --mrr-at 2025-12 |
  sed -E 's/wall_s=([0-9.]+) peak_kb=([0-9]+)/\1 \2/')

rows=$(($(wc -l < "$export_dir/subscription_item_data.csv") - 1))
lines=$(($(wc -l < "$book/subscriptions.csv") - 1))
bytes=$(du -cb "$export_dir"/*.csv | tail -1 | cut -f1)
python3 - "$conv_wall" "$conv_peak" "$imp_wall" "$imp_peak" "$q_wall" "$q_peak" "$subs" "$rows" "$lines" "$bytes" "$(nproc)" "$chk_wall" "$chk_peak" <<'PY'
import sys
cw, cp, iw, ip, qw, qp = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
subs, items, lines, size, cores = sys.argv[7], sys.argv[8], sys.argv[9], int(sys.argv[10]), sys.argv[11]
kw, kp = float(sys.argv[12]), int(sys.argv[13])
print(f"export: {subs} subscriptions, {items} items, {size / 1e6:.0f} MB of CSV; book: {lines} lines; {cores} cores")
print(f"{'':28} {'wall (s)':>9} {'peak (MB)':>10}")
print(f"{'convert --from stripe':28} {cw:9.3f} {cp / 1024:10.0f}")
print(f"{'import the book (SQLite)':28} {iw:9.3f} {ip / 1024:10.0f}")
print(f"{'check the book (no store)':28} {kw:9.3f} {kp / 1024:10.0f}")
print(f"{'convert a quarter of it':28} {qw:9.3f} {qp / 1024:10.0f}")
print(f"time: converting takes {cw / iw:.2f}x the import's wall time; target <= 2")
print(f"memory: the whole export peaks at {cp / qp:.2f}x a quarter of it; target about 1")
sys.exit(0 if cw / iw <= 2 and cp / qp <= 1.25 else 1)
PY
