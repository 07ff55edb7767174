//! Replays the fuzz corpus (fuzz/corpus/import_csv) through the fuzz harness: every input
//! found by `cargo fuzz run import_csv` stays a regression test.

include!("../../../fuzz/harness.rs");

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/import_csv");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let (mut loaded, mut refused) = (0, 0);
    for path in &entries {
        if fuzz_import(&std::fs::read(path).unwrap()) {
            loaded += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        entries.len() >= 20,
        "the corpus has only {} inputs",
        entries.len()
    );
    assert!(
        loaded > 0 && refused > 0,
        "the corpus should hold good and bad books ({loaded} loaded, {refused} refused)"
    );
}

/// Replays `fuzz/corpus/NAME` through `harness` (true when the input loaded): at least 20
/// inputs, none panicking, some loaded and some refused.
fn replay(name: &str, harness: fn(&[u8]) -> bool) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let loaded = entries
        .iter()
        .filter(|path| harness(&std::fs::read(path).unwrap()))
        .count();
    assert!(
        entries.len() >= 20,
        "the {name} corpus has only {} inputs",
        entries.len()
    );
    assert!(
        loaded > 0 && loaded < entries.len(),
        "the {name} corpus should hold good and bad inputs ({loaded} of {} loaded)",
        entries.len()
    );
}

/// The workbook corpus (fuzz/corpus/workbook: the fixtures of testdata/workbook, and damaged
/// copies of them) through the workbook harness (`cargo fuzz run workbook`).
#[test]
fn workbook_fuzz_corpus_replays_without_panics() {
    replay("workbook", fuzz_workbook);
}

/// The Parquet corpus (fuzz/corpus/parquet: Parquet files expansa and DuckDB wrote, and
/// damaged copies of them: cut short, bytes changed) through the Parquet harness (`cargo fuzz
/// run parquet`): every one is read or refused with a problem, never a panic.
#[test]
fn parquet_fuzz_corpus_replays_without_panics() {
    replay("parquet", fuzz_parquet);
}
