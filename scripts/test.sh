#!/usr/bin/env bash
# The test suite: unit, property, golden, end-to-end CLI, fuzz-corpus replay, and the
# differential test against the DuckDB peer in ../shared/tools (which needs duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb
cargo test --workspace --locked
