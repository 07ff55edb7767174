//! Parquet books with problems: each is refused whole, with the problems a CSV book gets,
//! located by Parquet file, row group and row; a damaged file is a problem, never a panic.

use arrow_array::builder::{Date32Builder, Decimal128Builder, Float64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{Field, Schema};
use expansa_import::{read_book, ImportOptions, NoProgress};
use std::path::Path;
use std::sync::Arc;

fn strings(values: &[Option<&str>]) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(*v);
    }
    Arc::new(b.finish())
}

fn decimals(scale: i8, values: &[Option<i128>]) -> ArrayRef {
    let mut b = Decimal128Builder::new()
        .with_precision_and_scale(38, scale)
        .unwrap();
    for v in values {
        b.append_option(*v);
    }
    Arc::new(b.finish())
}

/// Days from 1970-01-01 of a day in 2024 (`month`, `day`).
fn day_2024(month: u32, day: u32) -> i32 {
    let before: [i32; 12] = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335];
    19_723 + before[month as usize - 1] + day as i32 - 1
}

fn dates(values: &[Option<i32>]) -> ArrayRef {
    let mut b = Date32Builder::new();
    for v in values {
        b.append_option(*v);
    }
    Arc::new(b.finish())
}

/// Writes `columns` as `dir/name`, `group_rows` rows per row group.
fn write(dir: &Path, name: &str, columns: Vec<(&str, ArrayRef)>, group_rows: usize) {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_size(group_rows)
        .build();
    write_with(dir, name, columns, props);
}

/// Writes `columns` as `dir/name` with the writer's `props`.
fn write_with(
    dir: &Path,
    name: &str,
    columns: Vec<(&str, ArrayRef)>,
    props: parquet::file::properties::WriterProperties,
) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let file = std::fs::File::create(dir.join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The book's problems as printed (the book must be refused).
fn problems(dir: &Path) -> Vec<String> {
    match read_book(dir, &ImportOptions::default(), &NoProgress) {
        Ok(book) => panic!("the book loaded: {} lines", book.lines.len()),
        Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
    }
}

/// Five good lines, as columns; `change` edits them before they are written.
fn lines(change: impl FnOnce(&mut Vec<(&'static str, ArrayRef)>)) -> Vec<(&'static str, ArrayRef)> {
    let mut columns: Vec<(&'static str, ArrayRef)> = vec![
        (
            "id",
            strings(&[Some("l1"), Some("l2"), Some("l3"), Some("l4"), Some("l5")]),
        ),
        (
            "customer_id",
            strings(&[Some("c1"), Some("c1"), Some("c2"), Some("c3"), Some("c3")]),
        ),
        ("product_id", strings(&[Some("p"); 5])),
        (
            "unit_price",
            decimals(
                2,
                &[Some(10_050), Some(2_000), Some(99_999), Some(1), Some(100)],
            ),
        ),
        (
            "start_date",
            dates(&[
                Some(day_2024(1, 1)),
                Some(day_2024(2, 1)),
                Some(day_2024(3, 15)),
                Some(day_2024(4, 1)),
                Some(day_2024(5, 1)),
            ]),
        ),
    ];
    change(&mut columns);
    columns
}

fn set(columns: &mut [(&'static str, ArrayRef)], name: &str, array: ArrayRef) {
    columns.iter_mut().find(|(n, _)| *n == name).unwrap().1 = array;
}

#[test]
fn a_good_parquet_book_loads_with_exact_decimals_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "subscriptions.parquet", lines(|_| {}), 2);
    // Customers' other columns are attributes, floats among them (a score is no money).
    let mut score = Float64Builder::new();
    score.append_value(0.1);
    score.append_null();
    score.append_value(2.5);
    write(
        tmp.path(),
        "customers.parquet",
        vec![
            ("id", strings(&[Some("c1"), Some("c2"), Some("c3")])),
            ("score", Arc::new(score.finish()) as ArrayRef),
        ],
        10,
    );
    // Months of fx rates as DATEs on the 1st.
    write(
        tmp.path(),
        "fx_rates.parquet",
        vec![
            ("month", dates(&[Some(day_2024(1, 1))])),
            ("currency", strings(&[Some("USD")])),
            ("rate", decimals(4, &[Some(51_234)])),
        ],
        10,
    );
    let book = read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    assert_eq!(book.lines.len(), 5);
    let prices: Vec<String> = book
        .lines
        .items
        .iter()
        .map(|l| l.unit_price.get().to_string())
        .collect();
    // Exact, without the zeros of the column's scale.
    assert_eq!(prices, ["100.5", "20", "999.99", "0.01", "1"]);
    assert_eq!(book.lines.items[2].start.to_string(), "2024-03-15");
    let score = book.customers.attribute("score").unwrap();
    assert_eq!([score.get(0), score.get(2)], ["0.1", "2.5"]);
    assert_eq!(
        book.rate_of_month(
            expansa_ledger::Currency::from_code("USD").unwrap(),
            "2024-01".parse().unwrap()
        )
        .map(|r| r.to_string()),
        Some("5.1234".into())
    );
}

#[test]
fn wrong_types_are_one_problem_each_naming_the_parquet_type() {
    let tmp = tempfile::tempdir().unwrap();
    let mut floats = Float64Builder::new();
    for v in [100.5, 20.0, 999.99, 0.01, 1.0] {
        floats.append_value(v);
    }
    let floats: ArrayRef = Arc::new(floats.finish());
    let stamps: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0i64; 5]));
    write(
        tmp.path(),
        "subscriptions.parquet",
        lines(|c| {
            set(c, "unit_price", floats);
            set(c, "start_date", stamps);
        }),
        10,
    );
    let got = problems(tmp.path());
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        "subscriptions.parquet:0: start_date: start_date: the column is of Parquet type INT64 \
         (TIMESTAMP(MICROS,false)), which a date column cannot hold: write it as a DATE or a \
         YYYY-MM-DD string"
    );
    assert_eq!(
        got[1],
        "subscriptions.parquet:0: unit_price: unit_price: the column is of Parquet type DOUBLE, \
         which a decimal column cannot hold: write it as a DECIMAL, an integer or a string \
         (floats are refused: money is exact, and a float is not)"
    );
}

#[test]
fn a_missing_column_is_said_as_for_a_csv_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "subscriptions.parquet",
        lines(|c| c.retain(|(n, _)| *n != "unit_price")),
        10,
    );
    assert_eq!(
        problems(tmp.path()),
        [
            "subscriptions.parquet:0: unit_price: : required column is missing from the Parquet \
          schema"
        ]
    );
}

/// Bad values are found by the CSV import's own checks, at their row group and row (rows of a
/// value with a line break included), and the book is refused whole.
#[test]
fn bad_values_are_located_by_row_group_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "subscriptions.parquet",
        lines(|c| {
            c.push((
                "contract_id",
                strings(&[Some("two\nlines"), None, Some("k\r\nk"), None, None]),
            ));
            set(
                c,
                "customer_id",
                strings(&[Some("c1"), None, Some("c2"), Some("c3"), Some("c3")]),
            );
            // A string where a date is expected is read as text, and checked as text is.
            set(
                c,
                "start_date",
                strings(&[
                    Some("2024-01-01"),
                    Some("2024-02-01"),
                    Some("2024-03-01"),
                    Some("2024-04-01"),
                    Some("01/05/2024"),
                ]),
            );
            // 17 significant digits at most: 1.000000000000000001 has 19.
            set(
                c,
                "unit_price",
                decimals(
                    18,
                    &[
                        Some(10i128.pow(18)),
                        Some(10i128.pow(18)),
                        Some(10i128.pow(18) + 1),
                        Some(10i128.pow(18)),
                        Some(10i128.pow(18)),
                    ],
                ),
            );
        }),
        2,
    );
    let got = problems(tmp.path());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with(
            "subscriptions.parquet[row group 1]:2: customer_id: : required value is missing"
        ),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(
            "subscriptions.parquet[row group 2]:1: unit_price: 1.000000000000000001: "
        ),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("subscriptions.parquet[row group 3]:1: start_date: 01/05/2024: "),
        "{got:?}"
    );
}

#[test]
fn both_formats_in_one_folder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "subscriptions.parquet", lines(|_| {}), 10);
    std::fs::write(tmp.path().join("subscriptions.csv"), "id\n").unwrap();
    let got = problems(tmp.path());
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("holds both Parquet files (subscriptions.parquet) and CSV files of a book (subscriptions.csv)"),
        "{got:?}"
    );
}

/// A CSV folder holding some of a book's tables as Parquet files (no `subscriptions.parquet`)
/// is refused: read as a CSV book, it would lose those tables (and an export with `--force`
/// into it would then delete them).
#[test]
fn parquet_files_beside_a_csv_book_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("subscriptions.csv"),
        "id,customer_id,product_id,unit_price,start_date\nl1,c1,p,10,2024-01-01\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("customers.csv"), "id\nc1\n").unwrap();
    let usage: Vec<(&str, ArrayRef)> = vec![
        ("customer_id", strings(&[Some("c1")])),
        ("product_id", strings(&[Some("p")])),
        ("month", strings(&[Some("2024-01")])),
        ("quantity", decimals(0, &[Some(3)])),
    ];
    write(tmp.path(), "usage.parquet", usage.clone(), 10);
    let got = problems(tmp.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains(
            ":0: folder: : holds both CSV files (subscriptions.csv, customers.csv) and Parquet \
             files (usage.parquet) of a book: a book is one or the other"
        ),
        "{got:?}"
    );
    // Without the CSV files: a Parquet book without its one required file.
    let only = tempfile::tempdir().unwrap();
    write(only.path(), "usage.parquet", usage, 10);
    let got = problems(only.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains(
            ":0: folder: : holds Parquet files of a book (usage.parquet) but not \
             subscriptions.parquet, which a Parquet book must have"
        ),
        "{got:?}"
    );
    // A CSV book beside other Parquet files (not named like a table) reads.
    std::fs::remove_file(tmp.path().join("usage.parquet")).unwrap();
    write(
        tmp.path(),
        "usage-2023.parquet",
        vec![("x", strings(&[Some("1")]))],
        10,
    );
    read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
}

/// Bytes that are not UTF-8 in a string column written without the UTF8 annotation (a
/// BYTE_ARRAY, Arrow Binary) are read as a CSV file's: one problem for the file at the first
/// such value (shown read as Windows-1252), the file's other rows still checked, and
/// `--encoding windows-1252` reads them; never lossily (two ids differing only in such bytes
/// stay two customers).
#[test]
fn bytes_that_are_not_utf8_are_one_problem_as_in_a_csv_file() {
    use arrow_array::BinaryArray;
    let binary = |values: &[&[u8]]| -> ArrayRef {
        Arc::new(BinaryArray::from_iter_values(values.iter().copied()))
    };
    let tmp = tempfile::tempdir().unwrap();
    let columns = lines(|c| {
        set(
            c,
            "customer_id",
            binary(&[b"c1", b"c1", "c\u{e9}2".as_bytes(), b"c\xe93", b"c\xea3"]),
        );
    });
    let mut with_bad_date = columns.clone();
    set(
        &mut with_bad_date,
        "start_date",
        strings(&[
            Some("2024-01-01"),
            Some("2024-02-01"),
            Some("2024-03-01"),
            Some("2024-04-01"),
            Some("2024-13-01"),
        ]),
    );
    write(tmp.path(), "subscriptions.parquet", with_bad_date, 2);
    let got = problems(tmp.path());
    assert_eq!(
        got,
        [
            "subscriptions.parquet[row group 2]:2: customer_id: c\u{e9}3: a string column holds \
             bytes that are not UTF-8 (here first); they look like Windows-1252 (Latin-1): pass \
             --encoding windows-1252 to read them so, or write the column as UTF-8 strings",
            "subscriptions.parquet[row group 3]:1: start_date: 2024-13-01: not a date (expected \
             YYYY-MM-DD, a real day)",
        ],
        "{got:?}"
    );
    // Read as Windows-1252: two customers where the bytes differ.
    write(tmp.path(), "subscriptions.parquet", columns.clone(), 2);
    let latin = ImportOptions {
        encoding: expansa_import::TextEncoding::WINDOWS_1252,
        ..ImportOptions::default()
    };
    let book = read_book(tmp.path(), &latin, &NoProgress).unwrap();
    let ids: Vec<&str> = book.customers.ids.iter().collect();
    assert_eq!(ids, ["c1", "c\u{e9}2", "c\u{e9}3", "c\u{ea}3"]);
    // The same column valid: read as text.
    let good = lines(|c| {
        set(
            c,
            "customer_id",
            binary(&[b"c1", b"c1", "c\u{e9}2".as_bytes(), b"c3", b"c3"]),
        );
    });
    write(tmp.path(), "subscriptions.parquet", good, 2);
    let book = read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    let ids: Vec<&str> = book.customers.ids.iter().collect();
    assert_eq!(ids, ["c1", "c\u{e9}2", "c3"]);

    // Arrow tables in memory (the Python package's) are read the same way.
    let (schema, batch) = table(columns);
    let source = expansa_import::parquet::ArrowBook::new(vec![(
        "subscriptions".into(),
        schema,
        vec![batch],
    )])
    .unwrap();
    let got = problems_of(expansa_import::read_book_from(
        &source,
        &ImportOptions::default(),
        &NoProgress,
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "subscriptions:4: customer_id: c\u{e9}3: a string column holds bytes that are not UTF-8"
        ),
        "{got:?}"
    );
}

/// A column annotated UTF8 whose bytes are not UTF-8 (pyarrow writes and reads such files;
/// arrow-rs refuses them as it decodes the page): one problem, at the row group that holds them
/// (each row group is read on its own, so a batch never starts in an earlier one). A column
/// null in every row (the Null type pandas writes) reads as empty.
#[test]
fn a_utf8_column_that_is_not_utf8_is_said_at_its_row_group() {
    use arrow_array::{BinaryArray, NullArray, StringArray};
    let tmp = tempfile::tempdir().unwrap();
    let mut columns = lines(|_| {});
    let ids: &[&[u8]] = &[b"l1", b"l2", b"l3", b"l\xe94", b"l5"];
    let (offsets, bytes, nulls) = BinaryArray::from_iter_values(ids.iter().copied()).into_parts();
    // SAFETY: the array is only written (as bytes); reading it back is the reader's to refuse,
    // which is what is tested.
    let bad = unsafe { StringArray::new_unchecked(offsets, bytes, nulls) };
    set(&mut columns, "id", Arc::new(bad));
    write(tmp.path(), "subscriptions.parquet", columns, 1);
    let got = problems(tmp.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "subscriptions.parquet[row group 4]:1: file: : a UTF8 string column holds bytes \
             that are not UTF-8 in this row group"
        ),
        "{got:?}"
    );

    let nulls = lines(|c| c.push(("revises", Arc::new(NullArray::new(5)) as ArrayRef)));
    write(tmp.path(), "subscriptions.parquet", nulls, 2);
    let book = read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    assert_eq!(book.lines.items.len(), 5);
}

/// What a problem's reason says of other records and files is said as the book has them: the
/// first of two duplicate ids at its row group and row, the file a customer is missing from as
/// its Parquet file (a CSV book says `first on line N`, `not in customers.csv`).
#[test]
fn references_in_reasons_name_parquet_files_and_rows() {
    let customers = || -> Vec<(&'static str, ArrayRef)> {
        vec![(
            "id",
            strings(&[Some("c1"), Some("c2"), Some("c3"), Some("c2")]),
        )]
    };
    let subscriptions = lines(|c| {
        set(
            c,
            "customer_id",
            strings(&[Some("c1"), Some("c1"), Some("zz"), Some("c3"), Some("c3")]),
        );
        c.push(("currency", strings(&[None, None, None, Some("USD"), None])));
    });
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "customers.parquet", customers(), 3);
    write(
        tmp.path(),
        "subscriptions.parquet",
        subscriptions.clone(),
        2,
    );
    assert_eq!(
        problems(tmp.path()),
        [
            "subscriptions.parquet[row group 2]:1: customer_id: zz: unknown customer (not in \
             customers.parquet)",
            "subscriptions.parquet[row group 2]:2: currency: USD: no rate in fx_rates.parquet for \
             USD to BRL in any month (1 line): add USD rates",
            "customers.parquet[row group 2]:1: id: c2: duplicate customer id (first at row group \
             1, row 2)",
        ]
    );
    // The same tables in memory: named by table and row.
    use expansa_import::parquet::ArrowBook;
    let tables = [("customers", customers()), ("subscriptions", subscriptions)]
        .into_iter()
        .map(|(name, columns)| {
            let (schema, batch) = table(columns);
            (name.to_string(), schema, vec![batch])
        })
        .collect();
    let got = problems_of(expansa_import::read_book_from(
        &ArrowBook::new(tables).unwrap(),
        &ImportOptions::default(),
        &NoProgress,
    ));
    assert_eq!(
        got,
        [
            "subscriptions:3: customer_id: zz: unknown customer (not in the customers table)",
            "subscriptions:4: currency: USD: no rate in the fx_rates table for USD to BRL in any \
             month (1 line): add USD rates",
            "customers:4: id: c2: duplicate customer id (first on row 2)",
        ]
    );
}

/// A damaged Parquet file (cut anywhere, bytes changed anywhere, not Parquet at all) is refused
/// with a problem naming it, never a panic nor a partial book; the fuzz corpus
/// (fuzz/corpus/parquet) holds more, replayed by crates/cli/tests/fuzz_corpus.rs.
#[test]
fn damaged_files_are_problems_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "subscriptions.parquet", lines(|_| {}), 2);
    let good = std::fs::read(tmp.path().join("subscriptions.parquet")).unwrap();
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"PAR1".to_vec(), b"id,customer_id\n".to_vec()];
    for cut in (0..good.len()).step_by(7) {
        inputs.push(good[..cut].to_vec());
    }
    for at in (0..good.len()).step_by(3) {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            inputs.push(bad);
        }
    }
    let (mut loaded, mut refused) = (0, 0);
    for input in &inputs {
        std::fs::write(tmp.path().join("subscriptions.parquet"), input).unwrap();
        match read_book(tmp.path(), &ImportOptions::default(), &NoProgress) {
            // A changed byte may be in a value (a price, a name) or in statistics.
            Ok(_) => loaded += 1,
            Err(e) => {
                assert!(!e.0.is_empty());
                assert!(
                    e.0[0].file.starts_with("subscriptions.parquet"),
                    "{:?}",
                    e.0
                );
                refused += 1;
            }
        }
    }
    assert!(
        refused > inputs.len() / 2,
        "{refused} of {} refused",
        inputs.len()
    );
    assert!(loaded > 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Rows written by `write_table` read back (by the import's reader) as the same rows:
    /// texts as they were (separators, quotes, line breaks), integers, dates, and decimals of
    /// the same value at any scale (written at the column's largest scale, or as strings when
    /// one does not fit 38 digits there).
    #[test]
    fn written_rows_read_back_the_same(
        rows in proptest::collection::vec(
            (
                "[a-z0-9 ,;\"\r\n]{0,12}",
                proptest::option::of((-10i64.pow(15)..10i64.pow(15), 0u32..=12)),
                proptest::option::of(-1000i64..1000),
                proptest::option::of(0i32..2_932_896),
            ),
            1..40,
        ),
        huge in proptest::bool::ANY,
    ) {
        use expansa_import::schema::PRODUCTS;
        use expansa_import::RawRow;
        let raw: Vec<RawRow> = rows
            .iter()
            .enumerate()
            .map(|(k, (name, price, term, day))| {
                let mut price = price.map(|(m, s)| expansa_ledger::Decimal::new(m, s).to_string());
                if huge && k == 0 {
                    // 10^20 beside a scale of 12: 33 digits at scale 12 fit; 10^27 does not.
                    price = Some("1000000000000000000000000000".into());
                }
                let mut values = vec![None; PRODUCTS.columns.len()];
                values[0] = Some(format!("p{k}"));
                values[1] = (!name.trim().is_empty()).then(|| name.clone());
                values[5] = price;
                values[6] = term.map(|t| t.to_string());
                RawRow { line: k as u64 + 2, values, extra: day.map(|d| vec![("day".to_string(), d.to_string())]).unwrap_or_default() }
            })
            .collect();
        let bytes = expansa_import::parquet::write_table(&PRODUCTS, &raw).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("products.parquet"), bytes).unwrap();
        let book = expansa_import::parquet::ParquetBook::new(tmp.path());
        let back = expansa_import::read_rows(&book, &PRODUCTS).unwrap().unwrap();
        proptest::prop_assert_eq!(back.len(), raw.len());
        let value = |s: &Option<String>| s.as_deref().map(|t| t.parse::<expansa_ledger::Decimal>().unwrap());
        for (a, b) in raw.iter().zip(&back) {
            // Texts are trimmed of ASCII spaces, as in a CSV file.
            let trim = |s: &Option<String>| s.as_deref().map(str::trim_ascii).filter(|t| !t.is_empty()).map(str::to_string);
            proptest::prop_assert_eq!(trim(&a.values[1]), b.values[1].clone());
            proptest::prop_assert_eq!(value(&a.values[5]), value(&b.values[5]));
            proptest::prop_assert_eq!(&a.values[6], &b.values[6]);
            proptest::prop_assert_eq!(&a.extra, &b.extra);
        }
    }
}

/// The problems of a book that must be refused, as printed.
fn problems_of(read: Result<expansa_ledger::Book, expansa_import::BookErrors>) -> Vec<String> {
    match read {
        Ok(book) => panic!("the book loaded: {} lines", book.lines.len()),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// `columns` as one batch of an Arrow table.
fn table(columns: Vec<(&str, ArrayRef)>) -> (Arc<Schema>, RecordBatch) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    (schema, batch)
}

/// Arrow tables in memory (`parquet::ArrowBook`, the Python package's `book_from_tables`) are
/// the Parquet book of the same columns: the same book, or the same problems named by table
/// and row.
#[test]
fn arrow_tables_read_as_the_parquet_book_of_their_columns() {
    use expansa_import::parquet::ArrowBook;
    use expansa_import::read_book_from;
    let arrow_book = |columns: Vec<(&'static str, ArrayRef)>, batches: usize| {
        let (schema, batch) = table(columns);
        let rows = batch.num_rows();
        let step = rows.div_ceil(batches);
        let parts = (0..rows)
            .step_by(step)
            .map(|at| batch.slice(at, step.min(rows - at)))
            .collect();
        ArrowBook::new(vec![("subscriptions".into(), schema, parts)]).unwrap()
    };
    let read = |source: &ArrowBook| read_book_from(source, &ImportOptions::default(), &NoProgress);

    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "subscriptions.parquet", lines(|_| {}), 2);
    let from_parquet = read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    let from_arrow = read(&arrow_book(lines(|_| {}), 3)).unwrap();
    let prices = |b: &expansa_ledger::Book| -> Vec<String> {
        b.lines
            .items
            .iter()
            .map(|l| format!("{} {}", l.unit_price.get(), l.start))
            .collect()
    };
    assert_eq!(prices(&from_arrow), prices(&from_parquet));

    let bad = lines(|c| {
        set(
            c,
            "customer_id",
            strings(&[Some("c1"), None, Some("c2"), Some("c3"), Some("c3")]),
        );
        set(
            c,
            "start_date",
            strings(&[
                Some("2024-01-01"),
                Some("2024-02-01"),
                Some("2024-03-01"),
                Some("2024-04-01"),
                Some("01/05/2024"),
            ]),
        );
    });
    let got = problems_of(read(&arrow_book(bad, 2)));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("subscriptions:2: customer_id: : required value is missing"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("subscriptions:5: start_date: 01/05/2024: "),
        "{got:?}"
    );

    let mut floats = Float64Builder::new();
    for v in [100.5, 20.0, 999.99, 0.01, 1.0] {
        floats.append_value(v);
    }
    let floats: ArrayRef = Arc::new(floats.finish());
    let problems = |columns| problems_of(read(&arrow_book(columns, 1)));
    // As in a Parquet file, a column of a wrong type stops the table's reading there.
    assert_eq!(
        problems(lines(|c| set(c, "unit_price", floats))),
        [
            "subscriptions:0: unit_price: unit_price: the column is of Arrow type Float64, which \
             a decimal column cannot hold: write it as a DECIMAL, an integer or a string (floats \
             are refused: money is exact, and a float is not)"
        ]
    );
    assert_eq!(
        problems(lines(|c| c.retain(|(n, _)| *n != "product_id"))),
        ["subscriptions:0: product_id: : required column is missing from the Arrow schema"]
    );

    let (schema, batch) = table(lines(|_| {}));
    assert!(
        ArrowBook::new(vec![("subscription".into(), schema, vec![batch])])
            .err()
            .unwrap()
            .contains("\"subscription\" is not a table of a book")
    );
}

/// What other writers produce reads as the same book: every codec the format has (Polars and
/// DuckDB write ZSTD), a column null in every row even of a type the column cannot hold (pandas
/// writes an empty integer column back as DOUBLE), and a decimal attribute of customers keeps
/// its column's scale (its text is what filters compare: `1.50`, as the CSV wrote it).
#[test]
fn other_writers_files_read_as_the_same_book() {
    use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
    let tmp = tempfile::tempdir().unwrap();
    let write_with = |compression: Compression, columns: Vec<(&str, ArrayRef)>| {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(compression)
            .build();
        write_with(tmp.path(), "subscriptions.parquet", columns, props);
    };
    let prices = |book: &expansa_ledger::Book| -> Vec<String> {
        book.lines
            .items
            .iter()
            .map(|l| format!("{} {}", l.unit_price.get(), l.start))
            .collect()
    };
    write_with(Compression::SNAPPY, lines(|_| {}));
    let snappy = prices(&read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap());
    for codec in [
        Compression::ZSTD(ZstdLevel::default()),
        Compression::GZIP(GzipLevel::default()),
        Compression::LZ4_RAW,
        Compression::BROTLI(BrotliLevel::default()),
        Compression::UNCOMPRESSED,
    ] {
        write_with(codec, lines(|_| {}));
        let book = read_book(tmp.path(), &ImportOptions::default(), &NoProgress)
            .unwrap_or_else(|e| panic!("{codec:?}: {:?}", e.0));
        assert_eq!(prices(&book), snappy, "{codec:?}");
    }

    // A DOUBLE column without a value reads as empty; one with a value is refused.
    let no_floats: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![None; 5]));
    write_with(
        Compression::SNAPPY,
        lines(|c| c.push(("billing_interval_count", no_floats))),
    );
    read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    let one_float: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![
        None,
        None,
        Some(1.0),
        None,
        None,
    ]));
    write_with(
        Compression::SNAPPY,
        lines(|c| c.push(("billing_interval_count", one_float))),
    );
    let got = problems(tmp.path());
    assert!(
        got.len() == 1 && got[0].contains("the column is of Parquet type DOUBLE"),
        "{got:?}"
    );

    // A decimal attribute keeps its scale; a decimal of the format's columns is its value.
    write_with(Compression::SNAPPY, lines(|_| {}));
    write(
        tmp.path(),
        "customers.parquet",
        vec![
            ("id", strings(&[Some("c1"), Some("c2"), Some("c3")])),
            ("score", decimals(2, &[Some(150), Some(200), None])),
        ],
        10,
    );
    let book = read_book(tmp.path(), &ImportOptions::default(), &NoProgress).unwrap();
    let (_, score) = book
        .customers
        .attributes
        .iter()
        .find(|(n, _)| n == "score")
        .unwrap();
    let scores: Vec<&str> = (0..score.len()).map(|i| score.get(i)).collect();
    assert_eq!(scores, ["1.50", "2.00", ""]);
}
