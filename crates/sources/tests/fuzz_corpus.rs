//! Replays the converters' fuzz corpus (fuzz/corpus/convert) through the fuzz harness: every
//! input found by `cargo fuzz run convert` stays a regression test.

include!("../../../fuzz/sources_harness.rs");

#[test]
fn fuzz_corpus_replays_without_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/convert");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let (mut converted, mut refused) = (0, 0);
    for path in &entries {
        if fuzz_convert(&std::fs::read(path).unwrap()) {
            converted += 1;
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
        converted > 0 && refused > 0,
        "the corpus should hold good and bad exports ({converted} converted, {refused} refused)"
    );
}
