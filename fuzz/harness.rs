// The fuzz harness for the CSV import, shared by the libFuzzer target
// (fuzz/fuzz_targets/import_csv.rs) and the corpus replay test (crates/cli/tests/fuzz_corpus.rs).
//
// The input is split at NUL bytes into the files of a book, in this order; the book is read
// from memory and, when it loads, reported. Nothing may panic. A book that loads is also read
// as the store reads it (its rows, written back and read again): the same report.

const FUZZ_FILES: [&str; 9] = [
    "subscriptions.csv",
    "customers.csv",
    "products.csv",
    "fx_rates.csv",
    "contracts.csv",
    "contracted_prices.csv",
    "marketing_spend.csv",
    "usage.csv",
    "offers.csv",
];

/// The movement report every loaded book is put through.
fn report_query() -> expansa_movements::Query {
    expansa_movements::Query {
        from: "2023-01".parse().unwrap(),
        to: "2025-12".parse().unwrap(),
        rules: expansa_movements::Rules::Conexa,
    }
}

/// Reads `data` as a book and reports it; returns whether it loaded.
pub fn fuzz_import(data: &[u8]) -> bool {
    let files: Vec<(&str, &[u8])> = FUZZ_FILES
        .iter()
        .copied()
        .zip(data.split(|&b| b == 0))
        .collect();
    let source = expansa_import::InMemory(&files);
    let options = expansa_import::ImportOptions::default();
    match expansa_import::read_book_from(&source, &options, &expansa_import::NoProgress) {
        Ok(book) => {
            let query = report_query();
            let report = expansa_movements::report(&book, &query);
            let json = expansa_movements::render_json(&report);
            let rebuilt = store_rebuild(&source);
            let again = expansa_import::read_book_from(
                &expansa_import::InMemory(
                    &rebuilt
                        .iter()
                        .map(|(n, b)| (*n, b.as_slice()))
                        .collect::<Vec<_>>(),
                ),
                &options,
                &expansa_import::NoProgress,
            )
            .unwrap_or_else(|e| {
                panic!(
                    "the book loads, but not as the store rebuilds it: {:?}",
                    e.0
                )
            });
            assert_eq!(
                (
                    again.lines.len(),
                    again.customers.len(),
                    again.products.len()
                ),
                (book.lines.len(), book.customers.len(), book.products.len())
            );
            assert_eq!(
                json,
                expansa_movements::render_json(&expansa_movements::report(&again, &query))
            );
            for c in 0..book.customers.len().min(4) as u32 {
                let _ = expansa_movements::trail(&book, &query, c);
            }
            true
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a failed import names its problems");
            for p in &errors.0 {
                let _ = p.to_string();
            }
            false
        }
    }
}

/// The files as the store keeps and rebuilds them: each file's rows, read by the store's
/// reader, written back.
fn store_rebuild(source: &expansa_import::InMemory) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = Vec::new();
    for schema in expansa_import::schema::FILES {
        let rows = match expansa_import::read_rows(source, &schema) {
            Ok(Some(rows)) => rows,
            Ok(None) => continue,
            Err(e) => panic!(
                "the book loads, but the store's reader refuses it: {:?}",
                e.0
            ),
        };
        let mut extra: Vec<String> = Vec::new();
        for r in &rows {
            for (name, _) in &r.extra {
                if !extra.contains(name) {
                    extra.push(name.clone());
                }
            }
        }
        let bytes = expansa_import::write_rows(
            &schema,
            &extra,
            rows.iter()
                .map(|r| (r.values.as_slice(), r.extra.as_slice())),
        );
        files.push((schema.file, bytes));
    }
    files
}

/// Reads `data` as a workbook (both as `.xlsx` and as `.ods`): every sheet as CSV, and the
/// workbook as a book, reported when it loads; returns whether one of the two loaded. Nothing
/// may panic.
pub fn fuzz_workbook(data: &[u8]) -> bool {
    use expansa_import::workbook::{Workbook, WorkbookBook};
    let mut loaded = false;
    for name in ["fuzz.xlsx", "fuzz.ods"] {
        let Ok(workbook) = Workbook::from_bytes(name, data.to_vec()) else {
            continue;
        };
        for sheet in workbook.sheet_names().to_vec() {
            if let Ok(s) = workbook.sheet(&sheet) {
                let lines = s.csv.iter().filter(|&&b| b == b'\n').count() as u64;
                assert!(s.row(lines) >= s.first_row || lines == 0);
            }
        }
        let source = WorkbookBook::new(Ok(workbook));
        let options = expansa_import::ImportOptions::default();
        if let Ok(book) =
            expansa_import::read_book_from(&source, &options, &expansa_import::NoProgress)
        {
            let query = report_query();
            expansa_movements::render_json(&expansa_movements::report(&book, &query));
            loaded = true;
        }
    }
    loaded
}

/// Reads `data` as the `subscriptions.parquet` of a Parquet book (`cargo fuzz run parquet`;
/// the corpus, fuzz/corpus/parquet, is replayed by crates/cli/tests/fuzz_corpus.rs); returns
/// whether it loaded. A damaged file is a problem naming it, never a panic.
pub fn fuzz_parquet(data: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("subscriptions.parquet"), data).expect("written");
    let source = expansa_import::parquet::ParquetBook::new(dir.path());
    let options = expansa_import::ImportOptions::default();
    match expansa_import::read_book_from(&source, &options, &expansa_import::NoProgress) {
        Ok(book) => {
            let query = report_query();
            expansa_movements::render_json(&expansa_movements::report(&book, &query));
            true
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a failed import names its problems");
            assert!(
                errors.0.iter().all(|p| p.file.starts_with("subscriptions.parquet")),
                "{:?}",
                errors.0
            );
            false
        }
    }
}
