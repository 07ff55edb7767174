#!/usr/bin/env bash
# Write benchmark (issue 16, "Writes that keep up"): `expansa serve` on loopback over a store
# loaded with a generated book of CUSTOMERS customers (default 1,000,000) and its contracts;
# CLIENTS writers (default 200) for SECONDS (default 60), open loop at RATE writes/s in all
# (default 600): new lines and applied amendments, four to one, some sent twice under their
# Idempotency-Key, while four readers read the movement report, 50 reads a second in all
# (crates/api/examples/writes.rs).
# Run on SQLite and on PostgreSQL (scripts/postgres.sh), each with --write-validation changed
# (the store's write path) and then whole (every write re-validates the whole book: the write
# path before incremental validation, the yardstick). After each run: nothing lost or
# duplicated (acknowledged = stored = events), and `expansa export --as-of` of a few written
# events holds the write at its event and not at the one before. Ends with the table comparing
# changed and whole on each database, saved to bench/out/writes.txt, and the targets: SQLite
# changed p95 <= 50 ms and >= 500 writes/s, reads p95 during the writes as before them.
# Usage: bench/writes.sh [CUSTOMERS] [SECONDS] [CLIENTS] [RATE]
# WRITES_DATABASES="sqlite postgres" (default) picks the databases; WRITES_MODES="changed
# whole" the validations; WRITES_READERS=0 leaves the readers out (the writes alone);
# WRITES_READ_RATE their reads a second in all (0: each reads again as soon as answered). A request unanswered after 30 s (the server's --request-timeout) is
# an error of the run, not a hang.
set -euo pipefail
cd "$(dirname "$0")/.."
customers=${1:-1000000}
seconds=${2:-60}
clients=${3:-200}
rate=${4:-600}
databases=${WRITES_DATABASES:-sqlite postgres}
modes=${WRITES_MODES:-changed whole}
shared=${EXPANSA_SHARED:-../shared}
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/expansa
book=bench/out/book-$customers
contracted=bench/out/writes-book-$customers
work=$(mktemp -d)
server=
pgdb=
admin=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$pgdb" ] && psql -q "$admin" -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

# Two builds: `--example` would select only examples in every package named, not the binary.
cargo build --release -q -p expansa-cli
cargo build --release -q -p expansa-api --example writes
if [ ! -f "$book/subscriptions.csv" ]; then
  echo "generating $customers customers into $book ..." >&2
  python3 "$shared/tools/gen_data.py" "$book" "$customers" 36 42 >/dev/null
fi
# The book with a contracts.csv: gen_data's lines name contracts (k...) it does not list. Each
# contract: its customer, from the earliest start of its lines to 2028-12-31, so that
# amendments on days of 2026 fall inside the term (an evergreen contract refuses a quantity
# amendment). amendable.csv (beside it, not in it): a contract and a product it holds with no
# end, what the amendments change.
if [ ! -f "$contracted/contracts.csv" ] || [ "$book/subscriptions.csv" -nt "$contracted/contracts.csv" ]; then
  echo "writing $contracted (the book and its contracts) ..." >&2
  rm -rf "$contracted" && mkdir -p "$contracted"
  for f in "$book"/*.csv; do ln "$f" "$contracted/" 2>/dev/null || cp "$f" "$contracted/"; done
  python3 - "$contracted" <<'PY'
import csv, os, sys
out = sys.argv[1]
contracts, amendable = {}, {}
with open(os.path.join(out, "subscriptions.csv"), newline="") as f:
    for r in csv.DictReader(f):
        k = r["contract_id"]
        if not k:
            continue
        customer, start = contracts.get(k, (r["customer_id"], r["start_date"]))
        contracts[k] = (customer, min(start, r["start_date"]))
        if not r["end_date"]:
            amendable.setdefault(k, r["product_id"])
with open(os.path.join(out, "contracts.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["id", "customer_id", "start_date", "end_date"])
    for k, (customer, start) in sorted(contracts.items()):
        w.writerow([k, customer, start, "2028-12-31"])
with open(out + ".amendable.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["contract_id", "product_id"])
    for k, p in sorted(amendable.items()):
        w.writerow([k, p])
print(f"{len(contracts)} contracts, {len(amendable)} with a line to amend", file=sys.stderr)
PY
fi

# The as-of check: `expansa export --as-of event:N` holds what write N wrote, and event:N-1
# does not (a line: its row; an amendment: its contract's lines differ).
as_of_check() { # DB KIND ID EVENT PREVIOUS (the log's event before EVENT)
  local db=$1 kind=$2 id=$3 event=$4 previous=$5 at before
  rm -rf "$work/at" "$work/before"
  "$bin" export --db "$db" --out "$work/at" --as-of "event:$event" >/dev/null || return 1
  "$bin" export --db "$db" --out "$work/before" --as-of "event:$previous" >/dev/null || return 1
  if [ "$kind" = line ]; then
    grep -q "^$id," "$work/at/subscriptions.csv" && ! grep -q "^$id," "$work/before/subscriptions.csv"
  else
    at=$(grep ",$id," "$work/at/subscriptions.csv" | sort)
    before=$(grep ",$id," "$work/before/subscriptions.csv" | sort)
    [ -n "$at" ] && [ -n "$before" ] && [ "$at" != "$before" ]
  fi
}

run() { # DATABASE MODE: one run, its output in bench/out/writes-DATABASE-MODE.txt
  local database=$1 mode=$2 db out=bench/out/writes-$1-$2.txt status=0
  if [ "$database" = sqlite ]; then
    rm -f "$work/writes.db"*
    db=sqlite:$work/writes.db
  else
    admin=${admin:-$(scripts/postgres.sh)}
    pgdb=expansa_bench_writes_$$_$mode
    psql -q "$admin" -c "CREATE DATABASE $pgdb" >/dev/null
    db=${admin%/*}/$pgdb
  fi
  {
    echo "== $database, --write-validation $mode: $customers customers, $clients writers for $seconds s at $rate writes/s"
    [ "$mode" = whole ] && [ "$customers" -ge 100000 ] &&
      echo "(whole re-validates the whole book on every write: expect about one write a second at 1M customers, most requests answered 408 after 30 s)"
    local start end
    start=$EPOCHREALTIME
    "$bin" import --data "$contracted" --db "$db" >/dev/null
    end=$EPOCHREALTIME
    echo "import: $(python3 -c "print(round($end - $start, 2))") s"
  } | tee "$out"
  local key
  key=$("$bin" keys create --name writes --db "$db" | sed -n 1p)
  # Every client comes from 127.0.0.1: lift the per-client limits (docs/api.md, "Limits").
  "$bin" serve --db "$db" --bind 127.0.0.1:0 --write-validation "$mode" --request-timeout 30 \
    --rate-limit 1000000 --rate-burst 1000000 --max-connections 4096 \
    --max-connections-per-client 4096 2> "$work/serve.log" &
  server=$!
  # serve reads the whole book before it announces itself: a while at 1,000,000 customers.
  for _ in $(seq 1 1500); do
    grep -q "serving http" "$work/serve.log" && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.2
  done
  local base
  base=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1 || true)
  if [ -z "$base" ]; then
    echo "serve did not start (5 minutes at most):" | tee -a "$out"
    tail -5 "$work/serve.log" | tee -a "$out"
    kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=
    echo "RESULTLINE $database $mode status=1" >> "$work/results"
    return 0
  fi
  "$target/release/examples/writes" "$base" "$key" "$seconds" "$clients" "$rate" "$customers" \
    "$contracted.amendable.csv" "$work/acked.tsv" | tee -a "$out" || status=1
  kill "$server" && wait "$server" 2>/dev/null || true
  server=
  # Group commit: how many writes each commit carried.
  grep -h "writes committed in" "$work/serve.log" | tee -a "$out" || true
  # A sample of the acknowledged writes: the first, middle and last line, and an amendment.
  local checked=0 failed=0 kind id event previous
  while IFS=$'\t' read -r kind id event previous; do
    checked=$((checked + 1))
    as_of_check "$db" "$kind" "$id" "$event" "$previous" || { failed=$((failed + 1)); echo "  as-of: $kind $id at event $event: NOT as it was" | tee -a "$out"; }
  done < <(python3 - "$work/acked.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
lines = [r for r in rows if r[0] == "line"]
amends = [r for r in rows if r[0] == "amend"]
sample = ([lines[0], lines[len(lines) // 2], lines[-1]] if lines else []) + amends[:1]
for r in sample:
    print("\t".join(r))
PY
)
  echo "as-of: $((checked - failed)) of $checked sampled writes as they were at their event and not before" | tee -a "$out"
  [ "$failed" -eq 0 ] && [ "$checked" -gt 0 ] || status=1
  if [ -n "$pgdb" ]; then
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null
    pgdb=
  fi
  echo "RESULTLINE $database $mode status=$status $(grep '^RESULT ' "$out" | tail -1 | cut -d' ' -f2-)" >> "$work/results"
  return 0
}

for database in $databases; do
  for mode in $modes; do
    run "$database" "$mode"
  done
done

python3 - "$work/results" "$customers" "$seconds" "$clients" "$rate" "$(nproc)" "${WRITES_READERS:-4}" <<'PY' | tee bench/out/writes.txt
import sys
path, customers, seconds, clients, rate, cores, readers = sys.argv[1:]
runs = {}
for line in open(path):
    parts = line.split()
    fields = dict(p.split("=", 1) for p in parts[3:])
    fields["status"] = parts[3].split("=")[1]
    runs[(parts[1], parts[2])] = fields
num = lambda r, k: float(r.get(k, "nan"))
print(f"write benchmark: {customers} customers, {clients} writers for {seconds} s at {rate} writes/s, {readers} readers; {cores} cores")
print(f"{'database':9} {'validation':10} {'writes/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'read p95 before':>16} {'during':>9} {'errors':>7} {'consistent':>10} {'run':>5}")
for (db, mode), r in runs.items():
    print(f"{db:9} {mode:10} {num(r, 'writes_per_s'):9.1f} {num(r, 'p50_ms'):9.1f} {num(r, 'p95_ms'):9.1f} {num(r, 'p99_ms'):9.1f} "
          f"{num(r, 'read_p95_before_ms'):16.1f} {num(r, 'read_p95_during_ms'):9.1f} {r.get('errors', '?'):>7} "
          f"{'yes' if r.get('consistent') == '1' else 'NO':>10} {'pass' if r['status'] == '0' and r.get('pass') == '1' else 'FAIL':>5}")
for db in dict.fromkeys(db for db, _ in runs):
    c, w = runs.get((db, "changed")), runs.get((db, "whole"))
    if c and w:
        tput = num(c, "writes_per_s") / num(w, "writes_per_s") if num(w, "writes_per_s") else float("inf")
        p95 = num(c, "p95_ms") / num(w, "p95_ms") if num(w, "p95_ms") else float("inf")
        print(f"{db}, changed / whole: {tput:.2f}x the writes/s, {p95:.2f}x the write p95")
c = runs.get(("sqlite", "changed"))
if c:
    p95, tput = num(c, "p95_ms"), num(c, "writes_per_s")
    before, during = num(c, "read_p95_before_ms"), num(c, "read_p95_during_ms")
    print(f"target, SQLite changed: write p95 {p95:.1f} ms <= 50 ms: {'yes' if p95 <= 50 else 'NO'}; "
          f"{tput:.1f} writes/s >= 500: {'yes' if tput >= 500 else 'NO'}"
          + (f" (the offered rate {rate}/s is below 500: rerun at RATE >= 500 to test it)" if float(rate) < 500 else ""))
    # Before the writes a read is answered from the kept output; during them it folds in the
    # writes since the last read. "Unchanged" is taken as within 5 ms (below what a person
    # sees, above this VM's jitter); the ratio is printed beside it.
    print(f"target, reads p95 unchanged by the writes (SQLite changed, within 5 ms): {before:.1f} ms before, "
          f"{during:.1f} ms during ({during / before if before else float('inf'):.2f}x, +{during - before:.1f} ms): "
          f"{'yes' if during - before <= 5 else 'NO'}")
ok = all(r["status"] == "0" and r.get("pass") == "1" for r in runs.values())
print(f"writes: {'every run passed (nothing lost or duplicated, no errors, as-of as it was)' if ok else 'some run FAILED (see above)'}")
sys.exit(0 if ok else 1)
PY
