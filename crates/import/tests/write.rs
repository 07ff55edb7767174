//! Tables written a chunk at a time (`write_table_from`, what `expansa export` writes) are
//! the files written from every row held at once: the same CSV bytes, the same Parquet
//! columns and rows, when what decides the file's layout (a decimal column's largest scale,
//! an extra column, a value too long for 38 digits) is only met in the last chunk.

use expansa_import::parquet::{write_table, ParquetBook};
use expansa_import::schema::PRODUCTS;
use expansa_import::{
    read_rows, write_rows, write_table_from, BookFormat, InMemory, NoProgress, TextEncoding,
    WriteError,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A products file of `rows` rows (about 35 bytes each: many of the reader's 256 KiB
/// chunks), ending with rows of the prices `last` (the last with an attribute no other row
/// has).
fn products(rows: usize, last: &[&str]) -> Vec<u8> {
    let mut csv = String::from("id,name,list_price,price_term_months,Segment,Color\n");
    for k in 0..rows {
        // Scales 0 to 2 in the early rows; a segment on some rows.
        let price = format!("{}.{}", k % 997, "5".repeat(k % 3));
        let price = price.trim_end_matches('.');
        let segment = if k % 5 == 0 { "smb" } else { "" };
        csv += &format!("p{k},\"Product, {k}\",{price},{},{segment},\n", k % 13);
    }
    for (k, price) in last.iter().enumerate() {
        let color = if k + 1 == last.len() { "blue" } else { "" };
        csv += &format!("last{k},Last,{price},1,,{color}\n");
    }
    csv.into_bytes()
}

/// The table written by `write_table_from` into memory, and its rows read back.
fn written(csv: &[u8], format: BookFormat) -> Vec<u8> {
    let files = [("products.csv", csv)];
    write_table_from(
        &InMemory(&files),
        &PRODUCTS,
        TextEncoding::UTF_8,
        format,
        &NoProgress,
        Vec::new(),
    )
    .unwrap()
    .unwrap()
}

fn parquet_schema(bytes: &[u8]) -> arrow_schema::SchemaRef {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .schema()
        .clone()
}

fn read_back(parquet: &[u8]) -> Vec<expansa_import::RawRow> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("products.parquet"), parquet).unwrap();
    read_rows(&ParquetBook::new(tmp.path()), &PRODUCTS)
        .unwrap()
        .unwrap()
}

#[test]
fn a_table_written_in_chunks_is_the_table_written_whole() {
    // 12.1234 sets the column's scale to 4. 123456789012 (12 digits) beside a scale of 28
    // does not fit 38 digits: the column is then strings.
    let cases: [(&[&str], Option<i8>); 2] = [
        (&["12.1234"], Some(4)),
        (&["0.0000000000000000000000000001", "123456789012"], None),
    ];
    for (last, decimal_scale) in cases {
        let csv = products(60_000, last);
        assert!(csv.len() > 1 << 20, "{} bytes: several chunks", csv.len());
        let files = [("products.csv", csv.as_slice())];
        let rows = read_rows(&InMemory(&files), &PRODUCTS).unwrap().unwrap();
        let extra = expansa_import::extra_columns(rows.iter().map(|r| r.extra.as_slice()));
        assert_eq!(extra, ["segment", "color"]);

        // CSV: byte for byte write_rows' file of every row.
        let whole = write_rows(
            &PRODUCTS,
            &extra,
            rows.iter()
                .map(|r| (r.values.as_slice(), r.extra.as_slice())),
        );
        assert_eq!(written(&csv, BookFormat::Csv), whole);

        // Parquet: write_table's columns and rows.
        let streamed = written(&csv, BookFormat::Parquet);
        let whole = write_table(&PRODUCTS, &rows).unwrap();
        assert_eq!(parquet_schema(&streamed), parquet_schema(&whole));
        let price = parquet_schema(&streamed)
            .field_with_name("list_price")
            .unwrap()
            .data_type()
            .clone();
        match decimal_scale {
            Some(scale) => assert_eq!(price, arrow_schema::DataType::Decimal128(38, scale)),
            None => assert_eq!(price, arrow_schema::DataType::Utf8),
        }
        let back = read_back(&streamed);
        assert_eq!(back.len(), rows.len());
        for (a, b) in rows.iter().zip(&back) {
            let value = |s: &Option<String>| {
                s.as_deref()
                    .map(|t| t.parse::<expansa_ledger::Decimal>().unwrap())
            };
            assert_eq!(a.values[0], b.values[0]);
            assert_eq!(a.values[1], b.values[1]);
            assert_eq!(value(&a.values[5]), value(&b.values[5]));
            assert_eq!(a.values[6], b.values[6]);
            assert_eq!(a.extra, b.extra);
        }
        assert_eq!(back, read_back(&whole));
    }
}

#[test]
fn a_table_that_does_not_read_writes_its_problems_not_a_file() {
    let mut csv = products(20_000, &["1"]);
    csv.extend_from_slice(b"bad,Bad,twelve,1,,\n");
    let files = [("products.csv", csv.as_slice())];
    for format in [BookFormat::Csv, BookFormat::Parquet] {
        let mut out = Vec::new();
        let read = write_table_from(
            &InMemory(&files),
            &PRODUCTS,
            TextEncoding::UTF_8,
            format,
            &NoProgress,
            &mut out,
        );
        match read {
            Err(WriteError::Book(problems)) => {
                assert_eq!(problems.0.len(), 1, "{problems:?}");
                assert_eq!(
                    problems.0[0].to_string(),
                    "products.csv:20003: list_price: twelve: not a decimal number (like 1234.56)"
                );
            }
            other => panic!("{other:?}"),
        }
        // The problem is found before a row is written.
        assert!(out.is_empty(), "{} bytes written", out.len());
    }
    // An absent table writes nothing.
    let none: [(&str, &[u8]); 0] = [];
    let absent = write_table_from(
        &InMemory(&none),
        &PRODUCTS,
        TextEncoding::UTF_8,
        BookFormat::Csv,
        &NoProgress,
        Vec::new(),
    );
    assert!(matches!(absent, Ok(None)));
}
