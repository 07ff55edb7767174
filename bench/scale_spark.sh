#!/usr/bin/env bash
# Benchmark at scale (issue 18 §4): the Spark job on a generated Parquet book at 1 and 2 workers.
#
#   bench/scale_spark.sh [CUSTOMERS] [WORKERS...]    (default 1000000 customers; 1 2 workers)
#
# The book and its Parquet copy as bench/scale.sh makes them (bench/out/book-CUSTOMERS,
# bench/out/parquet-CUSTOMERS; made here if missing, the same way). For each worker count, runs `python -m expansa.spark
# movements --from 2024-01 --to 2024-12` once on `local-cluster[WORKERS,1,EXECUTOR_MB]` (a
# master, WORKERS executor JVMs of one core each and their Python workers on this machine)
# through bench/spark_run.py: wall time, peak RSS of the driver and of each executor (JVM and
# Python workers), and from the event log each stage's time, shuffle and the bytes sent to
# and from the Python workers. Checks the JSON is byte for byte `expansa movements --format
# json`'s. Results: bench/out/spark-CUSTOMERS-wWORKERS.json and bench/out/spark-CUSTOMERS.txt.
#
# SPARK_PYTHON: the interpreter with pyspark and the expansa wheel (default python3);
# EXECUTOR_MB: each executor's memory (default 2048). Needs Java 17.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-1000000}
shift || true
workers=(1 2)
[ $# -eq 0 ] || workers=("$@")
shared=${EXPANSA_SHARED:-../shared}
python=${SPARK_PYTHON:-python3}
mb=${EXECUTOR_MB:-2048}
book=bench/out/book-$customers
parquet=bench/out/parquet-$customers
from=2024-01 to=2024-12
bin=${CARGO_TARGET_DIR:-target}/release/expansa
out=bench/out/spark-$customers

"$python" -c "import pyspark, expansa.spark" || { echo "$python needs pyspark and the expansa wheel" >&2; exit 1; }
if [ ! -f "$book/subscriptions.csv" ]; then
  echo "generating $customers customers into $book ..." >&2
  python3 "$shared/tools/gen_data.py" "$book.part" "$customers" 36 42
  mv "$book.part" "$book"
fi
cargo build --release --quiet -p expansa-cli
if [ ! -f "$parquet/subscriptions.parquet" ]; then
  "$bin" export --data "$book" --out "$parquet" --format parquet --force >/dev/null
fi
"$bin" movements --data "$parquet" --from $from --to $to --format json > "$out-cli.json"

for w in "${workers[@]}"; do
  echo "  spark, $w worker(s) ..." >&2
  rm -rf "$out-w$w-events"
  "$python" bench/spark_run.py "$python" "$parquet" "$w" "$mb" "$out-w$w-report.json" \
    "$out-w$w-events" movements > "$out-w$w.json"
done

python3 - "$out" "$customers" "$(nproc)" "${workers[@]}" <<'PY' | tee "$out.txt"
import json, sys
out, customers, cores, workers = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
cli = open(f"{out}-cli.json").read()
print(f"book: {customers:,} customers (Parquet); {cores} cores; one run each")
ok = True
for w in workers:
    r = json.load(open(f"{out}-w{w}.json"))
    same = open(f"{out}-w{w}-report.json").read() == cli
    ok &= same
    ex = r["executors"]
    print(f"\n{w} worker(s), executors of {r['executor_mb']} MB: wall {r['wall_s']:.1f} s "
          f"({r['wall_s'] / customers * 1e6:.1f} µs/customer), same JSON as the CLI: {'yes' if same else 'NO'}")
    print(f"  driver (python + JVM with master and workers): peak {r['driver_peak_kb'] / 1024:.0f} MiB;"
          f" everything at once: {r['all_peak_kb'] / 1024:.0f} MiB")
    for i, e in enumerate(ex):
        print(f"  executor {i}: JVM {e['jvm'] / 1024:.0f} MiB, Python workers {e['python'] / 1024:.0f} MiB"
              f" ({e['python_processes']} processes), together {e['total'] / 1024:.0f} MiB")
    print(f"  {'stage':>5} {'name':24} {'tasks':>5} {'wall s':>7} {'task s':>7} {'gc s':>5} "
          f"{'shuffle w MB':>12} {'shuffle r MB':>12} {'to python MB':>12} {'from python MB':>14} {'python s':>8}")
    for s in r["stages"]:
        to_py = sum(v for k, v in s.items() if "sent to python" in k.lower())
        from_py = sum(v for k, v in s.items() if "returned from python" in k.lower())
        py_s = sum(v for k, v in s.items() if "execute python code" in k.lower()) / 1000
        print(f"  {s.get('stage', '?'):>5} {s.get('name', '?')[:24]:24} {s.get('tasks', 0):>5} "
              f"{s.get('wall_s', 0):7.1f} {s.get('run_s', 0):7.1f} {s.get('gc_s', 0):5.1f} "
              f"{s.get('shuffle_write_bytes', 0) / 1e6:12.1f} {s.get('shuffle_read_bytes', 0) / 1e6:12.1f} "
              f"{to_py / 1e6:12.1f} {from_py / 1e6:14.1f} {py_s:8.1f}")
sys.exit(0 if ok else 1)
PY
