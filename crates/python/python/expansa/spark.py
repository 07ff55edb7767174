"""expansa on Apache Spark: a book's movement report and KPIs, computed by customer in Spark's
Python workers and summed exactly, byte for byte the JSON ``expansa movements|kpis --format
json`` prints on the same book.

    python -m expansa.spark movements --input BOOK_DIR --from 2024-01 --to 2024-12 --out mrr.json
    python -m expansa.spark kpis --input BOOK_DIR --from 2024-01 --to 2024-12 --out kpis.json

or, on a SparkSession of your own, :func:`movements_json`, :func:`kpis_json` (the JSON text)
and :func:`write_report` (the JSON written whole, or nothing).

How (docs/spark.md): every table with a customer column (``customers`` by ``id``;
``subscriptions``, ``contracts``, ``contracted_prices``, ``usage``, ``offers`` by
``customer_id``) is grouped by customer (``groupBy(...).applyInArrow``: the customers put in
groups of about ``rows_per_group`` rows by a hash of their id); the shared tables
(``products``, ``fx_rates``, ``marketing_spend``) are broadcast to every group. Each group is
read as a book (:func:`expansa.book_from_tables`: the importer's checks) and gives the exact
sums its customers add to the report (``Book.cells``: integers of 10^-10 units or counts);
Spark sums them as ``DecimalType(38, 0)`` (exact; an overflow is an error, never a wrong
number), and the driver makes the report from the sums with the CLI's own functions
(``report_of_cells``). No figure is computed in Python.

A book with problems fails the job with :class:`expansa.BookError`, listing the problems
exactly as ``expansa check --data BOOK_DIR`` does (the driver then reads the whole book to list
them), and nothing is written.
"""

import argparse
import os
import sys

from expansa import Book, BookError, ExpansaError, _flag, _month, _native, book_from_tables

__all__ = ["BY_CUSTOMER", "ROWS_PER_GROUP", "SHARED", "kpis_json", "movements_json",
           "write_report"]

#: The tables whose rows are a customer's, and the column naming it.
BY_CUSTOMER = {
    "customers": "id",
    "subscriptions": "customer_id",
    "contracts": "customer_id",
    "contracted_prices": "customer_id",
    "usage": "customer_id",
    "offers": "customer_id",
}

#: The tables every customer's group reads whole (broadcast).
SHARED = ("products", "fx_rates", "marketing_spend")

# Columns the job adds to every row of a customer's table: its customer, its table, its row.
_CUSTOMER, _TABLE, _ROW = "_expansa_customer", "_expansa_table", "_expansa_row"

#: The rows of the customers' tables a group holds, about: the book's customers are put in
#: ``ceil(rows / ROWS_PER_GROUP)`` groups by a hash of their id, and each group is read as one
#: book by one Python worker. A group of one customer costs about 2 ms of Python and Arrow
#: work whatever its size (docs/scale.md); a group of 200,000 rows is about 50 MB in a worker.
ROWS_PER_GROUP = 200_000


def movements_json(spark, input, from_, to, *, rules="conexa", currency="BRL",
                   rows_per_group=ROWS_PER_GROUP):
    """The JSON ``expansa movements --data INPUT --from FROM_ --to TO --rules RULES --currency
    CURRENCY --format json`` prints, computed on ``spark`` by customer.

    Args:
        spark: a ``pyspark.sql.SparkSession`` (Spark 4, classic: not Spark Connect) whose
            Python workers have ``expansa`` and ``pyarrow`` installed.
        input: a folder of a Parquet book (``subscriptions.parquet``, ... as
            ``expansa export --format parquet`` writes; docs/interchange.md), as a path every
            executor can read (a shared file system, ``hdfs://``, ``s3a://``...). A table may
            be a folder of Parquet parts (``subscriptions.parquet/part-*.parquet``).
        from_, to: months (``YYYY-MM`` or dates).
        rules: ``conexa`` or ``chartmogul``.
        currency: the reporting currency.
        rows_per_group: about how many rows of the customers' tables each group holds
            (a group is one customer's rows or several customers', whole; the sums are the
            same for any grouping).

    Returns:
        str: the JSON, with its final newline.

    Raises:
        expansa.BookError: the book has problems (those ``expansa check`` lists).
        ValueError: arguments the CLI refuses.
    """
    return _report(spark, input, "movements", from_, to, rules, currency, rows_per_group)


def kpis_json(spark, input, from_, to, *, rules="conexa", currency="BRL",
              rows_per_group=ROWS_PER_GROUP):
    """The JSON ``expansa kpis ... --format json`` prints, computed on ``spark`` by customer;
    as :func:`movements_json`."""
    return _report(spark, input, "kpis", from_, to, rules, currency, rows_per_group)


def write_report(text, out):
    """Writes ``text`` to ``out`` whole: to a file beside it, then renamed over it, so that
    ``out`` is never a partial report."""
    out = os.fspath(out)
    part = f"{out}.part-{os.getpid()}"
    with open(part, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(part, out)


def _path(input, table):
    return os.path.join(os.fspath(input), f"{table}.parquet")


def _exists(spark, path):
    """Whether ``path`` exists, on the file system Spark reads it from."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs.exists(hadoop_path)


def _column(df, name):
    """The column of ``df`` named ``name`` in any case (as the importer matches headers)."""
    for c in df.columns:
        if c.lower() == name:
            return c
    return None


def _report(spark, input, command, from_, to, rules, currency, rows_per_group):
    from pyspark.sql import functions as F

    flags = [_flag("--from", _month(from_)), _flag("--to", _month(to)), _flag("--rules", rules)]
    frames = {}
    for table in (*BY_CUSTOMER, *SHARED):
        path = _path(input, table)
        if _exists(spark, path):
            frames[table] = spark.read.parquet(path)
    shared = {t: frames[t].toArrow() for t in SHARED if t in frames}
    # A table without its customer column (or no subscriptions) goes to the driver's check of
    # the whole book, which says what is wrong as the CLI does.
    keyed = {t: _column(frames[t], BY_CUSTOMER[t]) for t in BY_CUSTOMER if t in frames}
    if "subscriptions" not in frames or None in keyed.values():
        _check_whole(input, currency)
        raise ExpansaError(
            f"{input}: not a Parquet book the job can group by customer (subscriptions.parquet "
            "and each customer's table with its id or customer_id column; docs/spark.md)"
        )
    # The shared book (the reporting currency, the marketing spend the KPIs divide), with
    # every customer's table empty.
    empty = {t: frames[t].limit(0).toArrow() for t in BY_CUSTOMER if t in frames}
    try:
        shared_book = book_from_tables({**shared, **empty}, currency=currency)
    except BookError:
        _check_whole(input, currency)
        raise
    # The CLI's parser refuses bad arguments here, before any work.
    shared_book._native.cells([command], flags)

    parts = []
    for table, key in keyed.items():
        df = frames[table]
        parts.append(
            df.select(
                F.trim(F.col(f"`{key}`").cast("string")).alias(_CUSTOMER),
                F.lit(table).alias(_TABLE),
                F.col("_metadata.row_index").alias(_ROW),
                F.struct(*[F.col(f"`{c}`") for c in df.columns]).alias(table),
            )
        )
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.unionByName(p, allowMissingColumns=True)
    _one_customer_each(frames, keyed, input, currency)
    broadcast = spark.sparkContext.broadcast(shared)
    group = _group_cells(command, flags, currency, list(keyed), broadcast)
    out_schema = "cell string, units decimal(38,0), problems long"
    # Whole customers to each group, several to a group: a group's cost in Python and Arrow
    # is mostly per group, not per row (the counts come from the Parquet footers).
    total = sum(frames[t].count() for t in keyed)
    groups = max(1, -(-total // max(1, int(rows_per_group))))
    bucket = F.pmod(F.xxhash64(F.col(_CUSTOMER)), F.lit(groups)).alias("_expansa_group")
    cells = rows.groupBy(bucket).applyInArrow(group, out_schema)
    summed = cells.groupBy("cell").agg(
        F.sum("units").alias("units"), F.sum("problems").alias("problems")
    )
    collected = summed.collect()
    broadcast.unpersist()
    if any(r["problems"] for r in collected):
        _check_whole(input, currency)
        raise ExpansaError(
            "groups of the book's customers have problems the whole book does not have: the "
            "book cannot be computed by customer (docs/spark.md)"
        )
    found = [(r["cell"], int(r["units"])) for r in collected if r["cell"] is not None]
    return _native.report_of_cells(shared_book._native, [command], flags, found)


#: The ids a customer's rows hold or name, which must each be one customer's for the book to
#: be read by customer: (kind, table, column); `None` for a line's contract, which is its
#: `contract_id`, or its own `id` without one.
_KEYS = (
    ("line", "subscriptions", "id"),
    ("line", "subscriptions", "revises"),
    ("line", "offers", "line_id"),
    ("contract", "contracts", "id"),
    ("contract", "subscriptions", None),
    ("contract", "contracted_prices", "contract_id"),
    ("offer", "offers", "id"),
)


def _one_customer_each(frames, keyed, input, currency):
    """Checks that no line, contract or offer id is held or named by rows of two customers:
    what no customer's group can see (a line on another customer's contract, an id twice).
    A book where one is reads whole on the driver, which raises its problems as ``expansa
    check`` lists them; if it has none, the job refuses the book, which cannot be split."""
    from pyspark.sql import functions as F

    ids = []
    for kind, table, column in _KEYS:
        if table not in keyed:
            continue
        df = frames[table]
        if column is None:
            contract, line = _column(df, "contract_id"), _column(df, "id")
            if line is None:
                continue
            value = F.col(f"`{line}`").cast("string")
            if contract is not None:
                value = F.coalesce(F.col(f"`{contract}`").cast("string"), value)
        else:
            found = _column(df, column)
            if found is None:
                continue
            value = F.col(f"`{found}`").cast("string")
        customer = F.trim(F.col(f"`{keyed[table]}`").cast("string"))
        ids.append(
            df.select(F.lit(kind).alias("kind"), F.trim(value).alias("id"),
                      customer.alias("customer")).where(F.col("id") != "")
        )
    if not ids:
        return
    every = ids[0]
    for more in ids[1:]:
        every = every.unionByName(more)
    shared = (
        every.groupBy("kind", "id")
        .agg(F.countDistinct("customer").alias("customers"), F.min("customer").alias("a"),
             F.max("customer").alias("b"))
        .where(F.col("customers") > 1)
        .limit(1)
        .collect()
    )
    if shared:
        _check_whole(input, currency)
        r = shared[0]
        raise ExpansaError(
            f"{r['kind']} {r['id']} is of customers {r['a']} and {r['b']}: the book cannot be "
            "computed by customer (docs/spark.md)"
        )


def _check_whole(input, currency):
    """Reads the whole book at ``input`` as ``expansa check`` does, raising its problems."""
    Book(_native.read_book(os.fspath(input), currency, "utf-8"))


def _group_cells(command, flags, currency, tables_by_customer, broadcast):
    """The function each customer's group runs in a Python worker: its rows (every table's, as
    structs) read as a book with the shared tables, and the exact sums it adds to the report;
    a group with problems gives one row counting them."""

    def run(rows):
        import pyarrow as pa
        import pyarrow.compute as pc

        tables = dict(broadcast.value)
        mine = {t: pc.equal(rows.column(_TABLE), t) for t in tables_by_customer}
        for table, rows_of in mine.items():
            picked = pa.table({"s": rows.column(table), "r": rows.column(_ROW)})
            picked = picked.filter(rows_of).sort_by("r").column("s").combine_chunks()
            tables[table] = pa.Table.from_batches([pa.RecordBatch.from_struct_array(picked)])
        try:
            book = book_from_tables(tables, currency=currency)
            cells = book._native.cells([command], flags)
        except BookError as e:
            schema = pa.schema(
                [("cell", pa.string()), ("units", pa.decimal128(38, 0)), ("problems", pa.int64())]
            )
            return pa.table({"cell": [None], "units": [None], "problems": [max(e.total, 1)]},
                            schema=schema)
        return cells.append_column("problems", pa.array([None] * cells.num_rows, pa.int64()))

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m expansa.spark",
        description="expansa's movement report or KPIs of a Parquet book, computed by customer "
        "on Spark: the JSON `expansa movements|kpis --format json` prints",
    )
    parser.add_argument("command", choices=["movements", "kpis"])
    parser.add_argument("--input", required=True, help="the Parquet book's folder")
    parser.add_argument("--from", dest="from_", required=True, help="first month, YYYY-MM")
    parser.add_argument("--to", required=True, help="last month, YYYY-MM")
    parser.add_argument("--rules", default="conexa", help="conexa (default) or chartmogul")
    parser.add_argument("--currency", default="BRL", help="the reporting currency")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--master", help="Spark master (default: spark-submit's or local[*])")
    parser.add_argument("--rows-per-group", type=int, default=ROWS_PER_GROUP,
                        help=f"rows of the customers' tables per group, about (default "
                        f"{ROWS_PER_GROUP})")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    builder = SparkSession.builder.appName(f"expansa {args.command}")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    report = movements_json if args.command == "movements" else kpis_json
    try:
        text = report(spark, args.input, args.from_, args.to, rules=args.rules,
                      currency=args.currency, rows_per_group=args.rows_per_group)
    except BookError as e:
        # As `expansa check` prints them.
        print(*e.problems, *([e._more] if e._more else []), f"error: {e.message}",
              sep="\n", file=sys.stderr)
        return 1
    except ExpansaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if running is None:
            spark.stop()
    write_report(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
