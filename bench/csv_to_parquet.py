#!/usr/bin/env python3
"""Writes a generated CSV book as a Parquet book, streaming, in the columns and types
`expansa export --format parquet` writes for the same generator's books.

usage: csv_to_parquet.py CSV_BOOK PARQUET_BOOK LIKE_PARQUET_BOOK

For books whose `expansa export` does not fit in memory (it holds every table's rows as
text and the written files in memory: about 2 GiB per million customers, docs/scale.md).
Each TABLE.csv of CSV_BOOK is read a block at a time (pyarrow.csv.open_csv) and written to
PARQUET_BOOK/TABLE.parquet with the schema of LIKE_PARQUET_BOOK/TABLE.parquet (a smaller
book of the same generator exported by expansa: the same column names, decimal128(38, s),
date32, int64, string; the columns the CSV lacks are written as nulls), in row groups of
1,048,576 rows, Snappy, as arrow-rs writes them. Needs pyarrow.
"""
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROW_GROUP = 1_048_576


def convert(src, dst, like):
    schema = pq.read_schema(like)
    header = open(src, encoding="utf-8").readline().rstrip("\r\n").split(",")
    # Read every column as text; cast with pyarrow's exact casts (a decimal cast refuses
    # a value that does not fit, a date cast a bad date).
    options = pcsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                  strings_can_be_null=False)
    reader = pcsv.open_csv(src, read_options=pcsv.ReadOptions(block_size=64 << 20),
                           convert_options=options)
    buffered, rows = [], 0
    with pq.ParquetWriter(dst, schema, compression="snappy") as writer:
        def flush(final):
            nonlocal buffered
            table = pa.concat_tables(buffered) if buffered else None
            while table is not None and (table.num_rows >= ROW_GROUP or (final and table.num_rows)):
                writer.write_table(table.slice(0, ROW_GROUP), row_group_size=ROW_GROUP)
                table = table.slice(ROW_GROUP) if table.num_rows > ROW_GROUP else None
            buffered = [table] if table is not None and table.num_rows else []

        for batch in reader:
            columns = []
            for field in schema:
                if field.name in header:
                    col = batch.column(header.index(field.name))
                    empty = pc.equal(col, "")
                    col = pc.if_else(empty, pa.scalar(None, pa.string()), col)
                    columns.append(col.cast(field.type))
                else:
                    columns.append(pa.nulls(batch.num_rows, field.type))
            buffered.append(pa.Table.from_arrays(columns, schema=schema))
            rows += batch.num_rows
            if sum(t.num_rows for t in buffered) >= ROW_GROUP:
                flush(False)
        flush(True)
    return rows


def main():
    src, dst, like = sys.argv[1:4]
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".csv"):
            continue
        table = name[:-4]
        ref = os.path.join(like, f"{table}.parquet")
        if not os.path.exists(ref):
            sys.exit(f"{ref}: no table to take the columns from")
        n = convert(os.path.join(src, name), os.path.join(dst, f"{table}.parquet.part"), ref)
        os.replace(os.path.join(dst, f"{table}.parquet.part"), os.path.join(dst, f"{table}.parquet"))
        print(f"{table}: {n} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
