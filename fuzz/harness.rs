// The fuzz harness for the CSV import, shared by the libFuzzer target
// (fuzz/fuzz_targets/import_csv.rs) and the corpus replay test (crates/cli/tests/fuzz_corpus.rs).
//
// The input is split at NUL bytes into the files of a book, in this order; the book is read
// from memory and, when it loads, reported. Nothing may panic.

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

/// Reads `data` as a book and reports it; returns whether it loaded.
pub fn fuzz_import(data: &[u8]) -> bool {
    let files: Vec<(&str, &[u8])> = FUZZ_FILES.iter().copied().zip(data.split(|&b| b == 0)).collect();
    let source = expansa_import::InMemory(&files);
    let options = expansa_import::ImportOptions::default();
    match expansa_import::read_book_from(&source, &options, &expansa_import::NoProgress) {
        Ok(book) => {
            let query = expansa_movements::Query {
                from: "2023-01".parse().unwrap(),
                to: "2025-12".parse().unwrap(),
                rules: expansa_movements::Rules::Conexa,
            };
            let report = expansa_movements::report(&book, &query);
            let _ = expansa_movements::render_json(&report);
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
