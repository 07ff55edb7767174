#!/usr/bin/env python3
"""The DuckDB peer (shared/tools/peer_duckdb.py) reading a Parquet book instead of CSV files.

usage: peer_duckdb_parquet.py DATA_DIR FROM_MONTH TO_MONTH [THREADS]

The peer's own SQL, with each `read_csv('{d}/NAME.csv', ...)` replaced by
`read_parquet('{d}/NAME.parquet')`, its columns cast to text: the peer's SQL reads every
column as text (all_varchar) and casts it itself, and a DECIMAL or DATE cast to text is its
exact value (`12.50`, `2024-01-31`), so the same SQL computes the same months. The shared
folder is found at EXPANSA_SHARED, else ../shared beside the repository.
"""
import importlib.util
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
shared = os.environ.get("EXPANSA_SHARED", os.path.join(here, "..", "..", "shared"))
spec = importlib.util.spec_from_file_location(
    "peer_duckdb", os.path.join(shared, "tools", "peer_duckdb.py")
)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)

csv_call = re.compile(r"read_csv\('\{d\}/(\w+)\.csv'[^)]*\)")
if not csv_call.search(peer.SQL):
    sys.exit("peer_duckdb.py no longer reads read_csv('{d}/NAME.csv', ...): update this script")
peer.SQL = csv_call.sub(
    r"(SELECT COLUMNS(*)::VARCHAR FROM read_parquet('{d}/\1.parquet'))", peer.SQL
)

if __name__ == "__main__":
    peer.main()
